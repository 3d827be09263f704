"""`edgeslm qualify`: the WD1 verdict on this machine, its memory plan and its history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from edgeslm.cli.common import check_budget as _check_budget
from edgeslm.cli.common import check_gpu_layers, err, out
from edgeslm.cli.common import fail as _fail
from edgeslm.config import Settings, get_settings
from edgeslm.errors import EdgeError


def qualify(
    model: Optional[str] = typer.Argument(None, metavar="MODEL", help="Catalog id or alias ('default'), or a GGUF path."),
    adapter: Optional[str] = typer.Option(None, help="Task adapter from the adapter store, applied while measuring."),
    profile: str = typer.Option("interactive-agent", help="WD1 profile to judge against (models.toml [profile.*]); "
                                "shipped: interactive-agent, background-agent."),
    memory_budget: Optional[str] = typer.Option(None, help="Memory the model may use, e.g. 6GB (default: RAM available now)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON instead of tables."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Also write the report's JSON and PNG into this folder."),
    plan_only: bool = typer.Option(False, "--plan", help="Print the memory plan as JSON and whether it fits the "
                                   "budget, without loading the model (exit 1 when it does not fit)."),
    history: bool = typer.Option(False, "--history", help="List past reports (with --compare: compare two)."),
    compare: Optional[tuple[str, str]] = typer.Option(None, help="Two reports (names from --history) to compare."),
    runs: int = typer.Option(5, min=2, help="Repeats per measurement (medians and spreads over these)."),
    threads: Optional[int] = typer.Option(None, min=1, help=Settings.model_fields["threads"].description),
    n_ctx: Optional[int] = typer.Option(None, min=256, help=Settings.model_fields["n_ctx"].description),
    gpu_layers: Optional[str] = typer.Option(None, help=Settings.model_fields["gpu_layers"].description),
):
    """Measure whether MODEL (+ adapter, + grammar) qualifies as an SLM on this machine (WD1): memory
    plan before loading, time to first token by prompt length, decode speed, constrained tool-call
    latency, cold vs warm prefix; a pass/fail verdict per criterion, kept as JSON + PNG in the store."""
    from edgeslm.qualify import report as rep

    check_gpu_layers(gpu_layers)
    settings = get_settings(threads=threads, n_ctx=n_ctx, memory_budget=memory_budget, gpu_layers=gpu_layers)
    if history or compare:
        _qualify_history(settings, compare, as_json)
        return
    if model is None:
        _fail("missing MODEL: a catalog id or alias (e.g. default), or a GGUF path")
    _check_budget(memory_budget)
    if plan_only:
        _print_plan(settings, model, adapter)
        return
    from edgeslm.qualify.run import qualify as run_qualify

    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                      console=err, transient=True) as bar:
            task = bar.add_task("qualify", total=8)

            done: list[str] = []

            def step(label: str) -> None:
                bar.update(task, description=label, completed=len(done))
                done.append(label)

            report = run_qualify(settings, model, profile=profile, adapter=adapter, runs=runs, step=step)
            bar.update(task, completed=8)
        paths = rep.save(report, settings.home, out_dir)
    except EdgeError as e:
        _fail(e.message)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        for table in rep.tables(report):
            out.print(table)
        out.print(f"report: {paths[0]} (+ .png)" + (f", {paths[1]}" if len(paths) > 1 else ""), highlight=False)
    if report["verdict"]["overall"] != "pass":
        raise typer.Exit(1)


def _print_plan(settings: Settings, model: str, adapter: Optional[str]) -> None:
    from edgeslm.backends import memory
    from edgeslm.qualify.run import resolve

    try:
        _, entry, path, adapters = resolve(settings, model, adapter)
        plan = memory.plan_for(entry.format, path, settings, model=entry.id, adapters=[a.gguf for a in adapters])
        budget = memory.budget_of(settings.memory_budget)
    except EdgeError as e:
        _fail(e.message)
    try:
        memory.check_fits(plan, budget)
        fits, why = True, None
    except EdgeError as e:
        fits, why = False, e.message
    print(json.dumps({**plan.to_json(), "budget": budget.to_json(), "fits": fits, "why_not": why}, indent=2))
    if not fits:
        raise typer.Exit(1)


def _qualify_history(settings: Settings, compare, as_json: bool) -> None:
    from edgeslm.qualify import report as rep

    if compare:
        try:
            a, b = rep.load(settings.home, compare[0]), rep.load(settings.home, compare[1])
            rows = rep.compare(a, b)
        except EdgeError as e:
            _fail(e.message)
        if as_json:
            print(json.dumps(rows, indent=2))
            return
        table = Table("figure", compare[0], compare[1], "change", "noise", "within noise",
                      title="qualify: two reports compared", title_justify="left")
        for r in rows:
            f = (lambda v: "—" if v is None else f"{v:.4g}")
            table.add_row(r["figure"], f(r["a"]), f(r["b"]),
                          "—" if r["change"] is None else f"{r['change']:+.1%}",
                          "—" if r["noise"] is None else f"±{r['noise']:.0%}",
                          {True: "yes", False: "[red]no[/]", None: "—"}[r["within_noise"]])
        out.print(table)
        return
    rows = rep.history(settings.home)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("report", "profile", "verdict", "TTFT 512", "decode tok/s", "tool call", "memory",
                  title=f"qualify reports in {rep.report_dir(settings.home)}", title_justify="left")
    for r in rows:
        f = r["figures"]
        table.add_row(r["report"], r["profile"], r["verdict"],
                      f"{f['ttft_512_s']:.2f} s" if f.get("ttft_512_s") is not None else "—",
                      f"{f['decode_tps']:.1f}", f"{f['tool_call_s']:.2f} s", f"{f['memory_ram_fraction']:.1%}")
    out.print(table)
