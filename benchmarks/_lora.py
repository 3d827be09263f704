"""LoRA fixtures shared by the adapter benchmark and the tests: PEFT adapter directories with random
weights in PEFT's own layout (costs and conversions do not depend on what the weights learned), and
the last-position logits of the base with an adapter set applied."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# Gemma 3 270M attention projections: (in, out)
GEMMA_270M = {"q_proj": (640, 1024), "k_proj": (640, 256), "v_proj": (640, 256), "o_proj": (1024, 640)}


def write_peft(d: Path, *, rank: int = 4, layers=range(18), modules=("q_proj", "v_proj"), peft_type: str = "LORA",
               in_dim: int | None = None, prefix: str = "base_model.model.model.layers", seed: int = 1,
               scale: float = 0.05) -> Path:
    """A PEFT LoRA directory for Gemma 3 270M (`in_dim` overrides every module's input size, to make
    one that fits another model)."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    tensors = {}
    for i in layers:
        for m in modules:
            n_in, n_out = GEMMA_270M[m]
            n_in = in_dim or n_in
            tensors[f"{prefix}.{i}.self_attn.{m}.lora_A.weight"] = (rng.standard_normal((rank, n_in)) * scale).astype(np.float32)
            tensors[f"{prefix}.{i}.self_attn.{m}.lora_B.weight"] = (rng.standard_normal((n_out, rank)) * scale).astype(np.float32)
    d.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(d / "adapter_model.safetensors"))
    (d / "adapter_config.json").write_text(json.dumps({
        "peft_type": peft_type, "r": rank, "lora_alpha": 2 * rank, "target_modules": list(modules),
        "base_model_name_or_path": "google/gemma-3-270m"}))
    return d


def last_logits(base: Path, text: str, lora: list[tuple[Path, float]] = ()) -> np.ndarray:
    """The next-token logits of `text` on `base` with exactly these adapters applied (a fresh load)."""
    from edgeslm.backends import open_backend

    b = open_backend(Path(base), "gguf", n_ctx=256, n_threads=2)
    try:
        b.set_adapters(list(lora))
        b.prefill(b.tokenize(text, add_bos=True))
        return np.array(b.logits(), copy=True)
    finally:
        b.close()
