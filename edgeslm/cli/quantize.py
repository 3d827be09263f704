"""`edgeslm quantize`: fine-tuned models to GGUF and ONNX, gated on what they lost."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Optional

import typer
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from edgeslm.cli.common import err, out
from edgeslm.cli.common import fail as _fail
from edgeslm.config import Settings, get_settings
from edgeslm.errors import EdgeError


def quantize(
    src: str = typer.Argument(..., metavar="SRC", help="A GGUF file, a Hugging Face checkpoint directory, or a catalog id."),
    to: str = typer.Option(..., "--to", help="gguf:Q4_K_M | gguf:Q5_K_M | gguf:Q8_0 | gguf:F16 | onnx:int4 | onnx:int8."),
    adapter: Optional[str] = typer.Option(None, help="A stored task adapter of the base to carry along."),
    merge: bool = typer.Option(False, help="Merge the adapter into the weights (default: keep it unmerged; ONNX needs it)."),
    base: Optional[str] = typer.Option(None, help="For a checkpoint SRC: the catalog model whose layout and tokenizer it shares."),
    model_id: Optional[str] = typer.Option(None, "--id", help="Id of the new model in the store."),
    eval_file: Optional[Path] = typer.Option(None, "--eval", help="Task texts to measure on (one per line, or JSONL with \"text\")."),
    strict: bool = typer.Option(False, help="Exit 1 when the conversion fails the quality gate."),
    threads: Optional[int] = typer.Option(None, min=1, help=Settings.model_fields["threads"].description),
    gpu_layers: Optional[str] = typer.Option(None, help="Layers the quality gate offloads to the GPU: "
                                             "auto, all, 0 or a number (as serve's --gpu-layers)."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
):
    """Convert SRC to a GGUF quantization or an ONNX model, measure what it lost against the F16 reference (KL, top-1,
    decode tok/s, on neutral text and the task's own texts), and store the result as a new model."""
    from edgeslm import device
    from edgeslm.quantize import gate
    from edgeslm.quantize.run import run

    texts = _eval_texts(eval_file) if eval_file else []

    @contextlib.contextmanager
    def step(label: str):
        with Progress(TextColumn(label), BarColumn(), TimeElapsedColumn(), console=err, transient=True) as bar:
            task = bar.add_task(label, total=None)
            yield lambda done, total: bar.update(task, completed=done, total=total)

    try:
        from edgeslm.backends.offload import parse_layers

        parse_layers(gpu_layers)
        outcome = run(get_settings(gpu_layers=gpu_layers), src, to, adapter=adapter, merge=merge, base=base, model_id=model_id,
                      task_texts=texts, threads=threads or device.default_threads(), step=step)
    except EdgeError as e:
        _fail(e.message)
    if as_json:
        print(json.dumps(outcome.to_json(), indent=2))
    else:
        table = Table("output", "size", "KL neutral", "top-1 neutral", "KL task", "top-1 task", "decode tok/s", "gate",
                      title=f"quantize {src} -> {outcome.target} (reference: F16"
                            f"{', adapter merged' if adapter else ''})", title_justify="left")
        for c in outcome.candidates:
            q = (lambda x, f: "—" if x is None else f(x))
            table.add_row(c.name, f"{c.size / 2**20:.0f} MiB", q(c.neutral, lambda x: f"{x.kl:.4f}"),
                          q(c.neutral, lambda x: f"{x.top1:.1%}"), q(c.task, lambda x: f"{x.kl:.4f}"),
                          q(c.task, lambda x: f"{x.top1:.1%}"), f"{c.tokens_per_s:.1f}",
                          "pass" if c.passes else "[bold red]FAIL[/]")
        out.print(table)
        if not outcome.passes:
            err.print(f"[bold red]warning:[/] the conversion loses more than the gate allows (KL > {gate.MAX_KL} "
                      f"or top-1 < {gate.MIN_TOP1:.0%})", highlight=False)
        out.print(f"recommendation: {outcome.recommendation}", highlight=False)
        out.print(f"stored as [bold]{outcome.stored}[/]", highlight=False)
    if strict and not outcome.passes:
        raise typer.Exit(1)


def _eval_texts(path: Path) -> list[str]:
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        _fail(f"--eval {path}: unreadable ({e})")
    try:
        return [json.loads(line)["text"] for line in lines] if path.suffix == ".jsonl" else lines
    except (ValueError, KeyError, TypeError):
        _fail(f"--eval {path}: every JSONL line needs a \"text\" field")
