"""S1 capture: the SQLite store (0600, WAL, named migrations, encryption at rest, retention) and
`edgeslm serve --capture` through the real server, including a kill -9 mid-stream that must lose
no committed call."""

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time

import httpx
import pytest
from openai import OpenAI

from benchmarks._server import free_port
from edgeslm.store.capture import MIGRATIONS, CaptureError, CaptureStore
from tests.cores import THREADS

CALL = {"source": "serve", "client": "tests", "model": "m", "latency_s": 0.1, "finish_reason": "stop",
        "request": {"messages": [{"role": "user", "content": "my card is 4111 1111 1111 1111"}]},
        "response": {"choices": [{"message": {"content": "ok"}}]}}


def test_store_is_private_migrated_and_durable(tmp_path):
    s = CaptureStore(tmp_path / "c" / "calls.db")
    assert stat.S_IMODE(os.stat(tmp_path / "c" / "calls.db").st_mode) == 0o600
    assert s.migrations() == sorted(name for name, _ in MIGRATIONS)
    assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    s.add(CALL)
    s.close()
    again = CaptureStore(tmp_path / "c" / "calls.db")  # reopening applies nothing twice
    assert again.migrations() == sorted(name for name, _ in MIGRATIONS)
    (got,) = list(again.calls())
    assert got["request"] == CALL["request"] and got["client"] == "tests"


def test_encryption_at_rest(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPKEY", "correct horse battery staple")
    s = CaptureStore(tmp_path / "calls.db", key_env="CAPKEY")
    s.add(CALL)
    s.close()
    raw = sqlite3.connect(tmp_path / "calls.db").execute("SELECT payload FROM calls").fetchone()[0]
    assert b"4111" not in raw and b"messages" not in raw
    assert next(CaptureStore(tmp_path / "calls.db", key_env="CAPKEY").calls())["request"] == CALL["request"]
    monkeypatch.setenv("CAPKEY", "wrong")
    with pytest.raises(CaptureError, match="does not decrypt"):
        list(CaptureStore(tmp_path / "calls.db", key_env="CAPKEY").calls())
    monkeypatch.delenv("CAPKEY")
    with pytest.raises(CaptureError, match="holds encrypted calls; set CAPKEY"):
        list(CaptureStore(tmp_path / "calls.db", key_env="CAPKEY").calls())


def test_key_is_salted_scrypt_and_old_records_still_read(tmp_path, monkeypatch):
    from hashlib import sha256

    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    secret = "correct horse battery staple"
    monkeypatch.setenv("CAPKEY", secret)
    db = tmp_path / "calls.db"
    old = CaptureStore(db)  # an old-scheme record, written as the sha256 key wrote them: nonce(12) + ciphertext
    old.add(CALL)
    nonce = os.urandom(12)
    body = json.dumps({"request": CALL["request"], "response": CALL["response"]}).encode()
    old.db.execute("UPDATE calls SET encrypted = 1, payload = ?",
                   (nonce + AESGCM(sha256(secret.encode()).digest()).encrypt(nonce, body, None),))
    old.close()
    assert not (tmp_path / "calls.db.salt").exists()
    s = CaptureStore(db, key_env="CAPKEY")
    s.add({**CALL, "client": "new"})
    s.close()
    salt = tmp_path / "calls.db.salt"
    assert stat.S_IMODE(os.stat(salt).st_mode) == 0o600 and len(salt_bytes := salt.read_bytes()) == 16
    (_, old_raw), (scheme, new_raw) = sqlite3.connect(db).execute("SELECT encrypted, payload FROM calls ORDER BY id")
    assert scheme == 2 and b"4111" not in new_raw
    with pytest.raises(InvalidTag):  # the new key is not the bare hash of the passphrase
        AESGCM(sha256(secret.encode()).digest()).decrypt(new_raw[:12], new_raw[12:], None)
    again = CaptureStore(db, key_env="CAPKEY")  # both schemes read back, the salt is reused, not replaced
    assert [(c["client"], c["request"]) for c in again.calls()] == [("tests", CALL["request"]),
                                                                    ("new", CALL["request"])]
    again.add(CALL)
    assert salt.read_bytes() == salt_bytes
    again.close()
    monkeypatch.setenv("CAPKEY", "wrong")
    with pytest.raises(CaptureError, match="does not decrypt call 1"):  # an old-scheme record
        list(CaptureStore(db, key_env="CAPKEY").calls())
    raw = sqlite3.connect(db)
    raw.execute("DELETE FROM calls WHERE id = 1")
    raw.commit()
    with pytest.raises(CaptureError, match="does not decrypt call 2"):  # a new-scheme one
        list(CaptureStore(db, key_env="CAPKEY").calls())
    monkeypatch.setenv("CAPKEY", secret)
    salt.unlink()  # the salt is part of the key: without it the new records cannot be read, and none is invented
    with pytest.raises(CaptureError, match="calls.db.salt is missing"):
        list(CaptureStore(db, key_env="CAPKEY").calls())
    assert not salt.exists()


def test_two_stores_opening_together_agree_on_the_salt(tmp_path, monkeypatch):
    import threading

    monkeypatch.setenv("CAPKEY", "pass")
    stores = [CaptureStore(tmp_path / "calls.db", key_env="CAPKEY") for _ in range(4)]
    barrier = threading.Barrier(len(stores))

    def write(s):
        barrier.wait()
        s.add(CALL)

    threads = [threading.Thread(target=write, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [p.name for p in tmp_path.iterdir() if ".salt" in p.name] == ["calls.db.salt"]  # no temp file left
    assert len(list(CaptureStore(tmp_path / "calls.db", key_env="CAPKEY").calls())) == 4


def test_retention_runs_periodically_while_open(tmp_path):
    s = CaptureStore(tmp_path / "calls.db", retention_days=1e-5, expire_every_s=0.2)  # 0.864 s
    s.add({**CALL, "created": time.time() - 10})
    assert s.count() == 1  # only start-up expiry so far, and it ran before this was added
    deadline = time.time() + 2
    while s.count() and time.time() < deadline:
        time.sleep(0.05)
    assert s.count() == 0  # gone without anyone calling expire()
    assert s._expirer.is_alive()
    s.close()
    assert not s._expirer.is_alive()
    assert CaptureStore(tmp_path / "other.db")._expirer is None  # no retention, no thread


def test_retention_and_a_corrupt_database(tmp_path):
    s = CaptureStore(tmp_path / "calls.db")
    s.add({**CALL, "created": time.time() - 10 * 86400})
    s.add(CALL)
    s.close()
    s = CaptureStore(tmp_path / "calls.db", retention_days=7)
    assert s.count() == 1
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CaptureError, match="not a usable capture database"):
        CaptureStore(bad)


def test_serve_capture_survives_kill_9_mid_stream(env, tmp_path):
    from edgeslm.config import Settings
    from edgeslm.store.registry import Catalog

    shared = Settings(home=env["EDGESLM_HOME"])
    Catalog(shared).ensure_local(Catalog(shared).get("default"))
    home = tmp_path / "home"
    home.mkdir()
    os.symlink(shared.models_dir, home / "models")  # the same model, no copy
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "edgeslm", "serve", "--port", str(port), "--threads", str(THREADS),
                             "--capture"], env={**env, "EDGESLM_HOME": str(home)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert proc.poll() is None, "the server exited during start-up"
                time.sleep(0.3)
        client = OpenAI(base_url=base + "/v1", api_key="sk-test", max_retries=0, timeout=120)
        for i in range(3):
            client.chat.completions.create(model="default", messages=[{"role": "user", "content": f"Say {i}"}],
                                           max_tokens=4, extra_headers={"X-Client-Id": "agent-7"})
        for _ in client.chat.completions.create(model="default", messages=[{"role": "user", "content": "hi"}],
                                                max_tokens=4, stream=True):
            pass  # a stream is captured once it has ended
        # the other formats are captured in the chat shape curation reads
        other = {"X-Client-Id": "agent-9"}
        httpx.post(base + "/v1/messages", headers=other, timeout=60, json={
            "model": "default", "max_tokens": 4, "system": "Be brief.", "messages": [{"role": "user", "content": "Hi"}]})
        client.responses.create(model="default", input="Hello", max_output_tokens=4, extra_headers=other)
        with httpx.stream("POST", base + "/v1/chat/completions", timeout=60, json={
                "model": "default@none", "stream": True, "max_tokens": 1500, "temperature": 0,  # the bare base rambles on
                "messages": [{"role": "user", "content": "Tell me a very long story."}]}) as r:
            next(r.iter_lines())
            proc.send_signal(signal.SIGKILL)  # mid-stream, while the server is writing
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    db = home / "capture" / "calls.db"
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    calls = list(CaptureStore(db).calls())
    kept = [c for c in calls if c["client"] == "agent-7"]
    assert len(kept) == 3  # every call that was answered is there, nothing half-written
    assert kept[0]["request"]["messages"][0]["content"] == "Say 0" and kept[0]["response"]["choices"][0]["message"]
    formats = [c for c in calls if c["client"] == "agent-9"]
    assert [c["request"]["messages"] for c in formats] == [
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], [{"role": "user", "content": "Hello"}]]
    assert all(c["response"]["object"] == "chat.completion" for c in formats)
    calls = [c for c in calls if c["client"] != "agent-9"]
    assert len(calls) == 4 and calls[3]["client"].startswith("key:")  # the stream, by its API key's hash
    assert all(c["model"] == "gemma-3-270m-q4_k_m@tools" and c["source"] == "serve" for c in calls)  # default's adapter
    assert not any(c["request"].get("max_tokens") == 1500 for c in calls)  # the killed one never finished


def _start(args, env, port):
    proc = subprocess.Popen([sys.executable, "-m", "edgeslm", *args, "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for _ in range(100):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(proc.stderr.read())


def test_proxy_passes_through_and_captures_streams_too(server, env, tmp_path):
    from conftest import WEATHER

    home = tmp_path / "home"
    penv = {**env, "EDGESLM_HOME": str(home)}
    port = free_port()
    proc = _start(["proxy", "--upstream", server], penv, port)  # the teacher here is a real edgeslm serve
    try:
        direct = OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0, timeout=120)
        via = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=120)
        ask = {"model": "default", "messages": [{"role": "user", "content": "Weather in Oslo?"}], "tools": [WEATHER],
               "tool_choice": "required", "temperature": 0}
        def calls(message):
            return [(c.function.name, c.function.arguments) for c in message.tool_calls]

        want = calls(direct.chat.completions.create(**ask).choices[0].message)
        assert calls(via.chat.completions.create(**ask).choices[0].message) == want
        streamed: dict = {}
        for chunk in via.chat.completions.create(**ask, stream=True):
            for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                name, args = streamed.get(tc.index, ("", ""))
                streamed[tc.index] = (name + (tc.function.name or ""), args + (tc.function.arguments or ""))
        assert [streamed[i] for i in sorted(streamed)] == want
        r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", content=b"{not json", timeout=10)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    finally:
        proc.terminate()
        proc.wait(10)
    calls = list(CaptureStore(home / "capture" / "calls.db").calls())
    assert [c["source"] for c in calls] == ["proxy", "proxy"]  # the direct call to the teacher is not the proxy's
    assembled = calls[1]["response"]["choices"][0]["message"]["tool_calls"]
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in assembled] == want
    assert calls[1]["request"]["stream"] is True and calls[0]["request"]["tools"][0]["function"]["name"] == "get_weather"


def test_proxy_without_a_reachable_teacher_answers_502(env, tmp_path):
    port, dead = free_port(), free_port()
    proc = _start(["proxy", "--upstream", f"http://127.0.0.1:{dead}"], {**env, "EDGESLM_HOME": str(tmp_path)}, port)
    try:
        r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=30,
                       json={"model": "x", "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_unreachable"
        assert "cannot be reached" in r.json()["error"]["message"]
    finally:
        proc.terminate()
        proc.wait(10)
    r = subprocess.run([sys.executable, "-m", "edgeslm", "proxy", "--upstream", "ftp://x"], env=env,
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 2 and "invalid --upstream 'ftp://x'" in r.stderr


def test_capture_through_the_proxy_in_front_of_the_scripted_teacher(env, tmp_path):
    """S1 as an agent would see it: its base URL points at `edgeslm proxy`, which forwards to the
    teacher (the scripted stand-in for a hosted LLM) and logs every call, streamed or not."""
    import threading

    import uvicorn

    from benchmarks import synthetic
    from benchmarks.teacher import create_teacher

    calls = synthetic.workload(3, seed=9)
    tport, pport = free_port(), free_port()
    server = uvicorn.Server(uvicorn.Config(create_teacher(calls), host="127.0.0.1", port=tport, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.1)
    proc = _start(["proxy", "--upstream", f"http://127.0.0.1:{tport}"], {**env, "EDGESLM_HOME": str(tmp_path)}, pport)
    try:
        agent = OpenAI(base_url=f"http://127.0.0.1:{pport}/v1", api_key="sk-agent", max_retries=0, timeout=30)
        for i, c in enumerate(calls):
            kw = {"model": "teacher", "messages": c["messages"], "tools": c["tools"]}
            if i % 2:
                args = "".join(tc.function.arguments or "" for ch in agent.chat.completions.create(**kw, stream=True)
                               if ch.choices for tc in ch.choices[0].delta.tool_calls or [])
            else:
                args = agent.chat.completions.create(**kw).choices[0].message.tool_calls[0].function.arguments
            assert json.loads(args) == c["call"]["arguments"]
        r = httpx.post(f"http://127.0.0.1:{pport}/v1/chat/completions", timeout=10,
                       json={"model": "teacher", "messages": [{"role": "user", "content": "unscripted"}]})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_scripted"  # passed through as is
    finally:
        proc.terminate()
        proc.wait(10)
        server.should_exit = True
    got = list(CaptureStore(tmp_path / "capture" / "calls.db").calls())
    assert len(got) == len(calls)  # the refused request is not a call to learn from
    assert [json.loads(g["response"]["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"])
            for g in got] == [c["call"]["arguments"] for c in calls]
