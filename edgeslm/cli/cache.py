"""`edgeslm cache ...`: the prefix cache on disk (KV states of long prompts kept across restarts)."""

from __future__ import annotations

import json
import time

import typer
from rich.table import Table

from edgeslm.cli.common import out
from edgeslm.config import get_settings
from edgeslm.store.prefixes import PrefixStore

cache_app = typer.Typer(no_args_is_help=True, help="The prefix cache on disk (serve keeps long prompts' KV states there).")


def _store() -> PrefixStore:
    return PrefixStore.of(get_settings())


@cache_app.command("ls")
def cache_ls(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")):
    """List the saved prompt states, most recently used first: tokens, size, model, adapters, last use."""
    store = _store()
    rows: list[dict] = [{"entry": e.name, "tokens": e.n_tokens, "bytes": e.n_bytes, "used": e.used,
             "model": str(e.ident.get("model", "?")).split("|")[0], "adapters": [a[0] for a in e.ident.get("adapters", [])],
             "n_ctx": e.ident.get("n_ctx"), "kv_type": e.ident.get("kv_type")} for e in store.entries()]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    total = sum(r["bytes"] for r in rows)
    table = Table("entry", "tokens", "size", "last used", "model", "adapters", "n_ctx", "kv",
                  title=f"{store.root}: {len(rows)} entries, {total / 2**20:.1f} MiB of {store.max_bytes / 2**20:.0f} MiB")
    for r in rows:
        table.add_row(r["entry"][:12], str(r["tokens"]), f"{r['bytes'] / 2**20:.1f} MiB",
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(r["used"])), r["model"].rsplit("/", 1)[-1],
                      ", ".join(a.rsplit("/", 2)[-2] for a in r["adapters"]) or "-", str(r["n_ctx"]), str(r["kv_type"]))
    out.print(table)


@cache_app.command("clear")
def cache_clear():
    """Remove every saved prompt state (a running server's next long prompt is evaluated anew)."""
    store = _store()
    n = len(store.entries())
    freed = store.clear()
    out.print(f"removed {n} entries ({freed / 2**20:.1f} MiB) from {store.root}")
