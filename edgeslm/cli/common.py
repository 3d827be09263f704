"""What every command shares: the consoles, the one way to fail (a message naming the bad value, exit 2),
progress bars, and the checks more than one command makes."""

from __future__ import annotations

import sys
from typing import NoReturn, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from edgeslm.config import get_settings
from edgeslm.store.registry import Catalog

out = Console()
err = Console(stderr=True)


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(2)


def progress(label: str):
    return Progress(TextColumn(label), BarColumn(), DownloadColumn(), TimeRemainingColumn(), console=err, transient=True)


def check_budget(text: Optional[str]) -> None:
    from edgeslm.backends.memory import parse_budget

    if text is not None:
        try:
            parse_budget(text)
        except ValueError as e:
            fail(f"--memory-budget: {e}")


def check_gpu_layers(text: Optional[str]) -> None:
    from edgeslm.backends.offload import parse_layers
    from edgeslm.errors import EdgeError

    try:
        parse_layers(text)
    except EdgeError as e:
        fail(e.message)


def catalog() -> Catalog:
    return Catalog(get_settings())
