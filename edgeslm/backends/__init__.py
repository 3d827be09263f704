"""Inference backends behind one protocol (base.py). The registry below is the only place that
chooses a backend by format."""

from __future__ import annotations

from pathlib import Path

from edgeslm.backends.base import Backend


def open_backend(path: Path, fmt: str, **kwargs) -> Backend:
    if fmt == "gguf":
        from edgeslm.backends.llamacpp import LlamaCppBackend

        return LlamaCppBackend(path, **kwargs)
    raise ValueError(f"no backend for format '{fmt}' (supported: gguf)")
