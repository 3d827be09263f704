"""One guard for every server edgeslm starts (issue 22): the export's front and `edgeslm proxy`, as real
HTTP servers, refuse what `serve` refuses (hosts, keys, bodies over the limits, non-objects, deep JSON)
with the same error JSON, never pass a client's credentials on, and the front redacts a routed request
as `serve` does and restores the answer, streamed or not.

The engine and the teacher behind them are a stand-in HTTP server that records what it is sent (no
GPU engine or hosted LLM runs here); it answers by echoing the first e-mail address it finds (the fake that replaced the user's)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import httpx
import pytest

from benchmarks._server import free_port
from tests.standin import stand_in

EMAIL = "alice.martin@example.com"


@pytest.fixture(scope="module")
def engine():
    """Records (headers, body) of every call; answers 'mail <first e-mail address seen>', plain or streamed."""

    def respond(headers: dict, body: dict) -> tuple[bytes, str]:
        found = re.search(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}", json.dumps(body))
        text = "mail " + (found.group(0) if found else "none")
        if body.get("stream"):
            chunks = [{"choices": [{"index": 0, "delta": {"content": text[:7]}, "finish_reason": None}]},
                      {"choices": [{"index": 0, "delta": {"content": text[7:]}, "finish_reason": None}]},
                      {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
            data = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            return data.encode(), "text/event-stream"
        return json.dumps({"id": "x", "object": "chat.completion", "model": body.get("model"), "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}).encode(), \
            "application/json"

    with stand_in(respond) as (url, seen):
        yield url + "/v1", seen


def _start(args: list[str], env: dict, port: int, health: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    for _ in range(150):
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode())
        try:
            httpx.get(f"http://127.0.0.1:{port}{health}", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("did not start")


def hostile(url: str, key: str) -> None:
    """What the guard refuses, on any of edgeslm's servers, each as OpenAI error JSON."""
    auth = {"Authorization": f"Bearer {key}"}
    cases = [
        ({"content": b'{"messages": []}'}, 401, "invalid_api_key"),
        ({"content": b"[1, 2]", "headers": auth}, 400, "invalid_json"),
        ({"content": b"[" * 100_000 + b"]" * 100_000, "headers": auth}, 400, "json_too_deep"),
        ({"content": b'{"messages": [' + b"[" * 80 + b"]" * 80 + b"]}", "headers": auth}, 400, "json_too_deep"),
        ({"content": b"{broken", "headers": auth}, 400, "invalid_json"),
        ({"content": b"x" * (5 << 20), "headers": auth}, 413, "request_too_large"),
        ({"content": b"{}", "headers": {**auth, "Host": "evil.example"}}, 421, "host_not_allowed"),
    ]
    for kw, status, code in cases:
        r = httpx.post(url + "/chat/completions", timeout=30, **kw)
        assert r.status_code == status and r.json()["error"]["code"] == code, (status, code, r.text[:200])


def test_front_is_guarded_keeps_credentials_and_redacts_what_it_routes(engine, tmp_path):
    url, seen = engine
    export = tmp_path / "export"
    (export / "router").mkdir(parents=True)
    (export / "export.json").write_text(json.dumps({"model": "base", "served_model_name": "base",
                                                    "adapters": {"mail": {}}, "default_adapter": None}))
    (export / "router" / "router.json").write_text(json.dumps({  # one promoted task: every request routes to it
        "classes": [{"cluster": 0, "label": "mail", "promoted": True, "base": "base", "task": "mail"}],
        "systems": [], "system_weight": 0.0, "coef": [[0.0]], "intercept": [0.0], "threshold": 0.5}))
    port = free_port()
    env = {**os.environ, "FRONT_KEY": "front-secret", "ENGINE_KEY": "engine-secret"}
    proc = _start(["edgeslm.export.front", "--export", str(export), "--engine", url, "--port", str(port),
                   "--api-key-env", "FRONT_KEY", "--engine-key-env", "ENGINE_KEY"], env, port, "/health")
    try:
        front = f"http://127.0.0.1:{port}/v1"
        hostile(front, "front-secret")
        auth = {"Authorization": "Bearer front-secret"}
        body = {"model": "auto", "messages": [{"role": "user", "content": f"Write to {EMAIL} about lunch."}]}
        seen.clear()
        r = httpx.post(front + "/chat/completions", json=body, headers=auth, timeout=30)
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == f"mail {EMAIL}", r.text
        headers, sent = seen[-1]
        # redacted as curation and serve redact: a realistic fake in place of the address
        assert EMAIL not in json.dumps(sent) and "@" in sent["messages"][0]["content"], sent
        assert sent["model"] == "mail"
        assert headers.get("authorization") == "Bearer engine-secret"  # the engine's key, never the client's
        with httpx.stream("POST", front + "/chat/completions", json={**body, "stream": True}, headers=auth,
                          timeout=30) as s:
            text = "".join(json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                           for line in s.iter_lines() if line.startswith("data: {"))
        assert text == f"mail {EMAIL}"
        seen.clear()
        r = httpx.post(front + "/chat/completions", json={**body, "model": "other"}, headers=auth, timeout=30)
        assert r.status_code == 200 and EMAIL in json.dumps(seen[-1][1])  # not routed: passed through as sent
    finally:
        proc.terminate()
        proc.wait(10)


def test_front_refuses_to_listen_beyond_localhost_without_a_key(tmp_path):
    r = subprocess.run([sys.executable, "-m", "edgeslm.export.front", "--export", str(tmp_path), "--engine",
                        "http://127.0.0.1:9/v1", "--host", "0.0.0.0"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "--api-key-env" in r.stderr and "Traceback" not in r.stderr


def test_proxy_has_its_own_client_key_that_never_goes_upstream(engine, env, tmp_path):
    url, seen = engine
    port = free_port()
    penv = {**env, "EDGESLM_HOME": str(tmp_path), "PROXY_KEY": "proxy-secret", "TEACHER_KEY": "teacher-secret"}
    proc = _start(["edgeslm", "proxy", "--upstream", url, "--port", str(port), "--api-key-env", "PROXY_KEY",
                   "--upstream-api-key-env", "TEACHER_KEY"], penv, port, "/health")
    try:
        base = f"http://127.0.0.1:{port}/v1"
        hostile(base, "proxy-secret")
        seen.clear()
        r = httpx.post(base + "/chat/completions", headers={"Authorization": "Bearer proxy-secret"}, timeout=30,
                       json={"model": "teacher", "messages": [{"role": "user", "content": "Hi"}]})
        assert r.status_code == 200, r.text
        assert seen[-1][0].get("authorization") == "Bearer teacher-secret"
    finally:
        proc.terminate()
        proc.wait(10)
    r = subprocess.run([sys.executable, "-m", "edgeslm", "proxy", "--upstream", url, "--host", "0.0.0.0"],
                       env=penv, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "--api-key-env" in r.stderr and "Traceback" not in r.stderr
