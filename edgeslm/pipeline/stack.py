"""Students trained on top of the model's default adapter, so they keep its general tool-calling skill
(the `tools` adapter: values copied as written, any tool read from its description) and learn only
the task on top.

Owns two things:
- the default adapter's PEFT form that training folds into the base before the student's LoRA is
  wrapped around it: `HOME/pipeline/runs/_under/TASK-SHA/`, made once per adapter file;
- the flattening that makes default + student one ordinary LoRA. ΔW = s1·B1A1 + s2·B2A2 =
  [s1·B1 | s2·B2] · [A1 ; A2]: a LoRA of rank r1 + r2 with scale 1 is the same sum, exactly.

Serving, quantize and export then see one self-contained adapter: nothing downstream knows about
stacking, and a later change of the default adapter does not change a student trained on the old one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from edgeslm.store.entries import sha256_file
from edgeslm.store.lora_gguf import _PAIR, read_peft, to_peft


def under(settings, store, entry, base_gguf: Path) -> tuple[Path, dict] | None:
    """(the PEFT directory of `entry`'s default adapter, its provenance {"task", "adapter_sha256"}), or
    None when the model has no default adapter in the store."""
    task = entry.default_adapter
    if not task or not store.has(entry.id, task):
        return None
    a = store.get(entry.id, task, entry.sha256)
    sha = a.manifest.get("adapter_sha256") or sha256_file(a.gguf)
    out = settings.home / "pipeline" / "runs" / "_under" / f"{task}-{sha[:12]}"
    if not (out / "adapter_model.safetensors").is_file():
        tmp = out.with_name(out.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        to_peft(a.gguf, base_gguf, tmp, "base", a.manifest.get("target_modules") or [])
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return out, {"task": task, "adapter_sha256": sha}


# the leans toward more calls and more arguments: they make up for the default adapter stopping early on
# general requests, while a student learned how many calls and values its task takes from the task's own
# calls (and the requests it serves carry values no call takes, phone numbers beside an e-mail's sender)
COUNT_LEANS = ("more_bias", "arg_bias")
# and what a student gets instead: the lean on another argument while the request's e-mail address, clock
# time or quote is left, and a stronger copy lean (decoding/copying.py). Chosen on the dev requests
# (benchmarks/data/convert_dev.jsonl) with pipeline 9 seed 0's students (session 35): calendar 7/10 as
# shipped, 9/10 at left_bias 2 (and at 4); cart 8/10 and 9/10 with copy_bias 4 ("limps" for "6 limes"),
# order 8/10 either way; the gate's held-out calls as before or within one (docs/convert.md). Session 36:
# left_bias 6, once a label's value ("Memo: ...") and an enum value ("USD") counted: dev 38/40 against 37
# at 2 (the memo, and an address cc'd after "noon" at 12:00), held-out create_event 0.98, send_money 1.00,
# add_to_cart 0.913 (0.899 at 2 and 6 before a tie-break of the copy lean)
STUDENT_LEANS = {"left_bias": 6.0, "copy_bias": 4.0}


def sampling(store, entry) -> dict:
    """The sampling defaults a student trained on top of `entry`'s default adapter keeps: that adapter's
    (its manifest's `sampling`: the lean that copies values as written, say) with COUNT_LEANS off and
    STUDENT_LEANS on; {} without a default adapter."""
    task = entry.default_adapter
    if not task or not store.has(entry.id, task):
        return {}
    keep = dict(store.get(entry.id, task, entry.sha256).manifest.get("sampling") or {})
    # 0 whichever layer (catalog, GGUF) would set them
    return {**keep, **{k: 0.0 for k in COUNT_LEANS}, **STUDENT_LEANS}


def _pairs(peft_dir: Path) -> tuple[dict, float, int, dict[str, dict[str, np.ndarray]]]:
    cfg, tensors = read_peft(peft_dir)
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for name, x in tensors.items():
        m = _PAIR.match(name)
        if m:
            pairs.setdefault(m["module"], {})[m["ab"]] = np.asarray(x, dtype=np.float32)
    rank = int(cfg["r"])
    return cfg, float(cfg.get("lora_alpha", rank)) / rank, rank, pairs


def _ab(pairs: dict, module: str, rank: int, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The module's (A, B), or zeros of that rank where the adapter leaves the module alone."""
    if module in pairs:
        return pairs[module]["A"], pairs[module]["B"]
    n_in, n_out = shape
    return np.zeros((rank, n_in), np.float32), np.zeros((n_out, rank), np.float32)


def flatten(under_dir: Path, student_dir: Path, out: Path) -> Path:
    """One PEFT LoRA at `out` equal to `under_dir`'s plus `student_dir`'s (modules only one adapts get
    zeros in the other's rows); the student's training record comes along."""
    from safetensors.numpy import save_file

    _, s1, r1, p1 = _pairs(under_dir)
    cfg, s2, r2, p2 = _pairs(student_dir)
    tensors = {}
    for module in sorted(set(p1) | set(p2)):
        some = p1.get(module) or p2[module]
        shape = some["A"].shape[1], some["B"].shape[0]
        (a1, b1), (a2, b2) = _ab(p1, module, r1, shape), _ab(p2, module, r2, shape)
        tensors[f"base_model.model.{module}.lora_A.weight"] = np.ascontiguousarray(np.concatenate([a1, a2], axis=0))
        tensors[f"base_model.model.{module}.lora_B.weight"] = np.ascontiguousarray(np.concatenate([s1 * b1, s2 * b2], axis=1))
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    save_file(tensors, str(out / "adapter_model.safetensors"))
    rank = r1 + r2
    modules = sorted({name.split(".")[-3] for name in tensors})
    (out / "adapter_config.json").write_text(json.dumps({**cfg, "r": rank, "lora_alpha": rank, "target_modules": modules,
                                                         "rank_pattern": {}, "alpha_pattern": {}}, indent=2))
    record = student_dir / "edgeslm_training.json"
    if record.is_file():
        shutil.copy2(record, out / record.name)
    return out


def train(settings, store, entry, base_gguf: Path, pairs: list, peft_dir: Path, cfg, progress, fingerprint: dict,
          dev: list) -> tuple[dict, Path]:
    """finetune.train for a task of `entry`, on top of its default adapter when `cfg.on_default` and it
    has one: (the training record, the PEFT directory to land in the store: the flattened adapter then)."""
    from edgeslm.pipeline import finetune

    below = under(settings, store, entry, base_gguf) if cfg.on_default else None
    fingerprint = {**fingerprint, "on": below[1] if below else None}
    record = finetune.train(base_gguf, pairs, peft_dir, cfg, progress, fingerprint=fingerprint, dev=dev,
                            cache=settings.cache, under=below[0] if below else None)
    if below is None:
        return record, peft_dir
    return record, flatten(below[0], peft_dir, peft_dir.with_name("stacked"))
