"""Who may call the server, and what leaves it: the API key, the client's credentials never forwarded to
the teacher unless asked, refusals at start-up, and the documented EDGESLM_* variables honoured."""

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from benchmarks._server import free_port, running_server
from tests.standin import stand_in
from tests.cores import THREADS

ANSWER = {"id": "up-1", "object": "chat.completion", "model": "teacher", "usage": None,
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "from the teacher"},
                       "finish_reason": "stop"}]}


@pytest.fixture(scope="module")
def teacher():
    """A stand-in for the upstream LLM (no network here): answers every chat completion and records
    the Authorization header it was sent."""
    auths: list = []  # the Authorization header of each call (None when it got none)

    def respond(headers: dict, body: dict) -> tuple[bytes, str]:
        auths.append(headers.get("authorization"))
        return json.dumps(ANSWER).encode(), "application/json"

    with stand_in(respond) as (url, _):
        yield url, auths


def _auto(base, key):
    return httpx.post(base + "/chat/completions", timeout=60, headers={"Authorization": f"Bearer {key}"},
                      json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]})


def test_api_key_guards_every_route_but_health_and_never_goes_upstream(env, teacher):
    url, seen = teacher
    env = {**env, "EDGE_KEY": "s3cret-edge", "TEACHER_KEY": "teacher-key"}
    args = ["--api-key-env", "EDGE_KEY", "--upstream", url, "--upstream-api-key-env", "TEACHER_KEY"]
    with running_server(threads=THREADS, env=env, extra_args=args) as base:
        root = base.removesuffix("/v1")
        assert httpx.get(root + "/health").status_code == 200
        # the web page and its assets load without the key (its key box is how a user gives it one)
        page = httpx.get(root + "/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assets = [a for a in ("/web/app.js", "/web/style.css") if a.rsplit("/", 1)[1] in page.text]
        assert assets and all(httpx.get(root + a).status_code == 200 for a in assets)
        for path in ("/v1/models", "/openapi.json", "/v1/status", "/metrics"):
            r = httpx.get(root + path)
            assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert httpx.get(base + "/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert _auto(base, "wrong").status_code == 401
        seen.clear()
        r = _auto(base, "s3cret-edge")
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "from the teacher"
        assert seen == ["Bearer teacher-key"]  # the teacher's key, not the client's
        # Anthropic's clients send x-api-key; a wrong one gets Anthropic's 401; "auto" reaches the teacher
        # from every format, and its chat answer comes back in the client's format (streamed too)
        import anthropic
        from openai import OpenAI

        with pytest.raises(anthropic.AuthenticationError) as e:
            anthropic.Anthropic(base_url=root, api_key="wrong", max_retries=0).messages.create(
                model="auto", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
        assert e.value.body["error"]["type"] == "authentication_error"
        claude = anthropic.Anthropic(base_url=root, api_key="s3cret-edge", max_retries=0)
        m = claude.messages.create(model="auto", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
        assert m.content[0].text == "from the teacher" and m.stop_reason == "end_turn"
        with claude.messages.stream(model="auto", max_tokens=8, messages=[{"role": "user", "content": "hi"}]) as st:
            assert st.get_final_text() == "from the teacher"
        oa = OpenAI(base_url=base, api_key="s3cret-edge", max_retries=0)
        assert oa.responses.create(model="auto", input="hi").output_text == "from the teacher"
        with oa.responses.stream(model="auto", input="hi") as st:
            assert st.get_final_response().output_text == "from the teacher"


def test_client_credentials_stay_here_unless_asked(env, teacher):
    url, seen = teacher
    with running_server(threads=THREADS, env=env, extra_args=["--upstream", url]) as base:
        seen.clear()
        assert _auto(base, "client-own-key").status_code == 200
        assert seen == [None]
    with running_server(threads=THREADS, env=env, extra_args=["--upstream", url, "--upstream-forward-client-auth"]) as base:
        seen.clear()
        assert _auto(base, "client-own-key").status_code == 200
        assert seen == ["Bearer client-own-key"]


@pytest.mark.parametrize("args,needle", [
    (["--upstream", "http://127.0.0.1:9", "--upstream-api-key-env", "EDGESLM_TEST_UNSET"], "EDGESLM_TEST_UNSET"),
    (["--api-key-env", "EDGESLM_TEST_UNSET"], "EDGESLM_TEST_UNSET"),
    (["--host", "0.0.0.0"], "--api-key-env"),
])
def test_unsafe_starts_are_refused(env, args, needle):
    env = {k: v for k, v in env.items() if k != "EDGESLM_TEST_UNSET"}
    r = subprocess.run([sys.executable, "-m", "edgeslm", "serve", "--port", str(free_port()), *args],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr


def test_serve_reads_host_port_and_default_model_from_the_environment(env, tmp_path):
    port = free_port()
    r = subprocess.run([sys.executable, "-m", "edgeslm", "serve"], env={**env, "EDGESLM_DEFAULT_MODEL": "nope-xyz"},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "nope-xyz" in r.stderr  # the variable is read
    env = {**env, "EDGESLM_HOST": "127.0.0.1", "EDGESLM_PORT": str(port), "EDGESLM_DEFAULT_MODEL": "gemma-3-270m-q4_k_m"}
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "edgeslm", "serve", "--threads", str(THREADS)], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        health = httpx.get(f"http://127.0.0.1:{port}/health").json()
        assert [m.split("+")[0] for m in health["models"]] == ["gemma-3-270m-q4_k_m"]  # it or its folded copy
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    assert os.path.exists(tmp_path / "serve.log")
