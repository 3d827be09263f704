"""`edgeslm quantize`: resolve the source, build the full-precision reference, convert, measure what
was lost, and put the result in the store as a new model.

The reference is the exact model being converted at F16: the base, with the adapter merged when there
is one. A merged candidate is that model quantized; an unmerged candidate is the base quantized with
the adapter applied at run time (it is stored with the new model, so `MODEL@TASK` serves it). When a
merged conversion fails the gate, the unmerged alternative is built and measured too, so the
recommendation comes from numbers measured in this run.

Also owns the cached F16 rewrite of a GGUF base (`Settings.cache/f16/<sha256>.gguf`, the KEEP_F16 most
recently used): a second conversion of the same model, to another target or with another adapter,
starts from it instead of rewriting the base again.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgeslm.config import Settings
from edgeslm.errors import DoesNotFit, InvalidRequest
from edgeslm.quantize import gate, hf
from edgeslm.quantize.gguf_write import (
    FULL_PRECISION,
    GGUF_TARGETS,
    free_disk,
    quantize,
    rewrite,
)
from edgeslm.store.adapters import Adapter, AdapterStore
from edgeslm.store.gguf_io import read_header
from edgeslm.store.registry import Catalog, ModelEntry, sha256_file

Steps = Callable[[str], contextlib.AbstractContextManager]  # label -> context yielding a (done, total) callback
# bits per weight, for the disk check (ONNX: a float32 checkpoint plus the export, whose embedding stays float32)
BITS = {"F32": 32, "F16": 16, "Q8_0": 8.5, "Q5_K_M": 5.7, "Q4_K_M": 4.9, "int8": 32 + 32, "int4": 32 + 32}
ONNX_TARGETS = ("int4", "int8")
KEEP_F16 = 2


@dataclass
class Candidate:
    name: str  # e.g. "Q4_K_M, adapter merged"
    path: Path
    adapters: list[tuple[Path, float]] = field(default_factory=list)
    size: int = 0  # bytes on disk, the adapter included when unmerged
    neutral: gate.Quality | None = None
    task: gate.Quality | None = None
    tokens_per_s: float = 0.0

    @property
    def passes(self) -> bool:
        return all(q.passes for q in (self.neutral, self.task) if q is not None)

    def to_json(self) -> dict:
        return {"name": self.name, "size_bytes": self.size, "tokens_per_s": self.tokens_per_s, "passes": self.passes,
                "neutral": self.neutral.to_json() if self.neutral else None,
                "task": self.task.to_json() if self.task else None}


def parse_target(text: str) -> tuple[str, str]:
    kind, _, name = text.partition(":")
    choices = [f"gguf:{t}" for t in GGUF_TARGETS if t != "F32"] + [f"onnx:{t}" for t in ONNX_TARGETS]
    if kind == "gguf" and name in GGUF_TARGETS:
        return kind, name
    if kind == "onnx" and name in ONNX_TARGETS:
        return kind, name
    raise InvalidRequest(f"unknown target '{text}'; choose one of {', '.join(choices)}", param="to")


def resolve(catalog: Catalog, src: str, base: str | None) -> tuple[Path, ModelEntry, Path | None]:
    """(base GGUF, its catalog entry, HF checkpoint or None) for SRC: a GGUF file, a checkpoint
    directory (laid out on --base, default the default model), or a catalog id."""
    path = Path(src).expanduser()
    if path.is_dir():
        if not hf.is_checkpoint(path):
            raise InvalidRequest(f"{path} is a directory without config.json: not a Hugging Face checkpoint",
                                 param="src")
        _, arch = hf.read_config(path)
        entry = catalog.get(base or catalog.settings.default_model)
        if entry.architecture != arch:
            raise InvalidRequest(f"{path.name} is a {arch} checkpoint; --base '{entry.id}' is {entry.architecture}",
                                 param="base")
        return catalog.ensure_local(entry), entry, path
    if path.is_file() or src.endswith(".gguf"):
        meta, _ = read_header(path)  # a clear error for a missing, truncated or non-GGUF file
        if meta.get("general.type", "model") != "model":
            raise InvalidRequest(f"{path}: a GGUF {meta.get('general.type')}, not a model", param="src")
        return path, catalog.entry_for(str(path)), None
    entry = catalog.get(src)  # NotFound lists the known ids
    return catalog.ensure_local(entry), entry, None


def _params(gguf_path: Path) -> int:
    _, tensors = read_header(gguf_path)
    return sum(math.prod(t.shape) for t in tensors)


def check_disk(where: Path, n_params: int, target: str, unmerged_fallback: bool) -> None:
    """Everything this run writes must fit before anything is written: the F16 reference, the target,
    and the unmerged alternative's F16 and target when it may be needed."""
    need = n_params * (16 + BITS[target]) / 8 * (2 if unmerged_fallback else 1)
    free = free_disk(where)
    if need > free:
        raise DoesNotFit(f"quantizing needs about {need / 2**20:.0f} MiB of disk in {where}, only "
                         f"{free / 2**20:.0f} MiB is free; free some space or set EDGESLM_HOME elsewhere")


def f16_of(settings: Settings, base_gguf: Path, progress=None) -> Path:
    """`base_gguf` rewritten to F16, from the cache (by the file's content) or written into it now (one
    process at a time: another that needs it meanwhile waits); read-only for callers."""
    from filelock import FileLock

    sha256 = sha256_file(base_gguf)
    root = settings.cache / "f16"
    done = root / f"{sha256}.gguf"
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f".{sha256}.lock")):
        if not done.is_file():
            tmp = root / f".{sha256}.{os.getpid()}.partial"
            try:
                rewrite(base_gguf, tmp, "F16", progress=progress)
                tmp.rename(done)
            finally:
                tmp.unlink(missing_ok=True)
    os.utime(done)  # most recently used
    for old in sorted(root.glob("*.gguf"), key=lambda p: p.stat().st_mtime, reverse=True)[KEEP_F16:]:
        old.unlink(missing_ok=True)
    return done


def _measure(c: Candidate, ref: gate.Scorer, task_texts: list[str], threads: int, step: Steps,
             fmt: str = "gguf") -> Candidate:
    with step(f"measuring {c.name}") as advance:
        s = gate.Scorer(c.path, c.adapters, threads, fmt, ref.gpu_layers if fmt == "gguf" else 0)  # the F16 fits -> so does it
        try:
            c.neutral = gate.measure(ref, s, gate.NEUTRAL)
            advance(1, 3)
            c.task = gate.measure(ref, s, task_texts) if task_texts else None
            advance(2, 3)
            c.tokens_per_s = s.decode_tps()
            advance(3, 3)
        finally:
            s.close()
    c.size = sum(f.stat().st_size for f in (c.path.iterdir() if c.path.is_dir() else [c.path]))
    c.size += sum(p.stat().st_size for p, _ in c.adapters)
    return c


@dataclass
class Outcome:
    source: str
    target: str
    stored: str  # model id in the store
    candidates: list[Candidate]
    recommendation: str

    @property
    def passes(self) -> bool:
        return self.candidates[0].passes

    def to_json(self) -> dict:
        return {"source": self.source, "target": self.target, "stored": self.stored, "passes": self.passes,
                "recommendation": self.recommendation, "thresholds": {"max_kl": gate.MAX_KL, "min_top1": gate.MIN_TOP1},
                "candidates": [c.to_json() for c in self.candidates]}


def _gpu_layers(settings: Settings, path: Path, fmt: str = "gguf") -> int:
    """The layers the gate offloads for `path`: what the memory plan picks under --gpu-layers."""
    if fmt != "gguf":
        return 0
    from edgeslm.backends import memory

    return memory.plan_for("gguf", Path(path), settings).gpu_layers


def run(settings: Settings, src: str, target: str, *, adapter: str | None = None, merge: bool = False,
        base: str | None = None, model_id: str | None = None, task_texts: list[str] | tuple = (), threads: int = 2,
        step: Steps | None = None) -> Outcome:
    kind, name = parse_target(target)
    step = step or (lambda label: contextlib.nullcontext(lambda done, total: None))
    catalog = Catalog(settings)
    base_gguf, entry, ckpt = resolve(catalog, src, base)
    lora: Adapter | None = None
    if adapter:
        lora = AdapterStore(settings.adapters_dir).get(entry.id, adapter, entry.sha256)
    if merge and lora is None:
        raise InvalidRequest("--merge needs --adapter TASK (the adapter to merge)", param="merge")
    if kind == "onnx" and lora is not None and not merge:
        raise InvalidRequest("an ONNX export carries no unmerged adapter; add --merge", param="merge")
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    check_disk(settings.models_dir, _params(base_gguf), name, bool(lora) and merge)
    model_id = model_id or f"{entry.id}{'-' + (adapter or '') if lora and merge else ''}-{kind}-{name}".lower().replace(
        "-gguf-", "-")
    with tempfile.TemporaryDirectory(dir=settings.models_dir, prefix=".quantize-") as tmp_name:
        tmp = Path(tmp_name)
        with step("F16 reference") as advance:
            plain = tmp / "base-f16.gguf"
            if ckpt is not None:
                hf.to_gguf(ckpt, base_gguf, plain, "F16", advance)
            else:
                plain = f16_of(settings, base_gguf, advance)
        ref_path = plain
        if lora is not None:
            with step("F16 reference, adapter merged") as advance:
                ref_path = rewrite(plain, tmp / "merged-f16.gguf", "F16", merge=lora.gguf, progress=advance)

        if kind == "onnx":
            return _onnx(settings, catalog, src, name, entry, base_gguf, ckpt, lora, ref_path, model_id, tmp,
                         list(task_texts), threads, step)

        def build(merged: bool) -> Candidate:
            source = ref_path if merged else plain
            out = tmp / f"{'merged' if merged else 'base'}-{name}.gguf"
            if name in FULL_PRECISION:
                out = source if name == "F16" else rewrite(source, out, name)
            else:
                with step(f"quantizing to {name}") as advance:
                    advance(0, 1)
                    quantize(source, out, name, threads)
                    advance(1, 1)
            kind_ = "" if lora is None else (", adapter merged" if merged else ", adapter unmerged")
            return Candidate(f"{name}{kind_}", out, [] if merged or lora is None else [(lora.gguf, 1.0)])

        ref = gate.Scorer(ref_path, [], threads, gpu_layers=_gpu_layers(settings, ref_path))
        try:
            first = _measure(build(merge or lora is None), ref, list(task_texts), threads, step)
            candidates = [first]
            if lora is not None and merge and not first.passes:
                candidates.append(_measure(build(False), ref, list(task_texts), threads, step))
        finally:
            ref.close()
        chosen = first
        stored = catalog.import_gguf(chosen.path, model_id)
        if lora is not None and not merge:
            AdapterStore(settings.adapters_dir).add(stored.id, stored.sha256, catalog.path_of(stored), lora.task,
                                                    lora.dir / "peft")
    return Outcome(src, f"{kind}:{name}", stored.id + (f"@{adapter}" if lora and not merge else ""), candidates,
                   recommend(candidates, name))


def _onnx(settings, catalog, src, name, entry, base_gguf, ckpt, lora, ref_path, model_id, tmp, task_texts,
          threads, step) -> Outcome:
    """The ONNX path: a float32 checkpoint (the adapter merged by peft), the builder, the same gate."""
    from edgeslm.quantize.onnx_export import export

    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise InvalidRequest("ONNX export needs torch and transformers: pip install -e '.[convert]'",
                             param="to") from None
    with step("float32 checkpoint") as advance:
        advance(0, 1)
        hf_dir = tmp / "hf"
        if ckpt is not None:
            hf_dir.mkdir()
            for f in ckpt.iterdir():  # the builder's config fix must not touch the user's files
                (hf_dir / f.name).symlink_to(f.resolve()) if f.name != "config.json" else shutil.copy(f, hf_dir / f.name)
        else:
            hf.checkpoint_from_gguf(base_gguf, hf_dir, lora.dir / "peft" if lora is not None else None,
                                     settings.cache)
        advance(1, 1)
    with step(f"onnxruntime-genai model builder, {name}") as advance:
        advance(0, 1)
        out = export(hf_dir, tmp / "onnx", name, tmp / "builder.log")
        advance(1, 1)
    c = Candidate(f"ONNX {name}" + (", adapter merged" if lora is not None else ""), out)
    ref = gate.Scorer(ref_path, [], threads, gpu_layers=_gpu_layers(settings, ref_path))
    try:
        _measure(c, ref, task_texts, threads, step, fmt="onnx")
    finally:
        ref.close()
    stored = catalog.import_onnx(out, model_id, entry, f"onnx-{name}")
    rec = recommend([c], name)
    if not c.passes and name == "int4":
        rec = f"{c.name} loses too much; try onnx:int8, or a GGUF target (gguf:Q4_K_M with the adapter unmerged)."
    return Outcome(src, f"onnx:{name}", stored.id, [c], rec)


def recommend(candidates: list[Candidate], name: str) -> str:
    first = candidates[0]
    if first.passes:
        return f"{first.name} keeps the model within the gate (KL <= {gate.MAX_KL}, top-1 >= {gate.MIN_TOP1:.0%})."
    alt = next((c for c in candidates[1:] if c.passes), None)
    if alt is not None:
        return (f"{first.name} loses too much; serve the adapter unmerged on {name} instead "
                f"(measured above), or merge to Q8_0.")
    if name not in ("Q8_0", "F16"):
        return f"{first.name} loses too much; try gguf:Q8_0 (or F16) instead."
    return f"{first.name} loses too much even at {name}; check the source model."
