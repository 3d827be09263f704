"""Every llama.cpp decode of the process runs on one thread, whichever worker thread asks
(backends/compute.COMPUTE). With two live threads that each ran an OpenMP team, libgomp throttled its
barriers and two resident models decoded at ~0.6x; the speed itself is `python -m benchmarks.two_models`
(a benchmark, not a timed test). Here: the calls are recorded on the real backends of the embedded model."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import llama_cpp

from edgeslm.backends import open_backend
from edgeslm.config import Settings
from edgeslm.store.registry import Catalog


def test_two_backends_used_from_two_threads_decode_on_one(home, monkeypatch):
    cat = Catalog(Settings(home=home))
    path = cat.ensure_local(cat.get("default"))
    real, seen = llama_cpp.llama_decode, set()

    def recorded(ctx, batch):
        seen.add(threading.get_ident())
        return real(ctx, batch)

    monkeypatch.setattr(llama_cpp, "llama_decode", recorded)
    backends = [open_backend(path, "gguf", n_ctx=256, n_threads=1) for _ in range(2)]
    callers = set()

    def use(b):
        callers.add(threading.get_ident())
        b.prefill(b.tokenize("The lighthouse keeper", add_bos=True), 0)
        b.decode([1000], 0)
        assert b.logits(0).shape[-1] == b.n_vocab

    try:
        threads = [threading.Thread(target=use, args=(b,)) for b in backends]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        use(backends[0])  # and the main thread
    finally:
        for b in backends:
            b.close()
    assert len(callers) == 3 and len(seen) == 1, (callers, seen)


def _python(code: str, **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    return subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True,
                          timeout=120)


def test_edgeslm_shortens_libgomps_spin_unless_the_user_set_it():
    """Beside one busy process, libgomp's default spin took decode from ~45 to ~6 tok/s, 1,000 rounds to ~20
    (`python -m benchmarks.contention`); it must be set before llama_cpp loads libgomp."""
    code = "import edgeslm, os, llama_cpp; print(os.environ['GOMP_SPINCOUNT'])"
    assert _python(code).stdout.strip() == "1000"
    assert _python(code, GOMP_SPINCOUNT="40000").stdout.strip() == "40000"


def test_a_decode_running_while_the_interpreter_exits_is_not_refused(home):
    """A generation still running when the server's interpreter shut down was refused by the compute thread
    (a ThreadPoolExecutor then): 'cannot schedule new futures after interpreter shutdown', with a traceback
    per request in CI's log."""
    cat = Catalog(Settings(home=home))
    path = cat.ensure_local(cat.get("default"))
    code = f"""
import threading, time, sys
from edgeslm.backends import open_backend
b = open_backend({str(path)!r}, "gguf", n_ctx=256, n_threads=1)
b.prefill(b.tokenize("The lighthouse keeper", add_bos=True), 0)
errors = []
def spin():
    try:
        for i in range(100000):
            b.decode([1000 + i % 50], 0)
            if i % 40 == 39:
                b.rewind(0, 4)
    except Exception as e:
        errors.append(e)
        print("decode failed:", type(e).__name__, e, file=sys.stderr, flush=True)
threading.Thread(target=spin, daemon=True).start()
time.sleep(1.5)
print("exiting", flush=True)
"""
    r = _python(code)
    assert r.returncode == 0 and "exiting" in r.stdout, r.stderr[-2000:]
    assert "decode failed" not in r.stderr and "cannot schedule" not in r.stderr, r.stderr[-2000:]
