"""Catalog entries: what a model is (`ModelEntry`, its `Source`), reading a catalog file, the shipped
catalog's location, and the sha256 of a file. Below the catalog, its fetching and its imports."""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
Progress = Callable[[int, int], None]  # (bytes done, bytes total)


class Source(BaseModel):
    kind: Literal["pypi", "hf", "path"]
    package: str = ""
    module: str = ""
    repo: str = ""
    file: str = ""
    path: str = ""

    def describe(self) -> str:
        if self.kind == "pypi":
            return f"pypi:{self.package}"
        if self.kind == "hf":
            return f"hf:{self.repo}/{self.file}"
        return f"path:{self.path}"


class SamplingDefaults(BaseModel):
    """Sampling defaults of a model (its catalog entry) or of an adapter (its manifest's `sampling`):
    what a request that leaves a field out gets (decoding/sampler.resolve says in which order)."""

    model_config = ConfigDict(extra="forbid")
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0, description="0: no top-k cut")
    min_p: float | None = Field(None, ge=0, le=1)
    repetition_penalty: float | None = Field(None, gt=0)
    copy_bias: float | None = Field(None, ge=0, le=10, description="edgeslm's (decoding/copying.py); 0: off")
    tool_bias: float | None = Field(None, ge=0, le=10, description="edgeslm's (decoding/copying.py); 0: off")
    call_bias: float | None = Field(None, ge=0, le=10, description="edgeslm's (decoding/copying.py); 0: off")
    more_bias: float | None = Field(None, ge=0, le=10, description="edgeslm's (decoding/copying.py); 0: off")
    arg_bias: float | None = Field(None, ge=0, le=10, description="edgeslm's (decoding/copying.py); 0: off")
    close_bias: float | None = Field(None, ge=0, le=10, description="edgeslm's (decoding/copying.py); 0: off")
    left_bias: float | None = Field(None, ge=0, le=10, description="edgeslm's (decoding/copying.py); 0: off")


class ModelEntry(BaseModel):
    id: str
    aliases: list[str] = Field(default_factory=list)
    name: str = ""
    architecture: str
    family: str = ""
    params: int = 0
    format: Literal["gguf", "onnx"] = "gguf"  # onnx: an onnxruntime-genai folder
    quantization: str = ""
    license: str = ""
    size_mb: int = 0
    context_length: int = 0
    chat_format: str = ""
    tool_format: str = "hermes"
    # the file's sha256, 64 hex digits; "" (or absent): not pinned yet, so pinned on first use (store/fetch.py)
    sha256: str = ""
    # the task adapter a request gets when it names none (`BASE@none` asks for the bare base)
    default_adapter: str = ""
    # sampling defaults (the model card's generation_config, as vLLM reads it; SamplingDefaults' fields);
    # an adapter's manifest overrides them, and they override the GGUF's general.sampling.* keys
    sampling: dict[str, float] = Field(default_factory=dict)
    source: Source

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        value = value.strip().lower()
        if value and not _SHA256.match(value):
            raise ValueError(f"sha256 must be 64 hex digits, or left out to pin the file on first use; got {value!r}")
        return value

    @field_validator("sampling")
    @classmethod
    def _sampling(cls, value: dict) -> dict:
        return SamplingDefaults.model_validate(value).model_dump(exclude_none=True)

    @property
    def filename(self) -> str:
        return self.source.file or Path(self.source.path).name


def shipped_catalog() -> Path:
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "models.toml", here.parent / "models.toml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("models.toml is missing from the edgeslm installation")


def read_catalog(path: Path) -> list[ModelEntry]:
    if not path.is_file():
        return []
    with path.open("rb") as f:
        return [ModelEntry(**m) for m in tomllib.load(f).get("model", [])]


def sha256_file(path: Path, progress: Progress | None = None) -> str:
    digest, total, done = hashlib.sha256(), path.stat().st_size, 0
    with path.open("rb") as f:
        while block := f.read(4 << 20):
            digest.update(block)
            done += len(block)
            if progress:
                progress(done, total)
    return digest.hexdigest()
