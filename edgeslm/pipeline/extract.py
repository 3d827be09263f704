"""Full fine-tuning's weights, landed as a LoRA (pipeline/finetune.py, `TrainConfig.full`).

Full fine-tuning trains every weight of the target modules in place, on the base that training caches
per process. Owns what that needs around the trainer: the base's own values of those weights (kept to
put back, so the next run starts from the base again), and the change training made, cut by SVD to the
`rank` largest directions of each module and written as an ordinary PEFT LoRA (ΔW ≈ B·A, scale 1). So
everything downstream (the GGUF adapter, serving folded or not, export, quantize) is unchanged, and the
share of the change's energy the rank keeps says what the cut loses.
"""

from __future__ import annotations

from pathlib import Path


def trainable(model, modules) -> dict:
    """Marks the weights of the `modules` projections (every layer) trainable and every other weight
    frozen; returns {name: the base's own value} of those weights, to put back and to take the change from."""
    keep = {}
    for name, p in model.named_parameters():
        hit = name.endswith(".weight") and name.rsplit(".", 2)[-2] in modules
        p.requires_grad = hit
        if hit:
            keep[name] = p.detach().clone()
    return keep


def restore(model, originals: dict) -> None:
    """The base's own weights back in place, all frozen again."""
    import torch

    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in originals.items():
            params[name].copy_(value)
    for p in model.parameters():
        p.requires_grad = False


def low_rank(delta, rank: int):
    """(B, A, kept): B·A is the best rank-`rank` approximation of `delta` (out × in), kept the share of its
    squared singular values that rank holds (1.0 when `delta` is 0)."""
    import torch

    u, s, vh = torch.linalg.svd(delta.float(), full_matrices=False)
    r = min(rank, s.numel())
    total = float((s ** 2).sum())
    kept = float((s[:r] ** 2).sum()) / total if total > 0 else 1.0
    return (u[:, :r] * s[:r]).contiguous(), vh[:r].contiguous(), kept


def save_lora(model, originals: dict, modules, rank: int, out: Path) -> float:
    """The change from `originals` to the model's current weights, as a PEFT LoRA of `rank` (lora_alpha =
    rank: scale 1) in `out`; returns the mean share of each module's change the rank kept. Leaves the
    model's weights as they are (restore() puts the base back)."""
    import peft
    import torch

    params = dict(model.named_parameters())
    deltas = {name: (params[name].detach() - value) for name, value in originals.items()}
    lora = peft.get_peft_model(model, peft.LoraConfig(r=rank, lora_alpha=rank, target_modules=list(modules),
                                                      lora_dropout=0.0))
    kept = []
    try:
        with torch.no_grad():
            for name, module in lora.named_modules():
                if not hasattr(module, "lora_A") or "default" not in module.lora_A:
                    continue
                key = name.removeprefix("base_model.model.") + ".weight"
                b, a, share = low_rank(deltas[key], rank)
                module.lora_A["default"].weight.copy_(a)
                module.lora_B["default"].weight.copy_(b)
                kept.append(share)
        lora.save_pretrained(str(out))
    finally:
        lora.unload()
    return round(sum(kept) / max(1, len(kept)), 4)
