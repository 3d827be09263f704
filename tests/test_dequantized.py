"""The cache of dequantized checkpoints (store/dequantized.py), on tiny llama GGUFs with a 264-token
vocabulary, so that building one costs ~2 s: the same numbers transformers reads from the GGUF itself, keyed by
content (a copy hits, an edit misses), written whole or not at all, and only the newest kept."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeslm.store import dequantized

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def _tiny(tmp_path, seed: int, n_embd: int = 16, n_ff: int = 32):
    """A one-layer llama GGUF with random F16 weights and a sentencepiece vocabulary of bytes."""
    import gguf

    d = tmp_path / f"m{seed}"
    d.mkdir()
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)] + ["\u2581", "\u2581a", "a", "b", "\u2581b"]
    w = gguf.GGUFWriter(d / "tiny.gguf", "llama")
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_types([2, 3, 3] + [6] * 256 + [1] * 5)
    w.add_token_scores([0.0] * len(tokens))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_context_length(256)
    w.add_embedding_length(n_embd)
    w.add_block_count(1)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(2)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(n_embd // 2)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    rng = np.random.default_rng(seed)
    shapes = {"token_embd": (len(tokens), n_embd), "output": (len(tokens), n_embd), "blk.0.attn_q": (n_embd, n_embd),
              "blk.0.attn_k": (n_embd, n_embd), "blk.0.attn_v": (n_embd, n_embd), "blk.0.attn_output": (n_embd, n_embd),
              "blk.0.ffn_gate": (n_ff, n_embd), "blk.0.ffn_up": (n_ff, n_embd), "blk.0.ffn_down": (n_embd, n_ff)}
    for name, shape in shapes.items():
        w.add_tensor(f"{name}.weight", rng.normal(0, 0.5, shape).astype(np.float16))
    for name in ("output_norm", "blk.0.attn_norm", "blk.0.ffn_norm"):
        w.add_tensor(f"{name}.weight", np.ones(n_embd, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return d / "tiny.gguf"


def test_the_cached_checkpoint_holds_what_transformers_reads_from_the_gguf(tmp_path):
    gguf = _tiny(tmp_path, 0)
    cache = tmp_path / "cache"
    ckpt = dequantized.checkpoint(gguf, cache)
    direct = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    cached = transformers.AutoModelForCausalLM.from_pretrained(str(ckpt), dtype=torch.float32)
    want, got = direct.state_dict(), cached.state_dict()
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)
    tok = transformers.AutoTokenizer.from_pretrained(str(ckpt))
    assert tok.encode("ab a", add_special_tokens=False)  # the tokenizer came along
    assert not list((cache / "hf").glob(".*"))  # nothing half-written left


def test_keyed_by_content_and_only_the_newest_kept(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    a = _tiny(tmp_path, 1)
    first = dequantized.checkpoint(a, cache)
    copy = tmp_path / "elsewhere" / "renamed.gguf"
    copy.parent.mkdir()
    shutil.copy(a, copy)
    calls = []
    real = dequantized._build
    monkeypatch.setattr(dequantized, "_build", lambda g, out: (calls.append(g), real(g, out)))
    assert dequantized.checkpoint(copy, cache) == first and not calls  # same bytes, another path: a hit
    b, c = _tiny(tmp_path, 2), _tiny(tmp_path, 3)  # other weights: misses
    second = dequantized.checkpoint(b, cache)
    assert second != first and calls == [b]
    third = dequantized.checkpoint(c, cache)
    kept = sorted(p.name for p in (cache / "hf").iterdir())
    assert kept == sorted([second.name, third.name]) and len(kept) == dequantized.KEEP


def test_a_failed_build_leaves_nothing(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    gguf = _tiny(tmp_path, 4)

    def broken(g, out):
        out.mkdir(parents=True)
        (out / "model.safetensors").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(dequantized, "_build", broken)
    with pytest.raises(OSError, match="disk full"):
        dequantized.checkpoint(gguf, cache)
    assert list((cache / "hf").iterdir()) == []
