"""The `edgeslm` command. Each command's docstring is its --help."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Table

from edgeslm.config import Settings, get_settings
from edgeslm.errors import EdgeError
from edgeslm.store.registry import Catalog

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Small language models for agents, on this machine.")
models_app = typer.Typer(no_args_is_help=True, help="The model catalog and store.")
app.add_typer(models_app, name="models")
adapters_app = typer.Typer(no_args_is_help=True, help="Per-task LoRA adapters in the store.")
app.add_typer(adapters_app, name="adapters")
out = Console()
err = Console(stderr=True)


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(2)


def _progress(label: str):
    return Progress(TextColumn(label), BarColumn(), DownloadColumn(), TimeRemainingColumn(), console=err, transient=True)


def _check_budget(text: Optional[str]) -> None:
    from edgeslm.backends.memory import parse_size

    if text is not None:
        try:
            parse_size(text)
        except ValueError as e:
            _fail(f"--memory-budget: {e}")


def _catalog() -> Catalog:
    return Catalog(get_settings())


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@app.command()
def serve(
    model: Optional[str] = typer.Option(None, help=Settings.model_fields["default_model"].description
                                        + " [env EDGESLM_DEFAULT_MODEL; default: default]"),
    host: Optional[str] = typer.Option(None, help=Settings.model_fields["host"].description
                                       + " [env EDGESLM_HOST; default: 127.0.0.1]"),
    port: Optional[int] = typer.Option(None, help=Settings.model_fields["port"].description
                                       + " [env EDGESLM_PORT; default: 8000]"),
    threads: Optional[int] = typer.Option(None, min=1, help=Settings.model_fields["threads"].description),
    n_ctx: Optional[int] = typer.Option(None, min=256, help=Settings.model_fields["n_ctx"].description),
    constraint_engine: Optional[str] = typer.Option(
        None, help=Settings.model_fields["constraint_engine"].description + " Choices: llguidance, gbnf."),
    memory_budget: Optional[str] = typer.Option(None, help=Settings.model_fields["memory_budget"].description),
    parallel: Optional[int] = typer.Option(None, min=1, max=64, help=Settings.model_fields["parallel"].description),
    capture: bool = typer.Option(False, "--capture", help=Settings.model_fields["capture"].description),
    capture_retention_days: Optional[float] = typer.Option(
        None, min=0.001, help=Settings.model_fields["capture_retention_days"].description),
    upstream: Optional[str] = typer.Option(None, help=Settings.model_fields["upstream"].description),
    upstream_model: Optional[str] = typer.Option(None, help=Settings.model_fields["upstream_model"].description),
    upstream_api_key_env: Optional[str] = typer.Option(
        None, help=Settings.model_fields["upstream_api_key_env"].description),
    upstream_forward_client_auth: bool = typer.Option(
        False, "--upstream-forward-client-auth", help=Settings.model_fields["upstream_forward_client_auth"].description),
    route_threshold: Optional[float] = typer.Option(
        None, min=0, max=1, help=Settings.model_fields["route_threshold"].description),
    api_key_env: Optional[str] = typer.Option(None, help=Settings.model_fields["api_key_env"].description),
    allowed_hosts: Optional[str] = typer.Option(None, help=Settings.model_fields["allowed_hosts"].description),
    no_auth: bool = typer.Option(False, "--no-auth", help="Allow binding beyond localhost without --api-key-env "
                                 "(anyone who reaches the port can use the server and its --upstream key)."),
):
    """Serve an OpenAI-compatible API (chat completions with tool calls) on HOST:PORT. Model "auto" is
    routed by the trained router (edgeslm convert run) to a task adapter, or to the --upstream teacher.
    Every setting also reads its EDGESLM_* environment variable (a flag wins)."""
    import uvicorn

    from edgeslm.engine import Engine
    from edgeslm.serving.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if constraint_engine not in (None, "llguidance", "gbnf"):
        _fail(f"invalid --constraint-engine '{constraint_engine}'; choose llguidance or gbnf")
    try:
        settings = get_settings(host=host, port=port, threads=threads, n_ctx=n_ctx, default_model=model,
                                constraint_engine=constraint_engine, memory_budget=memory_budget, parallel=parallel,
                                capture=capture or None, capture_retention_days=capture_retention_days,
                                upstream=upstream, upstream_model=upstream_model,
                                upstream_api_key_env=upstream_api_key_env, route_threshold=route_threshold,
                                api_key_env=api_key_env, allowed_hosts=allowed_hosts,
                                upstream_forward_client_auth=upstream_forward_client_auth or None)
    except ValueError as e:  # an EDGESLM_* variable with a bad value
        _fail(f"invalid setting: {e}")
    host, port = settings.host, settings.port
    upstream = settings.upstream
    if upstream is not None and not upstream.startswith(("http://", "https://")):
        _fail(f"invalid --upstream '{upstream}': give an http:// or https:// URL")
    for flag, var in (("--api-key-env", settings.api_key_env), ("--upstream-api-key-env", settings.upstream_api_key_env)):
        if var and not os.environ.get(var):
            _fail(f"{flag} {var}: that environment variable is not set")
    if host not in _LOOPBACK and not settings.api_key_env and not no_auth:
        _fail(f"--host {host} is reachable beyond this machine: give --api-key-env VAR (clients then send "
              "'Authorization: Bearer KEY'), or --no-auth to serve without a key anyway")
    _check_budget(settings.memory_budget)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError as e:
            _fail(f"cannot listen on {host}:{port}: {e.strerror}; pick another --port")
    engine = Engine(settings)
    try:
        worker = engine.worker(settings.default_model)
        app = create_app(engine)
    except EdgeError as e:
        _fail(e.message)
    err.print(f"edgeslm: serving [bold]{worker.entry.id}[/] ({worker.threads} threads, n_ctx {settings.n_ctx}, "
              f"{settings.parallel} slots) at http://{host}:{port}/v1"
              + (" (API key required)" if settings.api_key_env else ""), highlight=False)
    if settings.capture:
        err.print(f"edgeslm: capturing every call to {settings.capture_db}"
                  + (" (encrypted)" if app.state.capture.cipher else ""), highlight=False)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        engine.close()


@app.command()
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
):
    """Measure whether MODEL (+ adapter, + grammar) qualifies as an SLM on this machine (WD1): memory
    plan before loading, time to first token by prompt length, decode speed, constrained tool-call
    latency, cold vs warm prefix; a pass/fail verdict per criterion, kept as JSON + PNG in the store."""
    from edgeslm.qualify import report as rep

    settings = get_settings(threads=threads, n_ctx=n_ctx, memory_budget=memory_budget)
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


@app.command()
def proxy(
    upstream: str = typer.Option(..., help="Base URL of the upstream OpenAI-compatible API (the teacher LLM)."),
    api_key_env: Optional[str] = typer.Option(None, help="Environment variable holding the upstream API key "
                                              "(default: forward the client's own Authorization header)."),
    host: str = typer.Option("127.0.0.1", help=Settings.model_fields["host"].description),
    port: int = typer.Option(8001, help="TCP port the proxy binds to."),
    capture_retention_days: Optional[float] = typer.Option(
        None, min=0.001, help=Settings.model_fields["capture_retention_days"].description),
):
    """S1: an OpenAI-compatible pass-through to UPSTREAM that captures every call (streams included);
    point an agent's base URL here to log it."""
    import uvicorn

    from edgeslm.pipeline.capture import CaptureStore
    from edgeslm.pipeline.proxy import create_proxy

    if not upstream.startswith(("http://", "https://")):
        _fail(f"invalid --upstream '{upstream}': give an http:// or https:// URL")
    if api_key_env and not os.environ.get(api_key_env):
        _fail(f"--api-key-env {api_key_env}: that environment variable is not set")
    settings = get_settings(capture_retention_days=capture_retention_days)
    try:
        store = CaptureStore(settings.capture_db, key_env=settings.capture_key_env,
                             retention_days=settings.capture_retention_days)
    except EdgeError as e:
        _fail(e.message)
    err.print(f"edgeslm: proxying to {upstream} at http://{host}:{port}/v1, capturing to {settings.capture_db}"
              + (" (encrypted)" if store.cipher else ""), highlight=False)
    from edgeslm.serving.app import allowed_hosts

    hosts = allowed_hosts(settings.model_copy(update={"host": host}))
    uvicorn.run(create_proxy(upstream, store, api_key_env, hosts=hosts, max_body_bytes=settings.max_body_bytes),
                host=host, port=port, log_level="warning")


@app.command()
def curate(as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")):
    """S2: turn the captured calls into training examples: personal data replaced by typed placeholders
    (consistent within a conversation), broken records dropped, duplicates removed."""
    from edgeslm.pipeline.curate import curate as run_curate

    settings = get_settings()
    try:
        report = run_curate(settings.capture_db, settings.curated_db, settings.capture_key_env)
    except EdgeError as e:
        _fail(e.message)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    table = Table("personal data", "replaced", title=f"curate: {report['kept']} examples from {report['calls']} calls "
                  f"({report['duplicates']} duplicates, {sum(report['dropped'].values())} broken)", title_justify="left")
    for kind, n in report["pii"].items():
        table.add_row(kind, str(n))
    out.print(table)
    if report["dropped"]:
        out.print("dropped: " + ", ".join(f"{k} {v}" for k, v in report["dropped"].items()), highlight=False)
    out.print(f"not covered: {', '.join(report['not_covered'])} (no NER model offline)", highlight=False)
    out.print(f"curated store: {report['curated']}", highlight=False)


@app.command("cluster")
def cluster_cmd(
    k: Optional[int] = typer.Option(None, min=1, help="Number of clusters (default: the k with the best silhouette)."),
    k_max: int = typer.Option(8, min=2, help="Largest k tried when choosing by silhouette."),
    as_json: bool = typer.Option(False, "--json", help="Print the clusters as JSON."),
):
    """S3: find the recurring tasks in the curated calls (offline embeddings + tool features, k-means)."""
    from edgeslm.pipeline.cluster import cluster, save
    from edgeslm.pipeline.curate import examples

    settings = get_settings()
    try:
        with err.status("embedding and clustering the curated calls"):
            result = cluster(examples(settings.curated_db), k=k, k_max=k_max)
    except EdgeError as e:
        _fail(e.message)
    path = save(result, settings.home / "pipeline" / "clusters.json")
    if as_json:
        print(json.dumps({k_: v for k_, v in result.items() if k_ != "assignments"}, indent=2))
        return
    table = Table("cluster", "label", "size", "cohesion", "top tools", "terms",
                  title=f"cluster: k={result['k']} (saved to {path})", title_justify="left")
    for c in result["clusters"]:
        table.add_row(str(c["id"]), c["label"], str(c["size"]), f"{c['cohesion']:.2f}", ", ".join(c["tools"]),
                      ", ".join(c["terms"]))
    out.print(table)


@app.command()
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
        outcome = run(get_settings(), src, to, adapter=adapter, merge=merge, base=base, model_id=model_id,
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


def _print_plan(settings: Settings, model: str, adapter: Optional[str]) -> None:
    from edgeslm.backends import memory
    from edgeslm.qualify.run import resolve

    try:
        _, entry, path, adapters = resolve(settings, model, adapter)
        if entry.format == "gguf":
            plan = memory.plan(path, n_ctx=settings.n_ctx, n_batch=settings.n_batch, n_seq=settings.parallel,
                               model=entry.id, adapters=[a.gguf for a in adapters])
        else:
            plan = memory.plan_folder(path, n_ctx=settings.n_ctx, model=entry.id)
        budget = memory.budget_of(settings.memory_budget)
    except EdgeError as e:
        _fail(e.message)
    print(json.dumps({**plan.to_json(), "budget": budget, "fits": plan.total <= budget}, indent=2))
    if plan.total > budget:
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


@models_app.command("list")
def models_list(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")):
    """List the catalog: every known model, and whether its file is in the store."""
    cat = _catalog()
    rows = [{"id": e.id, "aliases": e.aliases, "params": e.params, "format": e.format, "quantization": e.quantization,
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
        with _progress(f"verifying {entry.id}") as bar:
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


def _register_pipeline() -> None:
    from edgeslm import cli_convert

    app.add_typer(cli_convert.convert_app, name="convert")
    app.command()(cli_convert.select)
    app.command()(cli_convert.finetune)


_register_pipeline()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
