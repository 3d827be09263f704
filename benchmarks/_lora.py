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


def train(base: Path, texts: list[str], out: Path, *, steps: int = 4, rank: int = 8, lr: float = 5e-3,
          modules=("q_proj", "v_proj"), seed: int = 0):
    """A LoRA trained with peft for `steps` full-batch steps on `texts` (next-token loss), on the base
    transformers dequantizes from the GGUF `base` (cached: store/dequantized.py); saved in PEFT form under `out`. Returns the peft
    model (eval mode) for reference logits. Needs torch, transformers and peft (the test extra)."""
    import peft
    import torch
    import transformers

    from edgeslm.backends import open_backend
    from edgeslm.config import Settings
    from edgeslm.store import dequantized

    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(dequantized.checkpoint(base, Settings().cache)),
                                                              dtype=torch.float32)
    model = peft.get_peft_model(model, peft.LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(modules),
                                                       lora_dropout=0.0))
    tok = open_backend(base, "gguf", n_ctx=512, n_threads=2)
    batch = [tok.tokenize(t, add_bos=True) for t in texts]
    tok.close()
    width = max(map(len, batch))
    ids = torch.tensor([b + [0] * (width - len(b)) for b in batch])
    mask = torch.tensor([[1] * len(b) + [0] * (width - len(b)) for b in batch])
    labels = ids.masked_fill(mask == 0, -100)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    model.save_pretrained(str(out))
    return model
