"""`edgeslm serve` (the OpenAI-compatible server) and `edgeslm proxy` (S1 in front of a hosted LLM)."""

from __future__ import annotations

import os
import socket
import threading
from typing import Optional

import typer

from edgeslm.cli.common import check_budget as _check_budget
from edgeslm.cli.common import check_gpu_layers as _check_gpu_layers
from edgeslm.cli.common import err
from edgeslm.cli.common import fail as _fail
from edgeslm.config import Settings, get_settings
from edgeslm.errors import EdgeError
from edgeslm.wire.middleware import LOOPBACK


def _help(field: str) -> str:
    return Settings.model_fields[field].description or ""


def serve(
    model: Optional[str] = typer.Option(None, help=_help("default_model")
                                        + " [env EDGESLM_DEFAULT_MODEL; default: default]"),
    host: Optional[str] = typer.Option(None, help=_help("host")
                                       + " [env EDGESLM_HOST; default: 127.0.0.1]"),
    port: Optional[int] = typer.Option(None, help=_help("port")
                                       + " [env EDGESLM_PORT; default: 8000]"),
    threads: Optional[int] = typer.Option(None, min=1, help=Settings.model_fields["threads"].description),
    n_ctx: Optional[int] = typer.Option(None, min=256, help=Settings.model_fields["n_ctx"].description),
    constraint_engine: Optional[str] = typer.Option(
        None, help=_help("constraint_engine") + " Choices: llguidance, gbnf."),
    memory_budget: Optional[str] = typer.Option(None, help=Settings.model_fields["memory_budget"].description),
    gpu_layers: Optional[str] = typer.Option(None, help=Settings.model_fields["gpu_layers"].description),
    parallel: Optional[int] = typer.Option(None, min=1, max=64, help=Settings.model_fields["parallel"].description),
    prefix_disk_mb: Optional[int] = typer.Option(None, min=0, help=_help("prefix_disk_mb")),
    flash_attn: bool = typer.Option(False, "--flash-attn", help=_help("flash_attn")),
    kv_type: Optional[str] = typer.Option(None, help=_help("kv_type") + " Choices: f16, q8_0."),
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
    log_format: str = typer.Option("text", help="Log lines as text or as JSON objects (one per line). Choices: text, json."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Allow binding beyond localhost without --api-key-env "
                                 "(anyone who reaches the port can use the server and its --upstream key)."),
    no_fold: bool = typer.Option(False, "--no-fold", help="Apply the default adapter at decode time instead: "
                                 + str(Settings.model_fields["fold"].description)),
):
    """Serve an OpenAI-compatible API (chat completions with tool calls) on HOST:PORT. Model "auto" is
    routed by the trained router (edgeslm convert run) to a task adapter, or to the --upstream teacher.
    Every setting also reads its EDGESLM_* environment variable (a flag wins)."""
    import uvicorn

    from edgeslm.engine import Engine
    from edgeslm.serving import logs
    from edgeslm.serving.app import create_app

    if log_format not in ("text", "json"):
        _fail(f"invalid --log-format '{log_format}'; choose text or json")
    logs.setup(log_format)
    if constraint_engine not in (None, "llguidance", "gbnf"):
        _fail(f"invalid --constraint-engine '{constraint_engine}'; choose llguidance or gbnf")
    _check_gpu_layers(gpu_layers)
    if kv_type not in (None, "f16", "q8_0"):
        _fail(f"invalid --kv-type '{kv_type}'; choose f16 or q8_0")
    try:
        settings = get_settings(host=host, port=port, threads=threads, n_ctx=n_ctx, default_model=model,
                                constraint_engine=constraint_engine, memory_budget=memory_budget, parallel=parallel,
                                gpu_layers=gpu_layers, prefix_disk_mb=prefix_disk_mb, flash_attn=flash_attn or None,
                                kv_type=kv_type,
                                capture=capture or None, capture_retention_days=capture_retention_days,
                                upstream=upstream, upstream_model=upstream_model,
                                upstream_api_key_env=upstream_api_key_env, route_threshold=route_threshold,
                                api_key_env=api_key_env, allowed_hosts=allowed_hosts,
                                upstream_forward_client_auth=upstream_forward_client_auth or None,
                                fold=False if no_fold else None)
    except ValueError as e:  # an EDGESLM_* variable with a bad value
        _fail(f"invalid setting: {e}")
    host, port = settings.host, settings.port
    upstream = settings.upstream
    if upstream is not None and not upstream.startswith(("http://", "https://")):
        _fail(f"invalid --upstream '{upstream}': give an http:// or https:// URL")
    for flag, var in (("--api-key-env", settings.api_key_env), ("--upstream-api-key-env", settings.upstream_api_key_env)):
        if var and not os.environ.get(var):
            _fail(f"{flag} {var}: that environment variable is not set")
    if host not in LOOPBACK and not settings.api_key_env and not no_auth:
        _fail(f"--host {host} is reachable beyond this machine: give --api-key-env VAR (clients then send "
              "'Authorization: Bearer KEY'), or --no-auth to serve without a key anyway")
    _check_budget(settings.memory_budget)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        # as uvicorn binds: a port whose last server was killed (connections in TIME_WAIT) is free again
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            _fail(f"cannot listen on {host}:{port}: {e.strerror}; pick another --port")
    engine = Engine(settings)
    try:
        if settings.fold:
            _fold(engine, settings.default_model)
        worker = engine.worker_for(settings.default_model, None)  # the folded copy, when there is one
        if worker.preparer.leans():  # the default leans on MiniLM: loaded while the server starts listening
            threading.Thread(target=engine.ranker.warm, name="warm-ranker", daemon=True).start()
        app = create_app(engine)
    except EdgeError as e:
        _fail(e.message)
    err.print(f"edgeslm: serving [bold]{worker.name}[/] ({worker.threads} threads, n_ctx {settings.n_ctx}, "
              f"{settings.parallel} slots) at http://{host}:{port}/v1"
              + (" (API key required)" if settings.api_key_env else ""), highlight=False)
    if settings.capture:
        err.print(f"edgeslm: capturing every call to {settings.capture_db}"
                  + (" (encrypted)" if app.state.capture.sealer.cipher else ""), highlight=False)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        engine.close()


def _fold(engine, name: str | None) -> None:
    """The default adapter folded into a served copy of the weights, built once (seconds, with a progress
    bar) and found again on later starts; a copy that cannot be built leaves the adapter applied at
    decode time."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar: Progress | None = None

    def advance(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = Progress(TextColumn("folding the default adapter into a served copy (once)"), BarColumn(),
                           MofNCompleteColumn(), console=err, transient=True)
            bar.start()
            bar.add_task("fold", total=total)
        bar.update(bar.task_ids[0], completed=done)

    try:
        engine.fold(name, advance)
    except (EdgeError, OSError) as e:
        err.print(f"edgeslm: the default adapter stays unfolded (decoded as a LoRA): {getattr(e, 'message', e)}",
                  highlight=False)
    finally:
        if bar is not None:
            bar.stop()


def proxy(
    upstream: str = typer.Option(..., help="Base URL of the upstream OpenAI-compatible API (the teacher LLM)."),
    upstream_api_key_env: Optional[str] = typer.Option(
        None, help="Environment variable holding the upstream API key (default: without --api-key-env, forward "
        "the client's own Authorization header; with it, send none)."),
    api_key_env: Optional[str] = typer.Option(
        None, help="Environment variable holding the key the proxy's own clients must send as 'Authorization: "
        "Bearer KEY' (then their Authorization never goes upstream). Needed to listen beyond localhost."),
    host: str = typer.Option("127.0.0.1", help=Settings.model_fields["host"].description),
    port: int = typer.Option(8001, help="TCP port the proxy binds to."),
    allowed_hosts: Optional[str] = typer.Option(None, help=Settings.model_fields["allowed_hosts"].description),
    no_auth: bool = typer.Option(False, "--no-auth", help="Allow binding beyond localhost without --api-key-env "
                                 "(anyone who can reach the port may use the upstream and fill the capture)."),
    capture_retention_days: Optional[float] = typer.Option(
        None, min=0.001, help=Settings.model_fields["capture_retention_days"].description),
):
    """S1: an OpenAI-compatible pass-through to UPSTREAM that captures every call (streams included);
    point an agent's base URL here to log it."""
    import uvicorn

    from edgeslm.pipeline.proxy import create_proxy
    from edgeslm.store.capture import CaptureStore

    if not upstream.startswith(("http://", "https://")):
        _fail(f"invalid --upstream '{upstream}': give an http:// or https:// URL")
    for flag, var in (("--api-key-env", api_key_env), ("--upstream-api-key-env", upstream_api_key_env)):
        if var and not os.environ.get(var):
            _fail(f"{flag} {var}: that environment variable is not set")
    if host not in LOOPBACK and not api_key_env and not no_auth:
        _fail(f"--host {host} is reachable beyond this machine: give --api-key-env VAR (clients then send "
              "'Authorization: Bearer <value of VAR>'), or --no-auth to accept anyone")
    settings = get_settings(capture_retention_days=capture_retention_days, allowed_hosts=allowed_hosts, host=host)
    try:
        store = CaptureStore(settings.capture_db, key_env=settings.capture_key_env,
                             retention_days=settings.capture_retention_days)
    except EdgeError as e:
        _fail(e.message)
    err.print(f"edgeslm: proxying to {upstream} at http://{host}:{port}/v1, capturing to {settings.capture_db}"
              + (" (encrypted)" if store.sealer.cipher else "") + (" (API key required)" if api_key_env else ""),
              highlight=False)
    from edgeslm.serving.app import allowed_hosts as hosts_of

    app = create_proxy(upstream, store, upstream_api_key_env, hosts=hosts_of(settings),
                       client_key=os.environ.get(api_key_env) if api_key_env else None, settings=settings)
    uvicorn.run(app, host=host, port=port, log_level="warning")
