"""The conversion pipeline's commands past S3: `edgeslm select`, `edgeslm finetune`, `edgeslm convert
run|show`. Each command's docstring is its --help; the work is edgeslm.pipeline's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgeslm.cli.common import err, fail
from edgeslm.cli.common import out as console
from edgeslm.config import get_settings
from edgeslm.errors import EdgeError
from edgeslm.pipeline.finetune import FULL_LR as _FULL_LR
from edgeslm.pipeline.finetune import TrainConfig
from edgeslm.pipeline.recipe import RECIPE
from edgeslm.pipeline.select import LICENSES

convert_app = typer.Typer(no_args_is_help=True, help="The whole LLM-to-SLM conversion (S1-S6).")


_TC = TrainConfig()  # the defaults the help texts quote
_STEPS = f"{_TC.epochs:g} epochs, at most {_TC.max_steps}; the held-out loss may stop it sooner"


def _pct(v) -> str:
    return "-" if v is None else f"{v:.1%}"


class _Bar:
    """A rich progress bar per long step (training steps, evaluated examples)."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.tasks: dict = {}

    def __call__(self, label: str, done: int, total: int, note: str) -> None:
        if label not in self.tasks:
            self.tasks[label] = self.progress.add_task(label, total=total)
        self.progress.update(self.tasks[label], completed=done, description=f"{label} {note}")


def _train_config(steps, lr, rank, batch, seed, full: bool = False):
    cfg = TrainConfig(seed=seed, full=full, lr=_FULL_LR if full else TrainConfig.lr)
    for k, v in {"max_steps": steps, "lr": lr, "rank": rank, "alpha": 2 * rank if rank else None, "batch": batch}.items():
        if v is not None:
            setattr(cfg, k, v)
    return cfg


@convert_app.command("run")
def convert_run(
    k: Optional[int] = typer.Option(None, min=1, help="Number of tasks (default: chosen by silhouette)."),
    target: float = typer.Option(0.9, min=0, max=1, help="Held-out exact tool-call match a task must reach."),
    threshold: float = typer.Option(0.8, min=0, max=1, help="Router confidence below which calls go to the teacher."),
    steps: Optional[int] = typer.Option(None, min=1, help=f"Training steps per task (default: {_STEPS})."),
    lr: Optional[float] = typer.Option(None, min=0, help=f"Learning rate (default: {_TC.lr:g})."),
    rank: Optional[int] = typer.Option(None, min=1, help=f"LoRA rank (default: {_TC.rank}; alpha is twice the rank)."),
    batch: Optional[int] = typer.Option(None, min=1, help=f"Examples per training step (default: {_TC.batch})."),
    seed: int = typer.Option(0, help="Seed of the LoRA init and the batch order."),
    zero_shot_limit: int = typer.Option(20, min=1, help="Held-out calls per task scored zero-shot in select."),
    eval_limit: Optional[int] = typer.Option(None, min=1, help="Held-out calls per task for the gate (default: all)."),
    licenses: str = typer.Option(",".join(LICENSES), help="License allow-list, comma-separated."),
    profile: str = typer.Option("background-agent", help="WD1 profile candidates must pass on this device "
                                "(models.toml [profile.*]; shipped: interactive-agent, background-agent)."),
    force: bool = typer.Option(False, "--force", help="Retrain even without drift."),
    teacher_price: float = typer.Option(1.0, "--teacher-usd-per-mtok", min=0,
                                        help="The teacher's price in USD per million tokens, for the cost comparison."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
):
    """Run the pipeline: curate the capture, cluster it into tasks, select a model per task, fine-tune a
    LoRA per task on the teacher's answers, gate it on held-out calls, train the router `serve` uses for
    model "auto". Run again later: it retrains only when drift appears."""
    from edgeslm.pipeline import convert

    settings = get_settings()
    cfg = _train_config(steps, lr, rank, batch, seed)
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, transient=True) as progress:
            result = convert.run(settings, k=k, target=target, threshold=threshold, train=cfg,
                                 licenses=tuple(x.strip() for x in licenses.split(",") if x.strip()),
                                 zero_shot_limit=zero_shot_limit, eval_limit=eval_limit, force=force, profile=profile,
                                 teacher_usd_per_mtok=teacher_price, say=lambda m: progress.console.print(m, highlight=False),
                                 bar=_Bar(progress))
    except EdgeError as e:
        fail(e.message)
    if as_json:
        print(json.dumps({k_: v for k_, v in result.items() if k_ != "clusters"}, indent=2, default=str))
        return
    _print_tasks(result)


def _print_tasks(result: dict) -> None:
    from edgeslm.pipeline.report import zero_shot

    table = Table("task", "calls", "model", "zero-shot", "with adapter", "promoted", "why",
                  title=f"convert: {result['clusters']['k']} tasks", title_justify="left")
    for t in result["tasks"]:
        table.add_row(t["task"], str(t["size"]), t.get("model") or "teacher", _pct(zero_shot(t).get("exact")),
                      _pct((t.get("student") or {}).get("exact")), "yes" if t.get("promoted") else "no", t.get("why", ""))
    console.print(table)
    r = result.get("router") or {}
    console.print(f"router: held-out accuracy {_pct(r.get('accuracy'))}, confident {_pct(r.get('confident'))}; "
                  f"stages: " + ", ".join(f"{k} {v:.0f}s" for k, v in result["stages"].items()), highlight=False)
    console.print("report: " + ", ".join(result["files"][:2]), highlight=False)


@convert_app.command("show")
def convert_show(cluster: Optional[str] = typer.Argument(None, help="A task name or cluster id (default: all).")):
    """Show the last conversion: every task, or one task's details as JSON."""
    from edgeslm.pipeline import convert

    settings = get_settings()
    try:
        if cluster is not None:
            print(json.dumps(convert.check_cluster(settings, cluster), indent=2))
            return
        path = convert.pipeline_dir(settings) / "report" / "report.md"
        if not path.is_file():
            fail("no conversion has run yet; run edgeslm convert run")
        print(path.read_text())
    except EdgeError as e:
        fail(e.message)


def finetune(
    cluster: Optional[str] = typer.Argument(None, help="The task name or cluster id from the last `edgeslm cluster`/`convert run`."),
    recipe: Optional[str] = typer.Option(None, help="Rebuild a shipped adapter from its recipe instead: 'tools' "
                                         "(the default model's tool-calling LoRA, from BFCL's function-split train part and generated "
                                         "agent conversations)."),
    out: Optional[Path] = typer.Option(None, help="With --recipe: the folder the adapter goes to (default: "
                                       "EDGESLM_HOME/pipeline/recipes/tools/adapter)."),
    force: bool = typer.Option(False, "--force", help="With --recipe: replace an existing --out folder (only one a "
                               "recipe wrote: adapter.gguf and manifest.json)."),
    limit: Optional[int] = typer.Option(None, min=1, help="With --recipe: train on the first N examples only (a short run)."),
    model: str = typer.Option("default", help="Base model (catalog id or alias)."),
    steps: Optional[int] = typer.Option(None, min=1, help=f"Training steps (default: {_STEPS}; with --recipe: "
                                        f"{RECIPE['epochs']:g} epoch{'s' if RECIPE['epochs'] != 1 else ''}, the last step)."),
    lr: Optional[float] = typer.Option(None, min=0, help=f"Learning rate (default: {_TC.lr:g}, with --full {_FULL_LR:g}; "
                                       "not with --recipe)."),
    rank: Optional[int] = typer.Option(None, min=1, help=f"LoRA rank (default: {_TC.rank}; not with --recipe)."),
    batch: Optional[int] = typer.Option(None, min=1, help=f"Examples per step (default: {_TC.batch}; not with --recipe)."),
    seed: Optional[int] = typer.Option(None, help="Seed of the LoRA init and the batch order (default: 0; not with "
                                       "--recipe)."),
    full: bool = typer.Option(False, "--full", help=f"Fine-tune every weight of the LoRA's projections instead, "
                              f"at a low learning rate (default {_FULL_LR:g}); the change lands as a LoRA of --rank, "
                              "its SVD cut, so serving it is unchanged (not with --recipe)."),
):
    """S5: train one task's LoRA on its curated calls (the teacher's answers), resumable, and land it in the
    adapter store in PEFT and GGUF form; then score it on the task's held-out calls against the gate."""
    from edgeslm.pipeline import tasks

    settings = get_settings()
    if recipe is not None:
        given = [f"--{k}" for k, v in (("lr", lr), ("rank", rank), ("batch", batch), ("full", full or None),
                                        ("seed", seed), ("model", None if model == "default" else model)) if v is not None]
        if cluster is not None:
            given.insert(0, f"a cluster ('{cluster}')")
        if given:
            fail(f"{', '.join(given)} cannot be used with --recipe: the recipe sets them (pipeline/recipe.py); "
                 "with --recipe, only --out, --force, --limit and --steps")
        return _recipe(settings, recipe, out, limit, steps, force)
    if cluster is None:
        fail("name a cluster (edgeslm finetune CLUSTER) or a recipe (edgeslm finetune --recipe tools)")
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, transient=True) as progress:
            r = tasks.finetune_one(settings, cluster, model, _train_config(steps, lr, rank, batch, seed or 0, full), _Bar(progress))
    except EdgeError as e:
        fail(e.message)
    console.print(f"{r['base']}@{r['task']}: {r['training']['steps']} steps, loss {r['training']['loss_first']:.3f} → "
                  f"{r['training']['loss_last']:.3f}; held-out exact {_pct(r['scores']['exact'])} "
                  f"(n={r['scores']['n']}); gate: {r['gate']}", highlight=False)


def _recipe(settings, name: str, out, limit, steps, force: bool) -> None:
    from edgeslm.pipeline import recipe

    if name != recipe.TASK:
        fail(f"unknown recipe '{name}'; the recipes are: {recipe.TASK}")
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, transient=True) as progress:
            m = recipe.build(settings, out, limit=limit, max_steps=steps, bar=_Bar(progress), force=force)
    except EdgeError as e:
        fail(e.message)
    t = m["training"]
    picked = (f"best val loss {t['dev_loss']} at step {t['best_step']}" if t["evals"]
              else f"the last step kept, loss {t['loss_last']}")
    steps = f"{t['steps']} step{'s' if t['steps'] != 1 else ''}"
    console.print(f"{m['base_id']}@{m['task']}: {steps}, {picked}, {m['wall_s']:.0f} s; adapter sha256 "
                  f"{m['adapter_sha256'][:12]}", highlight=False)
    console.print(f"written to {out or recipe.default_out(settings)}", highlight=False)


def select(
    target: float = typer.Option(0.9, min=0, max=1, help="Held-out exact tool-call match a task must reach."),
    licenses: str = typer.Option(",".join(LICENSES), help="License allow-list, comma-separated."),
    zero_shot_limit: int = typer.Option(20, min=1, help="Held-out calls per task scored zero-shot."),
    profile: str = typer.Option("background-agent", help="WD1 profile candidates must pass on this device."),
    as_json: bool = typer.Option(False, "--json", help="Print the choice as JSON."),
):
    """S4: for each task of the last clustering, the smallest fit model (license allowed, in the store, WD1
    verdict pass on this device) that meets the target zero-shot, else the one to fine-tune, else the teacher."""
    from edgeslm.pipeline import tasks

    settings = get_settings()
    try:
        with err.status("scoring candidates zero-shot on each task's held-out calls"):
            r = tasks.select_all(settings, target, tuple(x.strip() for x in licenses.split(",") if x.strip()),
                                 zero_shot_limit, profile)
    except EdgeError as e:
        fail(e.message)
    if as_json:
        print(json.dumps(r, indent=2))
        return
    cand = Table("model", "params", "license", "verdict", "excluded", title="candidates", title_justify="left")
    for c in r["candidates"]:
        cand.add_row(c["model"], f"{(c['params'] or 0) / 1e6:.0f}M", c["license"], str(c.get("verdict", "-")),
                     c.get("excluded", ""))
    console.print(cand)
    table = Table("task", "model", "fine-tune", "reason", title="selection", title_justify="left")
    for t in r["tasks"]:
        table.add_row(t["task"], t["model"] or "teacher", "yes" if t["finetune"] else "no", t["reason"])
    console.print(table)


def curate(as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")):
    """S2: turn the captured calls into training examples: personal data replaced by realistic fakes
    of the same kind (consistent within a conversation), broken records dropped, duplicates removed."""
    from edgeslm.pipeline.curate import at_rest, names_finder
    from edgeslm.pipeline.curate import curate as run_curate

    settings = get_settings()
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, transient=True) as progress:
            bar = _Bar(progress)
            report = run_curate(settings.capture_db, settings.curated_db, **at_rest(settings), names=names_finder(settings),
                                progress=lambda i, n: bar("curate", i, n, ""))
    except EdgeError as e:
        fail(e.message)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    table = Table("personal data", "replaced", title=f"curate: {report['kept']} examples from {report['calls']} calls "
                  f"({report['duplicates']} duplicates, {sum(report['dropped'].values())} broken)", title_justify="left")
    for kind, n in report["pii"].items():
        table.add_row(kind, str(n))
    console.print(table)
    if report["dropped"]:
        console.print("dropped: " + ", ".join(f"{k} {v}" for k, v in report["dropped"].items()), highlight=False)
    console.print(f"not covered: {', '.join(report['not_covered'])} (no NER model offline)", highlight=False)
    console.print(f"curated store: {report['curated']}" + (" (encrypted)" if report["encrypted"] else ""),
                  highlight=False)


def cluster_cmd(
    k: Optional[int] = typer.Option(None, min=1, help="Number of clusters (default: the k with the best silhouette)."),
    k_max: int = typer.Option(8, min=2, help="Largest k tried when choosing by silhouette."),
    as_json: bool = typer.Option(False, "--json", help="Print the clusters as JSON."),
):
    """S3: find the recurring tasks in the curated calls (offline embeddings + tool features, k-means)."""
    from edgeslm.pipeline.cluster import cluster, save
    from edgeslm.pipeline.curate import at_rest, examples

    settings = get_settings()
    try:
        with err.status("embedding and clustering the curated calls"):
            result = cluster(examples(settings.curated_db, **at_rest(settings)), k=k, k_max=k_max)
    except EdgeError as e:
        fail(e.message)
    path = save(result, settings.home / "pipeline" / "clusters.json")
    if as_json:
        print(json.dumps({k_: v for k_, v in result.items() if k_ != "assignments"}, indent=2))
        return
    table = Table("cluster", "label", "size", "cohesion", "top tools", "terms",
                  title=f"cluster: k={result['k']} (saved to {path})", title_justify="left")
    for c in result["clusters"]:
        table.add_row(str(c["id"]), c["label"], str(c["size"]), f"{c['cohesion']:.2f}", ", ".join(c["tools"]),
                      ", ".join(c["terms"]))
    console.print(table)



