"""`edgeslm models pull` against a local server that speaks the hub's file API (no network here): the
resolve URL redirects to a CDN URL that honours Range and ETag. A pull resumes after a kill, refuses a
file whose sha256 is not the catalog's, checks the disk before downloading, and says when it is offline."""

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import tomli_w

SIZE = 3 * 1024 * 1024
DATA = os.urandom(SIZE)


class Hub:
    """A stand-in for huggingface.co (and its CDN): what it serves, how fast, and what it was asked."""

    def __init__(self):
        self.data, self.linked_size, self.delay, self.ranges = DATA, None, 0.0, []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def _head(self, send_body: bool):
                if self.path.startswith("/org/fake/resolve/main/"):
                    self.send_response(302)
                    self.send_header("Location", "/cdn/fake.gguf")
                    self.send_header("X-Linked-Size", str(hub.linked_size or len(hub.data)))
                    self.send_header("X-Linked-Etag", '"' + hashlib.sha256(hub.data).hexdigest() + '"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path != "/cdn/fake.gguf":
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start, rng = 0, self.headers.get("Range")
                if rng:
                    hub.ranges.append(rng)
                    start = int(rng.split("=")[1].split("-")[0])
                body = hub.data[start:]
                self.send_response(206 if rng else 200)
                self.send_header("ETag", '"' + hashlib.sha256(hub.data).hexdigest() + '"')
                self.send_header("Content-Length", str(len(body)))
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(hub.data) - 1}/{len(hub.data)}")
                self.end_headers()
                if send_body:
                    for i in range(0, len(body), 64 * 1024):
                        self.wfile.write(body[i:i + 64 * 1024])
                        time.sleep(hub.delay)

            def do_HEAD(self):
                self._head(False)

            def do_GET(self):
                try:
                    self._head(True)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture()
def hub(tmp_path):
    h = Hub()
    yield h
    h.server.shutdown()


@pytest.fixture()
def pull_env(env, tmp_path, hub):
    home = tmp_path / "home"
    home.mkdir()
    entry = {"id": "fake-model", "architecture": "gemma3", "sha256": hashlib.sha256(DATA).hexdigest(),
             "source": {"kind": "hf", "repo": "org/fake", "file": "fake.gguf"}}
    (home / "models.toml").write_text(tomli_w.dumps({"model": [entry]}))
    e = {**env, "EDGESLM_HOME": str(home), "HF_ENDPOINT": hub.url}
    e.pop("HF_HUB_OFFLINE", None)
    return e


def pull(env, timeout=120):
    return subprocess.run([sys.executable, "-m", "edgeslm", "models", "pull", "fake-model"], env=env,
                          capture_output=True, text=True, timeout=timeout)


def stored(env):
    return os.path.join(env["EDGESLM_HOME"], "models", "fake-model", "fake.gguf")


def test_pull_downloads_and_verifies(pull_env):
    r = pull(pull_env)
    assert r.returncode == 0, r.stderr
    assert open(stored(pull_env), "rb").read() == DATA


def test_a_killed_pull_resumes_where_it_stopped(pull_env, hub):
    hub.delay = 0.05  # 48 chunks of 64 KiB: ~2.4 s in all
    proc = subprocess.Popen([sys.executable, "-m", "edgeslm", "models", "pull", "fake-model"], env=pull_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = stored(pull_env) + ".part"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not os.path.exists(part) or os.path.getsize(part) < SIZE // 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    have = os.path.getsize(part)
    assert SIZE // 3 <= have < SIZE
    hub.delay = 0.0
    r = pull(pull_env)
    assert r.returncode == 0, r.stderr
    assert open(stored(pull_env), "rb").read() == DATA
    assert hub.ranges and int(hub.ranges[-1].split("=")[1].split("-")[0]) >= SIZE // 3  # resumed, not restarted


def test_a_file_that_is_not_the_pinned_one_is_refused_and_deleted(pull_env, hub):
    hub.data = os.urandom(SIZE)
    r = pull(pull_env)
    assert r.returncode == 2 and "sha256" in r.stderr and "deleted" in r.stderr
    assert not os.path.exists(stored(pull_env))


def test_the_disk_is_checked_before_downloading(pull_env, hub):
    hub.linked_size = 10**15  # a petabyte
    r = pull(pull_env)
    assert r.returncode == 2 and "GB free" in r.stderr and "nothing was downloaded" in r.stderr
    assert not os.path.exists(stored(pull_env) + ".part")


def test_offline_is_said_plainly(pull_env):
    closed = {**pull_env, "HF_ENDPOINT": "http://127.0.0.1:9"}
    r = pull(closed)
    assert r.returncode == 2 and "offline" in r.stderr and "edgeslm models import" in r.stderr
