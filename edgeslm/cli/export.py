"""`edgeslm export`: a model, its task adapters and the router, as a folder vLLM or SGLang serves."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from edgeslm.cli.common import err, fail
from edgeslm.config import get_settings
from edgeslm.errors import EdgeError


def export(
    out_dir: Path = typer.Argument(..., metavar="DIR", help="A new (or empty) folder to write."),
    to: str = typer.Option(..., "--to", help="The engine: vllm | sglang."),
    model: str = typer.Option("default", "--model", help="The catalog model whose base and adapters to export."),
):
    """Write DIR: the base as a Hugging Face checkpoint (with a chat template that renders what edgeslm renders), every
    task adapter of it as PEFT, the router, launch-ENGINE.sh, launch-front.sh (model "auto" routing) and compose.yaml."""
    from edgeslm.export.bundle import export as run

    try:
        manifest = run(get_settings(), model, to, out_dir, progress=lambda m: err.print(m))
    except EdgeError as e:
        fail(e.message)
    print(json.dumps(manifest, indent=2))
