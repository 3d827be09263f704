"""A running server says what it did: a request id per request (echoed when the client sends one), and one
access line per request with route, status, model, adapter, tokens and latency, as text or JSON."""

import json
import logging

import pytest
from fastapi.testclient import TestClient

from edgeslm.config import get_settings
from edgeslm.engine import Engine
from edgeslm.serving import logs
from edgeslm.serving.app import create_app
from tests.cores import THREADS


@pytest.fixture(scope="module")
def http(home):
    e = Engine(get_settings(home=home, threads=THREADS, n_ctx=1024, parallel=2))
    yield TestClient(create_app(e), base_url="http://localhost")
    e.close()


def test_request_ids_and_access_lines(http, caplog):
    caplog.set_level(logging.INFO, logger="edgeslm.access")
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3}
    r = http.post("/v1/chat/completions", json=body, headers={"X-Request-Id": "agent-42"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "agent-42"
    line = caplog.records[-1]
    assert line.request_id == "agent-42"
    assert line.fields["route"] == "/v1/chat/completions" and line.fields["status"] == 200
    assert line.fields["model"] == "gemma-3-270m-q4_k_m" and line.fields["adapter"] == "tools"
    assert line.fields["completion_tokens"] == r.json()["usage"]["completion_tokens"] and line.fields["latency_s"] > 0
    with http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as s:
        assert len(s.headers["x-request-id"]) == 16 and "[DONE]" in s.read().decode()
    assert caplog.records[-1].fields["completion_tokens"] >= 1  # a stream is logged when it ends
    r = http.post("/v1/chat/completions", json={"messages": []}, headers={"X-Request-Id": "bad id with spaces"})
    assert r.status_code == 400 and r.headers["x-request-id"] != "bad id with spaces"
    assert caplog.records[-1].fields["status"] == 400


def test_json_log_lines():
    rec = logging.LogRecord("edgeslm.access", logging.INFO, __file__, 1, "x", None, None)
    rec.request_id, rec.fields = "abc", {"status": 200, "model": "m"}
    out = json.loads(logs.JsonFormatter().format(rec))
    assert out["request_id"] == "abc" and out["status"] == 200 and out["logger"] == "edgeslm.access"


def test_a_prepared_job_carries_the_request_id_into_the_worker(http):
    from starlette.concurrency import run_in_threadpool  # the server prepares jobs in the thread pool

    import asyncio

    from edgeslm import context
    from edgeslm.types import Message, OutputSpec, SamplingParams

    w = http.app.state.engine.worker("default")

    async def prepare():
        context.request_id.set("req-7")
        return await run_in_threadpool(w.prepare, [Message("user", "Hi")], OutputSpec(kind="text"),
                                       SamplingParams(max_tokens=1), lambda ev: None)

    assert asyncio.run(prepare()).request_id == "req-7"
