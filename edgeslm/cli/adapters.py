"""`edgeslm adapters ...`: per-task LoRA adapters in the store."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from edgeslm.cli.common import catalog as _catalog
from edgeslm.cli.common import fail as _fail
from edgeslm.cli.common import out
from edgeslm.config import get_settings
from edgeslm.errors import EdgeError

adapters_app = typer.Typer(no_args_is_help=True, help="Per-task LoRA adapters in the store.")


def _adapters():
    from edgeslm.store.adapters import AdapterStore

    return AdapterStore(get_settings().adapters_dir)


@adapters_app.command("import")
def adapters_import(
    peft_dir: Path = typer.Argument(..., metavar="PEFT_DIR", help="adapter_config.json + adapter_model.safetensors."),
    base: str = typer.Option(..., help="Catalog id or alias of the base model it was trained on."),
    task: str = typer.Option(..., help="Task name: lowercase letters, digits, '_' and '-'."),
):
    """Convert a PEFT LoRA to GGUF for BASE, check that llama.cpp loads it, and store it as TASK."""
    from edgeslm.backends import check_adapter

    try:
        cat = _catalog()
        entry = cat.get(base)
        path = cat.ensure_local(entry)
        adapter = _adapters().add(entry.id, entry.sha256, path, task, peft_dir,
                                  verify=lambda b, a: check_adapter(entry.format, b, a))
    except EdgeError as e:
        _fail(e.message)
    m = adapter.manifest
    print(f"imported {entry.id}@{task}: LoRA rank {m['rank']}, alpha {m['alpha']:g}, {m['tensors']} tensors "
          f"({', '.join(m['target_modules'])})")


@adapters_app.command("list")
def adapters_list(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")):
    """List stored adapters: base, task, rank, alpha, targets, created."""
    rows = [{"base": a.base, "task": a.task, "rank": a.manifest.get("rank"), "alpha": a.manifest.get("alpha"),
             "target_modules": a.manifest.get("target_modules"), "created": a.manifest.get("created")}
            for a in _adapters().all()]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("base@task", "rank", "alpha", "targets", "created")
    for r in rows:
        table.add_row(f"{r['base']}@{r['task']}", str(r["rank"]), str(r["alpha"]),
                      ", ".join(r["target_modules"] or []), str(r["created"]))
    out.print(table)


@adapters_app.command("show")
def adapters_show(base: str = typer.Argument(..., metavar="BASE"), task: str = typer.Argument(..., metavar="TASK")):
    """Show one adapter's manifest and files."""
    try:
        entry = _catalog().get(base)
        a = _adapters().get(entry.id, task, entry.sha256)
    except EdgeError as e:
        _fail(e.message)
    print(json.dumps({**a.manifest, "dir": str(a.dir), "gguf": str(a.gguf),
                      "gguf_bytes": a.gguf.stat().st_size}, indent=2))


@adapters_app.command("rm")
def adapters_rm(base: str = typer.Argument(..., metavar="BASE"), task: str = typer.Argument(..., metavar="TASK")):
    """Remove an adapter from the store."""
    try:
        entry = _catalog().get(base)
        _adapters().remove(entry.id, task)
    except EdgeError as e:
        _fail(e.message)
    out.print(f"removed {entry.id}@{task}", highlight=False)
