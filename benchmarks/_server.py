"""Start a real `edgeslm serve` subprocess on a free loopback port for a benchmark or test, and stop it.

This module owns the server's lifetime only: port choice, start-up (log to a temp file), the /health wait
and the shutdown (SIGTERM, 10 s grace, then kill; on Linux the server also gets SIGTERM when the process
that started it dies).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: str, n: int = 2000) -> str:
    with open(path, errors="replace") as f:
        return f.read()[-n:]


def _dies_with_parent():
    """On Linux, for a server started from the main thread: have the kernel send it SIGTERM when this
    process dies, so a benchmark killed by a signal (no `finally` runs) leaves no server behind. The
    kernel ties it to the thread that started the child, hence the main thread only."""
    import threading

    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None

    import ctypes
    import signal

    prctl, parent = ctypes.CDLL(None, use_errno=True).prctl, os.getpid()  # looked up here: the child only calls

    def arm() -> None:
        prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the call
            os._exit(1)

    return arm


def start_server(model: str = "default", threads: int | None = None, extra_args=(), env=None, timeout=180,
                 cwd=None, port: int | None = None) -> tuple[subprocess.Popen, str, str]:
    """Start `edgeslm serve` (on `port`, else a free one) and wait until /health answers 200; returns the
    process, the base URL (http://127.0.0.1:PORT/v1) and the log path. The caller stops it (stop_server)."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "edgeslm", "serve", "--model", model,
           "--host", "127.0.0.1", "--port", str(port), *extra_args]
    if threads:
        cmd += ["--threads", str(threads)]
    log = tempfile.NamedTemporaryFile(prefix="edgeslm-serve-", suffix=".log", delete=False)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                            env=os.environ.copy() if env is None else env, preexec_fn=_dies_with_parent())
    log.close()  # the child holds its own handle
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode} during start-up; "
                                   f"log {log.name}:\n{_tail(log.name)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not healthy after {timeout} s; log {log.name}:\n{_tail(log.name)}")
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
    except BaseException:
        stop_server(proc)
        raise
    return proc, base + "/v1", log.name


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM, 10 s grace, then kill."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def running_server(model: str = "default", threads: int | None = None, extra_args=(), env=None, timeout=180,
                   cwd=None):
    """Yields the base URL (http://127.0.0.1:PORT/v1) once /health answers 200."""
    proc, base, _ = start_server(model, threads, extra_args, env, timeout, cwd)
    try:
        yield base
    finally:
        stop_server(proc)


@contextlib.contextmanager
def app_in_thread(app, timeout: float = 30):
    """Serve an ASGI app (the scripted teacher, a proxy, an edgeslm app) with uvicorn on a free port in
    a daemon thread; yields its base URL (http://127.0.0.1:PORT)."""
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError(f"app not started after {timeout} s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
