"""The ONNX backend: models exported by onnxruntime-genai's model builder (a folder with
genai_config.json, model.onnx and the tokenizer files), run by onnxruntime-genai on onnxruntime.

Owns: loading, tokenization (the folder's Hugging Face tokenizer), one sequence through an
onnxruntime-genai Generator (prefix reuse with rewind_to), and the logits the engine masks. Tool calls
stay constrained the same way as on llama.cpp: the engine applies llguidance token masks to these
logits and samples itself; onnxruntime-genai's own guidance is not used, so both backends share one
grammar engine. Gotchas handled here: onnxruntime-genai's tokenizer adds no BOS (the HF tokenizer
does), and max_length must cover the model's sliding window, so it is never set below it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeslm.backends.base import Capabilities, SpecialToken
from edgeslm.errors import BackendError
from edgeslm.types import common_prefix


def is_onnx_model(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / "genai_config.json").is_file()



def hf_token_bytes(tokenizer, token: int) -> bytes:
    """A Hugging Face tokenizer's token as the bytes it writes (SentencePiece byte fallback, "▁" spaces)."""
    text = str(tokenizer.convert_ids_to_tokens(token) or "")
    if text.startswith("<0x") and text.endswith(">") and len(text) == 6:  # SentencePiece byte fallback
        return bytes([int(text[3:5], 16)])
    return text.replace("\u2581", " ").encode("utf-8")


class OnnxGenaiBackend:
    """A model exported by onnxruntime-genai's builder: one sequence, its tokenizer, and what it cannot do."""

    capabilities = Capabilities(logits_access=True, prefix_cache=True, native_vocab=False, lora=False)

    def __init__(self, path: Path, *, n_ctx: int, n_threads: int, n_batch: int = 512, n_seq: int = 1,
                 provider: str | None = None):
        import onnxruntime_genai as og
        import transformers

        self.path = Path(path)
        if not is_onnx_model(self.path):
            raise BackendError(f"{path} is not an onnxruntime-genai model folder (no genai_config.json)")
        try:
            self.config = json.loads((self.path / "genai_config.json").read_text())
            cfg = og.Config(str(self.path))
            cfg.clear_providers()  # CPU, unless a GPU execution provider was chosen (offload.onnx_provider)
            if provider:
                cfg.append_provider(provider)
            self.provider = provider or "cpu"
            self.model = og.Model(cfg)
            self.hf = transformers.AutoTokenizer.from_pretrained(str(self.path))
        except Exception as e:
            raise BackendError(f"onnxruntime-genai could not load {path}: {e}") from e
        self._og = og
        m = self.config["model"]
        window = int(m.get("decoder", {}).get("sliding_window", {}).get("window_size", 0) or 0)
        self.n_ctx = max(min(n_ctx, int(m.get("context_length", n_ctx))), window)
        self.n_vocab = int(m["vocab_size"])
        self.n_threads, self.n_batch, self.n_seq = n_threads, n_batch, 1
        self.metadata = {"tokenizer.chat_template": getattr(self.hf, "chat_template", None),
                         "general.architecture": m.get("type", "")}
        eos = m.get("eos_token_id", [])
        # genai_config lists only <eos>; chat turns also end on the template's end-of-turn token
        vocab = self.hf.get_vocab()
        ends = {vocab[t] for t in ("<end_of_turn>", "<|im_end|>", "<|eot_id|>", "<|end|>") if t in vocab}
        self.eog_tokens = frozenset([*(eos if isinstance(eos, list) else [eos]), *ends])
        bos = self.hf.bos_token_id
        self.bos_text = self.hf.bos_token or ""
        self.add_bos = bos is not None
        self._bos = bos
        self._pieces: dict[int, bytes] = {}
        self._gen: Any = None
        self._seq: list[int] = []

    # ---- evaluation ----------------------------------------------------------------------------

    def _new_generator(self):
        params = self._og.GeneratorParams(self.model)
        params.set_search_options(max_length=self.n_ctx, batch_size=1)
        return self._og.Generator(self.model, params)

    def prefill(self, tokens: list[int], seq: int = 0) -> int:
        keep = min(common_prefix(self._seq, tokens), len(tokens) - 1)
        if self._gen is None or keep <= 0:
            self.reset()
            keep = 0
        else:
            try:
                self._gen.rewind_to(keep)
                self._seq = self._seq[:keep]
            except RuntimeError:  # the sliding-window cache already dropped what `keep` needs
                self.reset()
                keep = 0
        self.decode(tokens[keep:])
        return keep

    def rewind(self, seq: int, n: int) -> int:
        n = min(n, len(self._seq))
        try:
            if self._gen is None or n <= 0:
                raise RuntimeError("nothing to keep")
            self._gen.rewind_to(n)
            self._seq = self._seq[:n]
            return n
        except RuntimeError:  # the sliding-window cache already dropped what `n` needs
            self.reset()
            return 0

    def reset(self, seq: int | None = None) -> None:
        self._gen = self._new_generator()
        self._seq = []

    def decode(self, tokens: list[int], seq: int = 0) -> None:
        if self._gen is None:
            self.reset()
        if len(self._seq) + len(tokens) > self.n_ctx:
            raise BackendError(f"the sequence would exceed the context of {self.n_ctx} tokens")
        try:
            self._gen.append_tokens(np.asarray(tokens, dtype=np.int32))
        except Exception as e:
            self.reset()
            raise BackendError(f"onnxruntime-genai failed to evaluate: {e}") from e
        self._seq.extend(tokens)

    def decode_many(self, steps: dict[int, list[int]]) -> None:
        for seq, tokens in steps.items():
            self.decode(tokens, seq)

    def logits(self, seq: int = 0) -> np.ndarray:
        return np.asarray(self._gen.get_logits(), dtype=np.float32).reshape(-1)[-self.n_vocab :].copy()

    def score(self, tokens: list[int], seq: int = 0) -> np.ndarray:
        self.reset()
        rows = []
        for t in tokens:
            self.decode([t])
            rows.append(self.logits())
        return np.stack(rows)

    def cached(self, seq: int) -> tuple[tuple, list[int]]:
        return (), self._seq

    def close(self) -> None:
        self._gen = None
        self.model = None

    # ---- tokens and their bytes through the model's Hugging Face tokenizer (llguidance reads it too) ----

    def tokenize(self, text: str, *, add_bos: bool, special: bool = False) -> list[int]:
        # Hugging Face matches added tokens in any text; split_special_tokens stops it for the special
        # ones (decoding/prompt.py cuts the user-defined ones a template uses as markup)
        ids = self.hf.encode(text, add_special_tokens=False, split_special_tokens=not special)
        return [self._bos, *ids] if add_bos and self._bos is not None else ids

    def special_tokens(self) -> dict[str, SpecialToken]:
        out: dict[str, SpecialToken] = {}
        for t, tok in sorted(self.hf.added_tokens_decoder.items()):
            kind = "control" if tok.special else "user"
            out.setdefault(str(tok.content), SpecialToken(int(t), kind, bool(tok.lstrip), bool(tok.rstrip)))
        return out

    def piece(self, token: int) -> bytes:
        got = self._pieces.get(token)
        if got is None:
            got = self._pieces[token] = self.vocab_bytes(token)
        return got

    def vocab_bytes(self, token: int) -> bytes:
        return hf_token_bytes(self.hf, token)

    def hf_tokenizer(self):
        return self.hf

    def native_vocab(self):
        return None

    # ---- what onnxruntime-genai cannot do here, each refused with a clear error (capability flags say so) ----

    def set_adapters(self, adapters: list) -> None:
        if adapters:
            raise BackendError("the ONNX backend does not apply LoRA adapters; merge them at export")

    def new_sampler(self, *args, **kwargs):
        raise BackendError("the ONNX backend has no native sampler chain (use the llguidance engine)")

    def sample(self, sampler, seq: int = 0) -> int:
        raise BackendError("the ONNX backend has no native sampler chain (use the llguidance engine)")

    def free_sampler(self, sampler) -> None:
        pass

    def share(self, src: int, dst: int, n: int) -> None:
        raise BackendError("the ONNX backend keeps one sequence; it shares no prefix (capabilities.prefix_share)")

    def used_cells(self) -> int:
        return len(self._seq)

    def state(self, seq: int) -> bytes:
        raise BackendError("the ONNX backend does not persist its prefix cache (capabilities.prefix_persist)")

    def restore(self, seq: int, data: bytes, tokens: list[int], key: tuple) -> bool:
        raise BackendError("the ONNX backend does not persist its prefix cache (capabilities.prefix_persist)")

    def identity(self) -> dict:
        raise BackendError("the ONNX backend does not persist its prefix cache (capabilities.prefix_persist)")
