"""Inference backends behind one protocol (base.py). The registry below is the only place that
chooses a backend by format."""

from __future__ import annotations

from pathlib import Path

from edgeslm.backends.base import Backend
from edgeslm.errors import BackendError


def open_backend(path: Path, fmt: str, **kwargs) -> Backend:
    if fmt == "gguf":
        from edgeslm.backends.llamacpp import LlamaCppBackend

        return LlamaCppBackend(path, **kwargs)
    if fmt == "onnx":
        from edgeslm.backends.onnx import OnnxGenaiBackend

        return OnnxGenaiBackend(path, **kwargs)
    raise BackendError(f"no backend for model format '{fmt}' (supported: gguf, onnx); fix the catalog entry",
                       code="unknown_format")


def build_features(fmt: str) -> str:
    """What the inference library behind `fmt` was built with (SIMD, GPU offload...)."""
    if fmt == "gguf":
        from edgeslm.backends.llamacpp import build_features as llamacpp_features

        return llamacpp_features()
    if fmt == "onnx":
        import onnxruntime
        import onnxruntime_genai

        return f"onnxruntime-genai {onnxruntime_genai.__version__} on onnxruntime {onnxruntime.__version__} (CPU)"
    return ""


def check_adapter(fmt: str, base: Path, adapter: Path) -> None:
    """Load `adapter` onto `base` with the backend that serves `fmt`; raises BackendError if it refuses."""
    if fmt == "gguf":
        from edgeslm.backends.llamacpp import check_lora

        check_lora(base, adapter)
        return
    raise ValueError(f"no backend for format '{fmt}' (supported: gguf)")
