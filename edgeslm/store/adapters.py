"""The adapter store: per-task LoRA adapters under EDGESLM_HOME/adapters/<base-id>/<task>/.

Each adapter directory holds `manifest.json` (base id and sha256, architecture, rank, alpha, target
modules, source, creation time...) and `adapter.gguf` (the LoRA as llama.cpp loads it). Owns lookup
and the checks that keep an adapter on the base it was made for. Knows nothing about loading.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeslm.errors import InvalidRequest, NotFound, ServerFault
from edgeslm.store.gguf_io import read_header
from edgeslm.store.shipped import GGUF_NAME, SHIPPED, land_shipped

__all__ = ["GGUF_NAME", "NONE", "SHIPPED", "Adapter", "AdapterStore", "check_task"]
TASK_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
NONE = "none"  # the task name that asks for the bare base (no adapter, not even the model's default)


@dataclass(frozen=True)
class Adapter:
    base: str
    task: str
    dir: Path
    manifest: dict

    @property
    def gguf(self) -> Path:
        return self.dir / GGUF_NAME


def check_task(task: str) -> str:
    if not TASK_RE.match(task or "") or task == NONE:
        raise InvalidRequest(
            f"invalid adapter task name '{task}': use lowercase letters, digits, '_' and '-' "
            f"(starting with a letter or digit, at most 64; '{NONE}' is reserved for the bare base)", param="adapter")
    return task


class AdapterStore:
    def __init__(self, root: Path):
        self.root = root

    def tasks(self, base: str) -> list[str]:
        d = self.root / base
        return sorted(p.name for p in d.iterdir()
                      if not p.name.startswith(".") and (p / "manifest.json").is_file()) if d.is_dir() else []

    def bases_with(self, task: str) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / task / "manifest.json").is_file())

    def get(self, base_id: str, task: str, base_sha256: str = "") -> Adapter:
        """The adapter for `task` on `base_id`; refuses one made for another base."""
        check_task(task)
        d = self.root / base_id / task
        land_shipped(self.root, base_id, task)
        if not (d / "manifest.json").is_file():
            others = self.bases_with(task)
            if others:
                raise InvalidRequest(
                    f"adapter '{task}' was made for base {', '.join(others)}, not '{base_id}'", param="adapter",
                    code="adapter_base_mismatch")
            have = self.tasks(base_id)
            raise NotFound(f"no adapter '{task}' for '{base_id}'; "
                           + (f"its adapters: {', '.join(have)}" if have else "it has no adapters yet"),
                           param="adapter", code="adapter_not_found")
        try:
            manifest = json.loads((d / "manifest.json").read_text())
        except (OSError, ValueError) as e:
            raise ServerFault(f"{d / 'manifest.json'}: unreadable manifest ({e}); remove the adapter and import it again",
                              code="adapter_corrupt") from None
        if manifest.get("base_id", base_id) != base_id or (
                base_sha256 and manifest.get("base_sha256") and manifest["base_sha256"] != base_sha256):
            raise InvalidRequest(
                f"adapter '{task}' was made for base {manifest.get('base_id')} "
                f"(sha256 {str(manifest.get('base_sha256'))[:12]}...), not this '{base_id}' "
                f"(sha256 {base_sha256[:12]}...)", param="adapter", code="adapter_base_mismatch")
        adapter = Adapter(base_id, task, d, manifest)
        if not adapter.gguf.is_file():
            raise NotFound(f"adapter '{task}' of '{base_id}' has no {GGUF_NAME}", param="adapter")
        try:
            meta, _ = read_header(adapter.gguf)
        except InvalidRequest as e:
            raise ServerFault(f"adapter '{task}' of '{base_id}' is damaged ({e.message}); remove it and import "
                              f"it again", param="adapter", code="adapter_corrupt") from None
        if meta.get("adapter.type") != "lora":
            raise ServerFault(f"adapter '{task}' of '{base_id}': {GGUF_NAME} is not a GGUF LoRA; remove it and import "
                              "it again", param="adapter", code="adapter_corrupt")
        return adapter

    def has(self, base_id: str, task: str) -> bool:
        """Whether `task` of `base_id` is in the store (a packaged one is landed first)."""
        land_shipped(self.root, base_id, task)
        return (self.root / base_id / task / "manifest.json").is_file()

    # ---- changes ---------------------------------------------------------------------------------

    def add(self, base_id: str, base_sha256: str, base_gguf: Path, task: str, peft_dir: Path,
            verify: Callable[[Path, Path], None] | None = None, sampling: dict | None = None) -> Adapter:
        """Import a PEFT LoRA as `task` of `base_id`: convert it to GGUF, keep the PEFT files, write the
        manifest (with `sampling`, the adapter's sampling defaults, when given). `verify(base_gguf,
        adapter_gguf)` may refuse the result before it becomes visible."""
        from edgeslm.store.lora_gguf import convert

        check_task(task)
        peft_dir = Path(peft_dir).expanduser()
        final = self.root / base_id / task
        if (final / "manifest.json").is_file():
            raise InvalidRequest(f"'{base_id}' already has an adapter '{task}'; remove it first "
                                 f"(edgeslm adapters rm {base_id} {task})", param="task")
        stage = self.root / base_id / f".{task}.staging"
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir(parents=True)
        try:
            info = convert(peft_dir, base_gguf, stage / GGUF_NAME)
            if verify is not None:
                verify(base_gguf, stage / GGUF_NAME)
            shutil.copytree(peft_dir, stage / "peft")
            training = peft_dir / "edgeslm_training.json"  # written by `edgeslm finetune`, when trained here
            manifest = {
                "base_id": base_id, "base_sha256": base_sha256, "architecture": info.architecture,
                "task": task, "rank": info.rank, "alpha": info.alpha, "target_modules": info.target_modules,
                "tensors": info.tensors, "peft_base_model": info.base_model, "source": str(peft_dir.resolve()),
                "training": json.loads(training.read_text()) if training.is_file() else None,
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
            if sampling:
                manifest["sampling"] = dict(sampling)
            (stage / "manifest.json").write_text(json.dumps(manifest, indent=2))
            if final.exists():
                shutil.rmtree(final)
            stage.rename(final)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        return Adapter(base_id, task, final, manifest)

    def remove(self, base_id: str, task: str) -> None:
        check_task(task)
        d = self.root / base_id / task
        if not d.is_dir():
            raise NotFound(f"no adapter '{task}' for '{base_id}'", param="task", code="adapter_not_found")
        shutil.rmtree(d)

    def all(self) -> list[Adapter]:
        out = []
        if self.root.is_dir():
            for base in sorted(p for p in self.root.iterdir() if p.is_dir()):
                for task in self.tasks(base.name):
                    try:
                        manifest = json.loads((base / task / "manifest.json").read_text())
                    except (OSError, ValueError):
                        manifest = {}
                    out.append(Adapter(base.name, task, base / task, manifest))
        return out
