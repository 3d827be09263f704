"""Adapters that ship inside the package (edgeslm/assets/adapters/<base>/<task>/), landed in the store
on first use: serialized across threads and processes, staged, and checked by sha256 before they
become visible; an adapter trained or imported here is never replaced."""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import tempfile
import threading
from pathlib import Path

from edgeslm.errors import ServerFault

GGUF_NAME = "adapter.gguf"
SHIPPED = Path(__file__).resolve().parents[1] / "assets" / "adapters"
_LAND_LOCK = threading.Lock()


def land_shipped(root: Path, base_id: str, task: str) -> None:
    """Copy a packaged adapter into the store when the store has none, or holds an older packaged
    build (its manifest's adapter_sha256 differs); adapters trained or imported here are never touched.
    Serialized across threads and processes (a lock file), staged in a unique folder, checked by
    sha256 before it becomes visible."""
    src = SHIPPED / base_id / task
    if not (src / "manifest.json").is_file():
        return
    try:
        packaged = (src / "manifest.json").read_bytes()
        want = (json.loads(packaged).get("adapter_sha256"), hashlib.sha256(packaged).hexdigest())
    except (OSError, ValueError):
        return
    if _current(root, base_id, task, want):
        return
    (root / base_id).mkdir(parents=True, exist_ok=True)
    with _LAND_LOCK, open(root / base_id / ".landing.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _current(root, base_id, task, want):  # another thread or process landed it meanwhile
            return
        stage = Path(tempfile.mkdtemp(prefix=f".{task}.landing-", dir=root / base_id))
        try:
            shutil.copytree(src, stage, dirs_exist_ok=True)
            if hashlib.sha256((stage / GGUF_NAME).read_bytes()).hexdigest() != want[0]:
                raise ServerFault(f"the packaged adapter '{task}' of '{base_id}' does not match its "
                                  "manifest; reinstall edgeslm", param="adapter", code="adapter_corrupt")
            manifest = json.loads((stage / "manifest.json").read_text())
            (stage / "manifest.json").write_text(json.dumps(
                {**manifest, "recipe_source": manifest.get("source"), "source": "package",
                 "package_manifest_sha256": want[1]}, indent=2))
            final = root / base_id / task
            if final.exists():
                shutil.rmtree(final)
            stage.rename(final)
        finally:
            shutil.rmtree(stage, ignore_errors=True)

def _current(root: Path, base_id: str, task: str, want: tuple[str | None, str]) -> bool:
    """Whether the store's copy is up to date: trained or imported here (left alone), or this packaged build
    (its GGUF and its manifest: a new manifest, with new sampling defaults say, lands too)."""
    try:
        have = json.loads((root / base_id / task / "manifest.json").read_text())
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True  # a damaged copy is reported by get(), not silently replaced
    return have.get("source") != "package" or (
        have.get("adapter_sha256") == want[0] and have.get("package_manifest_sha256") == want[1])

