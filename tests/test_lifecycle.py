"""Worker lifecycle, in process on the real model: loads run outside the engine lock, a worker that dies
is reported by /health (503) and replaced on the next request, and no job is lost to an unload."""

import threading
import time

import pytest
from fastapi.testclient import TestClient

from edgeslm import engine as engine_mod
from edgeslm.config import get_settings
from edgeslm.engine import Engine
from edgeslm.errors import BackendError, NotFound, WorkerGone
from edgeslm.scheduling import Scheduler
from edgeslm.serving.app import create_app
from edgeslm.types import Message, OutputSpec, SamplingParams
from tests.cores import THREADS

HI = [Message("user", "Hi")]


def _run(w, n=3):
    return w.run(HI, OutputSpec(kind="text"), SamplingParams(max_tokens=n, temperature=0))


@pytest.fixture()
def eng(home):
    e = Engine(get_settings(home=home, threads=THREADS, n_ctx=1024, parallel=2))
    yield e
    e.close()


def test_a_dead_worker_is_reported_and_replaced(eng, monkeypatch):
    http = TestClient(create_app(eng), base_url="http://localhost")
    w = eng.worker("default")
    assert _run(w).content is not None
    # fault injection (a bug that cannot be provoked from outside): the scheduler's next round raises
    monkeypatch.setattr(Scheduler, "_round", lambda self: (_ for _ in ()).throw(RuntimeError("injected")))
    with pytest.raises(BackendError) as e:
        _run(w)
    assert e.value.code == "worker_failed"
    w.thread.join(5)
    health = http.get("/health")
    assert health.status_code == 503 and "injected" in health.json()["dead"][w.entry.id]
    with pytest.raises(WorkerGone):
        _run(w)  # fails fast, never queued behind a dead thread
    monkeypatch.undo()
    r = http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3})
    assert r.status_code == 200, r.text
    assert eng.worker("default") is not w and http.get("/health").status_code == 200


def test_a_load_does_not_hold_the_engine_lock(eng, monkeypatch):
    real = engine_mod.ModelWorker.__init__
    loads = []

    def slow(self, *a, **k):  # a slow disk, made visible: the load takes 3 s longer
        loads.append(1)
        time.sleep(3)
        real(self, *a, **k)

    monkeypatch.setattr(engine_mod.ModelWorker, "__init__", slow)
    got = []
    loaders = [threading.Thread(target=lambda: got.append(eng.worker("default"))) for _ in range(2)]
    for t in loaders:
        t.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    with pytest.raises(NotFound):
        eng.worker("qwen2.5-0.5b-instruct-q4_k_m")  # in the catalog, not in the store
    assert time.monotonic() - t0 < 1.0  # answered while the other model loads
    for t in loaders:
        t.join()
    assert len(loads) == 1 and got[0] is got[1]  # two requests for one model: one load


def test_no_job_is_lost_to_an_unload(eng):
    w = eng.worker("default")
    done = []
    jobs = [threading.Thread(target=lambda: done.append(_run(w, 8))) for _ in range(4)]
    for t in jobs:
        t.start()
    time.sleep(0.2)
    w.close()  # evicted while jobs wait: they are still answered
    for t in jobs:
        t.join(60)
    assert len(done) == 4
    w.thread.join(10)
    with pytest.raises(WorkerGone):
        _run(w)
    assert _run(eng.worker("default")).content is not None  # the engine loads a successor


def test_a_worker_unloaded_while_a_request_is_prepared_is_retried(eng, monkeypatch):
    """The unload lands between the lookup and `prepare` (fault injection: the window is microseconds
    wide from outside). `prepare` raises WorkerGone there, as `submit` does, and both are retried once."""
    http = TestClient(create_app(eng), base_url="http://localhost")
    first = eng.worker_for("default", None)  # the worker a default request runs on (its folded copy, once built)
    real, calls = engine_mod.ModelWorker.prepare, []

    def unloaded_meanwhile(self, *a, **k):
        calls.append(self)
        if len(calls) == 1:
            self.close()
            self.thread.join(10)
        return real(self, *a, **k)

    monkeypatch.setattr(engine_mod.ModelWorker, "prepare", unloaded_meanwhile)
    r = http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3})
    assert r.status_code == 200, r.text
    assert calls[0] is first and calls[1] is not first
