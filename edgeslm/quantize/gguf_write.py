"""GGUF writing: full-precision rewrites with our own writer on the `gguf` package, and quantization.

Owns: rewriting a GGUF at F32/F16 (dequantizing whatever the source holds, optionally merging a LoRA
into the weights in numpy) and quantizing with llama.cpp's `llama_model_quantize`. Outputs are written
to a temporary file and renamed, so a failure never leaves a partial model behind. Knows nothing of
the store or of quality: run.py and gate.py do that.

A GGUF source is already in llama.cpp's conventions (for Gemma 3: norm weights stored +1, lm_head tied
to token_embd), so a rewrite copies metadata, tokenizer and tensor layout unchanged and only changes
the numbers.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgeslm.errors import EdgeError, InvalidRequest
from edgeslm.store.gguf_io import FILE_TYPES, open_writer, read_header, tensor_array  # noqa: F401 - tensor_array: callers import it here
from edgeslm.store.lora_gguf import lora_deltas

Progress = Callable[[int, int], None]  # (done, total) in bytes written

GGUF_TARGETS = {"F32": 0, "F16": 1, "Q8_0": 7, "Q4_K_M": 15, "Q5_K_M": 17}  # name -> llama_ftype
FULL_PRECISION = ("F32", "F16")


def rewrite(src: Path, dst: Path, dtype: str = "F16", merge: Path | None = None,
            progress: Progress | None = None) -> Path:
    """A full-precision copy of the GGUF `src` (F32 or F16), with the LoRA `merge` folded into its
    weights when given."""
    meta, tensors = read_header(src, full=True)
    deltas = lora_deltas(merge) if merge else {}
    missing = set(deltas) - {t.name for t in tensors}
    if missing:
        raise InvalidRequest(f"the adapter adapts tensors {sorted(missing)[:3]} that {Path(src).name} lacks",
                             param="adapter")
    with open(src, "rb") as f:
        mm = np.memmap(f, np.uint8, mode="r")

        def array(t) -> np.ndarray:
            x = tensor_array(mm, t)
            return x + deltas[t.name] if t.name in deltas else x

        return write(meta, tensors, array, dst, dtype, progress)


def write(meta: dict, tensors: list, array: Callable, dst: Path, dtype: str, progress: Progress | None = None
          ) -> Path:
    """A GGUF at `dst` with `meta` (read_header(..., full=True) of a model), the tensor table `tensors`
    and each tensor's float values from `array(tensor)`: F16 or F32, 1-D tensors always F32 as
    llama.cpp expects."""
    if dtype not in FULL_PRECISION:
        raise InvalidRequest(f"full-precision GGUFs are F32 or F16, not '{dtype}'", param="to")
    tmp = dst.with_name(f".{dst.name}.partial")
    try:
        w = open_writer(meta, tmp, GGUF_TARGETS[dtype])

        def out_type(t) -> np.dtype:
            return np.dtype(np.float32 if len(t.shape) == 1 or dtype == "F32" else np.float16)

        for t in tensors:
            shape = tuple(reversed(t.shape))
            w.add_tensor_info(t.name, shape, out_type(t), math.prod(shape) * out_type(t).itemsize)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        total, done = sum(math.prod(t.shape) for t in tensors), 0
        for t in tensors:
            x = array(t)
            if x.shape != tuple(reversed(t.shape)):
                raise InvalidRequest(f"{t.name}: shape {x.shape} does not fit the layout {tuple(reversed(t.shape))}",
                                     param="src")
            w.write_tensor_data(np.ascontiguousarray(x, dtype=out_type(t)))
            done += math.prod(t.shape)
            if progress:
                progress(done, total)
        w.close()
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return dst


def quantize(src: Path, dst: Path, target: str, threads: int = 0) -> Path:
    """`src` (a GGUF) quantized to `target` by llama.cpp, through a temporary file."""
    import llama_cpp

    if target not in GGUF_TARGETS or target in FULL_PRECISION:
        raise InvalidRequest(f"unknown quantization '{target}'; choose one of "
                             f"{', '.join(t for t in GGUF_TARGETS if t not in FULL_PRECISION)}", param="to")
    tmp = dst.with_name(f".{dst.name}.partial")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = GGUF_TARGETS[target]
    params.nthread = threads
    params.allow_requantize = True  # a quantized source is requantized (the quality gate says what it cost)
    from llama_cpp._utils import suppress_stdout_stderr

    try:
        with suppress_stdout_stderr(disable=False):  # llama.cpp prints a line per tensor
            rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), params)
        if rc != 0:
            raise EdgeError(f"llama.cpp could not quantize {src.name} to {target} (code {rc})")
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return dst


def file_type(path: Path) -> str:
    meta, _ = read_header(path)
    return FILE_TYPES.get(int(meta.get("general.file_type", -1)), "unknown")


def free_disk(path: Path) -> int:
    return shutil.disk_usage(path if path.is_dir() else path.parent).free
