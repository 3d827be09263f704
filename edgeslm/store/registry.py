"""The model catalog: models.toml (shipped) plus EDGESLM_HOME/models.toml (imports), and the files.

Owns: which models exist (shipped entries, overridden by the user's), resolving ids, aliases and GGUF
paths, and where each file lives. Putting files into the store is fetch.py (assemble, pull, verify)
and imports.py (a local GGUF or ONNX folder); entries.py defines an entry. Knows nothing about
loading or running a model.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import tomli_w

from edgeslm.config import Settings
from edgeslm.errors import InvalidRequest, NotFound
from edgeslm.store import fetch, gguf_io, imports
from edgeslm.store.entries import ModelEntry, Progress, Source, read_catalog, sha256_file, shipped_catalog

__all__ = ["Catalog", "ModelEntry", "Progress", "Source", "sha256_file", "shipped_catalog"]

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
        user = {e.id: e for e in read_catalog(self.settings.user_catalog)}
        self.entries = [user.pop(e.id, e) for e in read_catalog(shipped_catalog())] + list(user.values())

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

    # ---- files: fetched, assembled and verified in store/fetch.py; imports in store/imports.py ----

    def ensure_local(self, entry: ModelEntry, progress: Progress | None = None) -> Path:
        """The verified local file of `entry`, assembling or pulling it first when needed."""
        return fetch.ensure_local(self, entry, progress)

    def mark_verified(self, entry: ModelEntry, path: Path) -> None:
        fetch.mark_verified(entry, path)

    def import_gguf(self, src: Path, model_id: str | None = None, progress: Progress | None = None) -> ModelEntry:
        """Copy a GGUF into the store and record it in the user catalog."""
        return imports.import_gguf(self, src, model_id, progress)

    def import_onnx(self, src: Path, model_id: str, like: ModelEntry, quantization: str) -> ModelEntry:
        """Move an onnxruntime-genai model folder into the store as `model_id` (see store/imports.py)."""
        return imports.import_onnx(self, src, model_id, like, quantization)

    def save_user(self, entry: ModelEntry) -> None:
        """Record `entry` in the user catalog (replacing one with its id)."""
        users = [e for e in read_catalog(self.settings.user_catalog) if e.id != entry.id] + [entry]
        self.settings.home.mkdir(parents=True, exist_ok=True)
        data = {"model": [e.model_dump(exclude_defaults=False) for e in users]}
        tmp = self.settings.user_catalog.with_suffix(".tmp")
        tmp.write_text(tomli_w.dumps(data))
        os.replace(tmp, self.settings.user_catalog)
        self.entries = [e for e in self.entries if e.id != entry.id] + [entry]
