"""The trainer's checkpoint (pipeline/finetune.py): `OUT/checkpoint/` holds the LoRA (or, under full
fine-tuning, the trained weights: `weights.safetensors`), the optimizer and
scheduler states, the step, the losses so far, the dev evaluations and the best state; `state.json`
carries the fingerprint of the data and settings it was written for. Written whole or not at all
(a `.partial` folder renamed over the old one); a checkpoint of other data or settings is discarded.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

NAME = "checkpoint"
# fingerprint fields that records and checkpoints written before they existed lack: compared only when
# the saved one has them (so those stay valid)
OPTIONAL = ("pairs",)


def pairs_hash(pairs: list[tuple]) -> str:
    """The encoded examples' content for a fingerprint, so changed data (not only its size) is another run."""
    h = hashlib.sha256()
    for p in pairs:
        h.update(json.dumps([[int(x) for x in part] for part in p]).encode())
    return h.hexdigest()[:16]


def matches(saved: dict, now: dict, subset: bool = False) -> bool:
    """Whether a saved fingerprint (or, with `subset`, a training record that holds one among other fields)
    was written for the data and settings of `now`."""
    keys = set(now) if subset else set(now) | set(saved)
    return all(saved.get(k) == now.get(k) for k in keys if not (k in OPTIONAL and k not in saved))


def _lora(model) -> bool:
    return hasattr(model, "peft_config")  # a PEFT model; else full fine-tuning's bare one


def weights(model) -> dict:
    """What training changes: the LoRA's state (a PEFT model), or the trainable weights (full fine-tuning)."""
    if _lora(model):
        import peft

        return peft.get_peft_model_state_dict(model)
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def load_weights(model, state: dict) -> None:
    if _lora(model):
        import peft

        peft.set_peft_model_state_dict(model, state)
        return
    import torch

    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value)


def _file(model) -> str:
    return "adapter_model.safetensors" if _lora(model) else "weights.safetensors"


def _load(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def resume(ckpt: Path, fingerprint: dict, model, opt, sched) -> tuple[int, list, dict, tuple | None]:
    """Load the checkpoint into model, optimizer and scheduler when it was written for `fingerprint`:
    (the step to start from, the losses so far, its state, (dev loss, step, LoRA state) of the best
    evaluation or None). (0, [], {}, None) when there is none or it is another run's (then removed)."""
    import torch

    state_file = ckpt / "state.json"
    if not state_file.is_file():
        return 0, [], {}, None
    state = json.loads(state_file.read_text())
    if not matches(state.get("fingerprint") or {}, fingerprint):
        shutil.rmtree(ckpt)
        return 0, [], {}, None
    load_weights(model, _load(ckpt / _file(model)))
    opt.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True))
    sched.load_state_dict(torch.load(ckpt / "scheduler.pt", weights_only=True))
    best = None
    if state.get("best") and (ckpt / "best.safetensors").is_file():
        best = (state["best"][0], state["best"][1], _load(ckpt / "best.safetensors"))
    return state["step"], state["losses"], state, best


def save(model, opt, sched, ckpt: Path, step: int, losses: list, fingerprint: dict,
         evals: list | None = None, best: tuple | None = None) -> None:
    import torch
    from safetensors.torch import save_file

    tmp = ckpt.with_name(NAME + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().contiguous() for k, v in weights(model).items()}, str(tmp / _file(model)))
    torch.save(opt.state_dict(), tmp / "optimizer.pt")
    torch.save(sched.state_dict(), tmp / "scheduler.pt")
    if best is not None:
        save_file({k: v.contiguous() for k, v in best[2].items()}, str(tmp / "best.safetensors"))
    (tmp / "state.json").write_text(json.dumps({"step": step, "losses": losses, "fingerprint": fingerprint,
                                                  "evals": evals or [], "best": list(best[:2]) if best else None}))
    shutil.rmtree(ckpt, ignore_errors=True)
    tmp.rename(ckpt)
