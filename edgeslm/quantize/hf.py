"""A Hugging Face checkpoint (config.json + safetensors), e.g. a fine-tune of a catalog model, mapped
onto the layout of a base GGUF of the same architecture.

Owns: the name mapping (gguf's tensor-name map), each architecture's conventions, and the refusals.
The output copies the base GGUF's metadata and tokenizer; only the numbers come from the checkpoint.
Conventions, as llama.cpp's own converter applies them:
- gemma3: RMSNorm weights are stored +1 (HF keeps them zero-centred); lm_head is tied to token_embd;
- llama: q_proj and k_proj rows are permuted from HF's rotary layout to llama.cpp's;
- qwen2: stored as is (q/k/v biases included).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from edgeslm.errors import InvalidRequest
from edgeslm.quantize.gguf_write import Progress, write
from edgeslm.store.gguf_io import read_header

# HF config.json model_type -> GGUF architecture this writer knows
ARCHITECTURES = {"gemma3": "gemma3", "gemma3_text": "gemma3", "llama": "llama", "qwen2": "qwen2"}


def is_checkpoint(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def read_config(ckpt: Path) -> tuple[dict, str]:
    """The checkpoint's config and its GGUF architecture; refuses architectures the writer does not know."""
    try:
        cfg = json.loads((ckpt / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise InvalidRequest(f"{ckpt}/config.json is unreadable ({e})", param="src") from None
    cfg = {**cfg.get("text_config", {}), **cfg} if cfg.get("model_type") == "gemma3" else cfg
    kind = cfg.get("model_type", "")
    if kind not in ARCHITECTURES:
        raise InvalidRequest(f"architecture '{kind}' of {ckpt.name} is not supported; the GGUF writer knows "
                             f"{', '.join(sorted(set(ARCHITECTURES)))}", param="src")
    return cfg, ARCHITECTURES[kind]


def _tensors(ckpt: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    files = sorted(ckpt.glob("*.safetensors"))
    if not files:
        raise InvalidRequest(f"{ckpt} has no *.safetensors weights", param="src")
    out = {}
    for f in files:
        try:
            out.update(load_file(str(f)))
        except Exception as e:  # noqa: BLE001 - safetensors raises its own types for damaged files
            raise InvalidRequest(f"{f}: unreadable safetensors ({e})", param="src") from None
    return {k.removeprefix("model.language_model.").removeprefix("language_model."): v for k, v in out.items()}


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def to_gguf(ckpt: Path, base_gguf: Path, dst: Path, dtype: str = "F16", progress: Progress | None = None) -> Path:
    """Write checkpoint `ckpt` as a GGUF laid out like `base_gguf` (same architecture and sizes)."""
    import gguf

    cfg, arch = read_config(ckpt)
    meta, layout = read_header(base_gguf, full=True)
    if meta.get("general.architecture") != arch:
        raise InvalidRequest(f"{ckpt.name} is a {arch} checkpoint but the base {base_gguf.name} is "
                             f"{meta.get('general.architecture')}; choose a base of the same architecture",
                             param="base")
    n_blocks = int(meta.get(f"{arch}.block_count", 0) or 0)
    if int(cfg.get("num_hidden_layers", n_blocks)) != n_blocks:
        raise InvalidRequest(f"{ckpt.name} has {cfg.get('num_hidden_layers')} layers, the base {n_blocks}",
                             param="base")
    by_name = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}
    names = gguf.get_tensor_name_map(by_name[arch], n_blocks)
    hf = _tensors(ckpt)
    mapped: dict[str, str] = {}
    for key in hf:
        name = names.get_name(key, try_suffixes=(".weight", ".bias"))
        if name is not None:
            mapped[name] = key  # the suffix (.weight/.bias) comes back with the name
    want = {t.name for t in layout}
    if arch == "gemma3" or "lm_head.weight" not in hf:
        mapped.pop("output.weight", None)  # tied to token_embd
    missing = sorted(want - set(mapped))
    if missing:
        raise InvalidRequest(f"{ckpt.name} lacks {len(missing)} tensors the base has, e.g. {missing[:3]}",
                             param="src")
    n_head, n_kv = int(cfg.get("num_attention_heads", 1)), int(cfg.get("num_key_value_heads", 1))

    def array(t) -> np.ndarray:
        x = hf[mapped[t.name]].astype(np.float32)
        if arch == "gemma3" and t.name.endswith("norm.weight"):
            x = x + 1.0
        if arch == "llama" and t.name.endswith("attn_q.weight"):
            x = _permute(x, n_head)
        if arch == "llama" and t.name.endswith("attn_k.weight"):
            x = _permute(x, n_kv)
        return x

    return write(meta, layout, array, dst, dtype, progress)


def checkpoint_from_gguf(gguf_path: Path, out: Path, peft_dir: Path | None = None, cache: Path | None = None) -> Path:
    """A Hugging Face checkpoint (safetensors, config, tokenizer) of a GGUF model, dequantized by
    transformers (once per file: store/dequantized.py), with a PEFT LoRA merged in when given: the input
    other exporters (ONNX, vLLM) need. Needs torch and transformers (peft for the merge)."""
    from edgeslm.config import get_settings
    from edgeslm.store import dequantized

    base = dequantized.checkpoint(gguf_path, cache or get_settings().cache)
    # with a LoRA the merged weights are written below: copying the base's ~1 GB of them first was wasted
    weights = shutil.ignore_patterns("*.safetensors", "*.safetensors.index.json") if peft_dir is not None else None
    shutil.copytree(base, out, dirs_exist_ok=True, ignore=weights)
    if peft_dir is not None:
        import peft
        import torch
        import transformers

        model = transformers.AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
        peft.PeftModel.from_pretrained(model, str(peft_dir)).merge_and_unload().save_pretrained(str(out))
    return out
