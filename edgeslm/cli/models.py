"""`edgeslm models ...`: the catalog and the model store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from edgeslm.cli.common import catalog as _catalog
from edgeslm.cli.common import fail as _fail
from edgeslm.cli.common import out
from edgeslm.cli.common import progress as _progress
from edgeslm.errors import EdgeError

models_app = typer.Typer(no_args_is_help=True, help="The model catalog and store.")


@models_app.command("list")
def models_list(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")):
    """List the catalog: every known model, and whether its file is in the store."""
    cat = _catalog()
    rows: list[dict] = [{"id": e.id, "aliases": e.aliases, "params": e.params, "format": e.format, "quantization": e.quantization,
             "size_mb": e.size_mb, "license": e.license, "source": e.source.describe(), "local": cat.is_local(e)}
            for e in cat.entries]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("id", "params", "quant", "size", "license", "source", "local")
    for r in rows:
        table.add_row(r["id"] + (f" ({', '.join(r['aliases'])})" if r["aliases"] else ""),
                      f"{r['params'] / 1e9:.2f}B" if r["params"] else "?", r["quantization"],
                      f"{r['size_mb']} MB", r["license"], r["source"], "yes" if r["local"] else "no")
    out.print(table)


@models_app.command("show")
def models_show(model_id: str = typer.Argument(..., metavar="ID")):
    """Show one catalog entry, with the GGUF facts when its file is local."""
    cat = _catalog()
    try:
        entry = cat.get(model_id)
    except EdgeError as e:
        _fail(e.message)
    info = entry.model_dump()
    info["path"] = str(cat.path_of(entry))
    info["local"] = cat.is_local(entry)
    if info["local"]:
        from edgeslm.store import gguf_io

        facts = gguf_io.summarize(gguf_io.read_metadata(cat.path_of(entry)))
        facts["has_chat_template"] = bool(facts.pop("chat_template"))
        info["gguf"] = facts
    print(json.dumps(info, indent=2))


@models_app.command("pull")
def models_pull(model_id: str = typer.Argument(..., metavar="ID")):
    """Put a catalog model into the store (assemble the embedded one, or download from the hub)."""
    cat = _catalog()
    try:
        entry = cat.get(model_id)
        with _progress(f"pulling and verifying {entry.id}") as bar:
            task = bar.add_task("sha256", total=None)
            path = cat.ensure_local(entry, progress=lambda done, total: bar.update(task, completed=done, total=total))
    except EdgeError as e:
        _fail(e.message)
    print(f"{entry.id}: {path}")


@models_app.command("import")
def models_import(
    path: Path = typer.Argument(..., metavar="PATH.gguf", help="A GGUF model file."),
    model_id: Optional[str] = typer.Option(None, "--id", help="Catalog id to give it (default: from the file name)."),
):
    """Import a local GGUF into the store and the catalog (checks that it is a valid GGUF)."""
    cat = _catalog()
    try:
        with _progress(f"importing {path.name}") as bar:
            task = bar.add_task("sha256", total=None)
            entry = cat.import_gguf(path, model_id,
                                    progress=lambda done, total: bar.update(task, completed=done, total=total))
    except EdgeError as e:
        _fail(e.message)
    out.print(f"imported {entry.id} ({entry.architecture}, {entry.quantization}, ctx {entry.context_length})",
              highlight=False)
