"""The catalog's model families as tests see them: each family's real chat template and real
tokenizer, taken from llama.cpp's source as vendored in the llama-cpp-python 0.3.36 sdist
(`vendor/llama.cpp/models/templates/*.jinja` and `models/ggml-vocab-*.gguf`; `make test` fetches and
unpacks them into .cache/llama.cpp-models), and a tiny random-weight model built on them with the
`gguf` package, so the whole serving path (template, tokenizer, grammar masks, forced tokens,
parsing) runs on the family's real vocabulary.

The tiny model's weights are random and its architecture is always `llama`: what it answers means
nothing, only how the answer is tokenized, constrained and parsed. The tokenizer is the family's own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = Path(os.environ.get("EDGESLM_LLAMA_CPP_MODELS", ROOT / ".cache" / "llama.cpp-models"))


EMBEDDED = "embedded"  # a family whose tokenizer is the embedded model's (Gemma 3), passed to build_tiny


@dataclass(frozen=True)
class Family:
    family: str  # the catalog's `family`
    template: str | None  # a file under templates/, or None: the GGUF carries none (edgeslm's built-in)
    vocab: str | None  # a file under models/, or None: the embedded model's own GGUF
    eos: str | None  # the end-of-turn token the family's instruct GGUFs set as EOS
    source: str  # where the template and tokenizer come from, for the README table
    added: tuple[str, ...] = ()  # added tokens the instruct models carry beyond the vocab file (see ADDED)


FAMILIES = [
    Family("gemma3", None, None, None,
           "template: built-in `gemma` (Gemma 3's rules; the embedded GGUF carries none); tokenizer: the embedded Gemma 3 GGUF"),
    Family("qwen2.5", "Qwen-Qwen2.5-7B-Instruct.jinja", "ggml-vocab-qwen2.gguf", "<|im_end|>",
           "template: Qwen2.5-7B-Instruct; tokenizer: ggml-vocab-qwen2 + Qwen2.5's added tokens", added=("qwen2.5",)),
    Family("qwen3", "Qwen-Qwen3-0.6B.jinja", "ggml-vocab-qwen2.gguf", "<|im_end|>",
           "template: Qwen3-0.6B; tokenizer: ggml-vocab-qwen2 + Qwen3's added tokens", added=("qwen2.5", "qwen3")),
    Family("granite4", "ibm-granite-granite-4.0.jinja", "ggml-vocab-gpt-2.gguf", "<|end_of_text|>",
           "template: granite-4.0; tokenizer: ggml-vocab-gpt-2 + Granite's role tokens, a stand-in (Granite 4.0's own "
           "BPE vocabulary is not in llama.cpp's sources)", added=("granite4",)),
    Family("lfm2", "LFM2.5-Instruct.jinja", "ggml-vocab-gpt-2.gguf", "<|im_end|>",
           "template: LFM2.5-Instruct; tokenizer: ggml-vocab-gpt-2 + LFM2's chat and tool tokens, a stand-in (LFM2's "
           "own vocabulary is not in llama.cpp's tree)", added=("lfm2",)),
    Family("functiongemma", "builtin:functiongemma", EMBEDDED, "<end_of_turn>",
           "template: built-in `functiongemma`, reconstructed from published FunctionGemma prompts (none in "
           "llama.cpp's tree); tokenizer: the embedded Gemma 3 GGUF + FunctionGemma's tokens in unused slots, a "
           "stand-in (their real ids are not known here)", added=("functiongemma",)),
    Family("llama3.2", "meta-llama-Llama-3.2-3B-Instruct.jinja", "ggml-vocab-llama-bpe.gguf", "<|eot_id|>",
           "template: Llama-3.2-3B-Instruct; tokenizer: ggml-vocab-llama-bpe + Llama 3.1's named tokens", added=("llama3.1",)),
]

# The vocab files are base-model vocabularies: Qwen2's has placeholders ("[PAD151657]") where
# Qwen2.5 and Qwen3 put their tool and thinking tokens, and Llama 3's names 128008/128010 as reserved.
# These are the ids and names of those models' tokenizer_config.json; the type is what llama.cpp's
# converter writes (3 control: "special": true, 4 user-defined: "special": false).
_QWEN25 = ["<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>",
           "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
           "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
           "<|repo_name|>", "<|file_sep|>"]
ADDED: dict[str, dict[int, tuple[str, int]]] = {
    "qwen2.5": {151646 + i: (t, 3 if t.startswith("<|") else 4) for i, t in enumerate(_QWEN25)},
    "qwen3": {151665: ("<tool_response>", 4), 151666: ("</tool_response>", 4), 151667: ("<think>", 4), 151668: ("</think>", 4)},
    "llama3.1": {128008: ("<|eom_id|>", 3), 128010: ("<|python_tag|>", 3)},
    "lfm2": {50257 + i: (t, 3) for i, t in enumerate(["<|startoftext|>", "<|im_start|>", "<|im_end|>", "<|tool_list_start|>",
                                                       "<|tool_list_end|>", "<|tool_call_start|>", "<|tool_call_end|>",
                                                       "<|tool_response_start|>", "<|tool_response_end|>"])},
    "functiongemma": {6 + i: (t, 3) for i, t in enumerate(["<start_function_declaration>", "<end_function_declaration>",
                                                           "<start_function_call>", "<end_function_call>",
                                                           "<start_function_response>", "<end_function_response>",
                                                           "<escape>"])},
    # appended after GPT-2's 50,257 tokens (Granite's real ids are other, its vocabulary being another)
    "granite4": {50257 + i: (t, 3) for i, t in enumerate(["<|end_of_text|>", "<|start_of_role|>", "<|end_of_role|>",
                                                           "<|tool_call|>"])},
}


def available() -> bool:
    return (MODELS / "templates").is_dir()


def template_text(f: Family) -> str | None:
    if f.template and f.template.startswith("builtin:"):  # edgeslm's own, written into the tiny GGUF
        from edgeslm.decoding.templates import BUILTIN

        return BUILTIN[f.template.removeprefix("builtin:")]
    return (MODELS / "templates" / f.template).read_text() if f.template else None


def build_tiny(f: Family, out: Path, n_embd: int = 32, n_ff: int = 64, seed: int = 0,
               embedded: Path | None = None) -> Path:
    """A one-layer llama-architecture GGUF with random weights, the family's tokenizer and template
    (`embedded`: the embedded model's GGUF, for a family whose vocab is EMBEDDED)."""
    import gguf

    from edgeslm.store.gguf_io import read_header

    # edgeslm's own header reader: gguf.GGUFReader spends 6-9 s building numpy views of a 150k vocabulary
    meta, _ = read_header(embedded if f.vocab == EMBEDDED else MODELS / str(f.vocab), full=True)
    kinds = meta["gguf.types"]
    w = gguf.GGUFWriter(out, "llama")
    tokens = list(meta["tokenizer.ggml.tokens"])
    types = list(meta["tokenizer.ggml.token_type"])
    for group in f.added:
        for i, (text, kind) in ADDED[group].items():
            if i == len(tokens):  # appended
                tokens.append(text)
                types.append(kind)
            else:
                tokens[i], types[i] = text, kind
    for key, (vtype, etype) in kinds.items():
        if not key.startswith("tokenizer.") or key == "tokenizer.chat_template" or (f.eos and key == "tokenizer.ggml.eos_token_id"):
            continue
        value = {"tokenizer.ggml.tokens": tokens, "tokenizer.ggml.token_type": types}.get(key) or meta[key]
        w.add_key_value(key, value, gguf.GGUFValueType(vtype), gguf.GGUFValueType(etype) if etype is not None else None)
    if f.eos:
        w.add_eos_token_id(tokens.index(f.eos))
    if f.template:
        w.add_chat_template(template_text(f) or "")
    n_vocab, n_head = len(tokens), 2
    w.add_name(f"tiny-{f.family}")
    w.add_context_length(2048)
    w.add_embedding_length(n_embd)
    w.add_block_count(1)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    rng = np.random.default_rng(seed)

    def t(name: str, *shape: int, ones: bool = False) -> None:
        data = np.ones(shape, np.float32) if ones else rng.normal(0, 0.5, shape).astype(np.float16)
        w.add_tensor(name, data)

    t("token_embd.weight", n_vocab, n_embd)
    t("output_norm.weight", n_embd, ones=True)
    t("blk.0.attn_norm.weight", n_embd, ones=True)
    for m in ("q", "k", "v", "output"):
        t(f"blk.0.attn_{m}.weight", n_embd, n_embd)
    t("blk.0.ffn_norm.weight", n_embd, ones=True)
    t("blk.0.ffn_gate.weight", n_ff, n_embd)
    t("blk.0.ffn_up.weight", n_ff, n_embd)
    t("blk.0.ffn_down.weight", n_embd, n_ff)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


def fetch(dest: Path = MODELS) -> None:
    """Unpack the templates and the vocab files the families use from the llama-cpp-python 0.3.36
    sdist (pip download: the package index is the one network this project may use)."""
    import subprocess
    import sys
    import tarfile
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        "-d", tmp, "llama-cpp-python==0.3.36"], check=True)
        sdist = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        vocabs = {f.vocab for f in FAMILIES if f.vocab and f.vocab != EMBEDDED}
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(sdist) as tar:
            for m in tar.getmembers():
                parts = m.name.split("/")
                if parts[1:4] != ["vendor", "llama.cpp", "models"] or not m.isfile():
                    continue
                rel = parts[4:]
                if (rel[0] == "templates" and len(rel) == 2) or (len(rel) == 1 and rel[0] in vocabs):
                    out = dest.joinpath(*rel)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(tar.extractfile(m).read())  # type: ignore[union-attr]


if __name__ == "__main__":
    fetch()
    print(f"templates and vocabularies in {MODELS}")
