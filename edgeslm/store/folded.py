"""Served copies: a model's GGUF with one adapter folded into its weights, so that the adapter most
requests run under decodes at the bare base's speed.

Owns building a copy and finding it again. A LoRA applied at decode time adds two thin products per
adapted weight to every step (the shipped `tools` adapter decoded at 0.78x the base on this project's
CPUs); folded in, W + scale * alpha / r * B @ A is one weight again. Every tensor the adapter leaves
alone is copied byte for byte in its own quantization; each adapted weight is dequantized, the
adapter's product added, and stored at Q8_0. Requantizing it to the base's Q4_K would round twice
(`benchmarks.quantize`: a LoRA merged and quantized to Q4_K_M, KL 0.063 on its task against 0.0036
unmerged); Q8_0's step is a small fraction of Q4_K's, and llama.cpp's Q8_0 kernels are as fast.

A copy is named by the base's sha256 and the adapter file's, and lives under the cache (it can always
be built again). It is written to a temporary file and renamed: a copy that exists is whole. One
process builds it at a time (a file lock under the cache's locks/); another that needs it waits for that build.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgeslm.errors import InvalidRequest
from edgeslm.store.gguf_io import open_writer, read_header, tensor_array
from edgeslm.store.lora_gguf import lora_deltas

log = logging.getLogger("edgeslm.store")
FOLDED_TYPE = "Q8_0"
_building = threading.Lock()  # one build at a time in a process: each holds the model's weights in numpy


def _sha256(path: Path) -> str:
    st = path.stat()
    return _hashed(str(path), st.st_ino, st.st_size, st.st_mtime_ns)  # once per file version, not per request


@functools.lru_cache(maxsize=64)
def _hashed(path: str, ino: int, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def path_for(cache: Path, base_sha256: str, adapter_gguf: Path) -> Path:
    """Where the copy of the base (by its sha256) with this adapter file folded in lives."""
    return cache / "folded" / f"{base_sha256[:16]}-{_sha256(adapter_gguf)[:16]}.gguf"


def _prune(dst: Path) -> None:
    """Copies of the same base with an earlier version of an adapter leave when a new one is built (a
    copy is a few hundred MiB; a retrained default adapter would otherwise leave one per version)."""
    base = dst.name.split("-", 1)[0]
    for old in dst.parent.glob(f"{base}-*.gguf"):
        if old != dst:
            old.unlink(missing_ok=True)


def find(cache: Path, base_sha256: str, adapter_gguf: Path) -> Path | None:
    """The copy when it has been built, else None."""
    p = path_for(cache, base_sha256, adapter_gguf)
    return p if p.is_file() else None


def ensure(cache: Path, base_sha256: str, base: Callable[[], Path], adapter_gguf: Path,
           progress: Callable[[int, int], None] | None = None) -> Path:
    """The copy, built from the GGUF `base()` returns unless it exists. Processes that need the same
    copy at once (two servers starting together) wait for one build."""
    from filelock import FileLock

    dst = path_for(cache, base_sha256, adapter_gguf)
    if dst.is_file():
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    (cache / "locks").mkdir(exist_ok=True)
    with FileLock(str(cache / "locks" / f"folded-{dst.name}.lock")):
        return dst if dst.is_file() else build(base(), adapter_gguf, dst, progress)


def build(base: Path, adapter_gguf: Path, dst: Path, progress: Callable[[int, int], None] | None = None) -> Path:
    """The base GGUF `base` with the GGUF LoRA `adapter_gguf` folded in, written to `dst` (see the
    module's docstring). `progress(done, total)` counts adapted weights."""
    import gguf

    meta, tensors = read_header(base, full=True)
    deltas = lora_deltas(adapter_gguf)
    by_name = {t.name: t for t in tensors}
    missing = sorted(set(deltas) - set(by_name))
    if missing:
        raise InvalidRequest(f"the adapter adapts tensors {missing[:3]} that {base.name} lacks", param="adapter")
    q8 = gguf.GGMLQuantizationType[FOLDED_TYPE]
    block, size = gguf.GGML_QUANT_SIZES[q8]
    for name in deltas:
        if by_name[name].shape[0] % block:
            raise InvalidRequest(f"{name}: rows of {by_name[name].shape[0]} do not split into {FOLDED_TYPE} "
                                 f"blocks of {block}", param="adapter")

    def layout(t) -> tuple:
        """(type, bytes) of tensor `t` in the copy: Q8_0 where the adapter adapts it, else as in the base."""
        qtype = q8 if t.name in deltas else gguf.GGMLQuantizationType(t.ggml_type)
        b, s = gguf.GGML_QUANT_SIZES[qtype]
        return qtype, math.prod(t.shape) // b * s

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.partial")
    with _building:
        try:
            w = open_writer(meta, tmp, int(meta.get("general.file_type", 0) or 0))
            for t in tensors:
                outer = tuple(reversed(t.shape[1:]))  # numpy order; the last axis is a row of blocks
                qtype, nbytes = layout(t)
                b, s = gguf.GGML_QUANT_SIZES[qtype]
                if qtype in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
                    w.add_tensor_info(t.name, (*outer, t.shape[0]), np.dtype(
                        np.float32 if qtype == gguf.GGMLQuantizationType.F32 else np.float16), nbytes)
                else:
                    w.add_tensor_info(t.name, (*outer, t.shape[0] // b * s), np.dtype(np.uint8), nbytes,
                                      raw_dtype=qtype)
            w.write_header_to_file()
            w.write_kv_data_to_file()
            w.write_ti_data_to_file()
            done = 0
            with base.open("rb") as f:
                mm = np.memmap(f, np.uint8, mode="r")
                for t in tensors:
                    if t.name in deltas:
                        merged = tensor_array(mm, t) + deltas[t.name]
                        w.write_tensor_data(gguf.quants.quantize(merged.astype(np.float32), q8))
                        done += 1
                        if progress:
                            progress(done, len(deltas))
                    else:  # the writer writes bytes as they are
                        w.write_tensor_data(np.frombuffer(mm, np.uint8, layout(t)[1], t.offset))
            w.close()
            os.replace(tmp, dst)
            _prune(dst)
        finally:
            tmp.unlink(missing_ok=True)
    log.info("folded %s into a served copy of %s: %s", adapter_gguf, base.name, dst)
    return dst
