"""The `edgeslm` command: one Typer app, one module per command group (each command's docstring is
its --help). Modules here import edgeslm.cli.common and the layers below, never this package."""

from __future__ import annotations

import sys

import typer

from edgeslm.cli import adapters, cache, convert, export, models, qualify, quantize, serve

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Small language models for agents, on this machine.")
app.command()(serve.serve)
app.command()(qualify.qualify)
app.command()(serve.proxy)
app.command()(convert.curate)
app.command("cluster")(convert.cluster_cmd)
app.command()(quantize.quantize)
app.command()(export.export)
app.add_typer(models.models_app, name="models")
app.add_typer(adapters.adapters_app, name="adapters")
app.add_typer(convert.convert_app, name="convert")
app.add_typer(cache.cache_app, name="cache")
app.command()(convert.select)
app.command()(convert.finetune)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
