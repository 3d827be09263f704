"""What the project says matches what it does: the README and docs/ name modules that exist; core code
imports only what the core dependencies install; the catalog's hashes are real hashes or absent, and an
absent one is pinned on first use, never skipped; hub pulls use huggingface_hub's token (`hf auth login`);
the training options' help quotes the real defaults."""

from __future__ import annotations

import ast
import hashlib
import re
import subprocess
import sys
import threading
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path

import pytest
import tomli_w

from edgeslm.config import Settings
from edgeslm.errors import InvalidRequest
from edgeslm.store.entries import ModelEntry, Source, read_catalog, shipped_catalog
from edgeslm.store.registry import Catalog

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_names_only_modules_that_exist():
    text = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    named = set(re.findall(r"`(edgeslm/[\w/]+\.py)`", text))
    assert named, "the README and docs/ name no module paths any more: this test needs a new pattern"
    assert sorted(p for p in named if not (ROOT / p).is_file()) == []


def _dist(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_core_code_imports_only_what_the_core_dependencies_install():
    """Every third-party module an edgeslm module imports at its top comes with `pip install edgeslm`
    (no extra): declared in [project] dependencies, or required by one of them."""
    core = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    installed, todo = set(), [_dist(r) for r in core]
    while todo:
        name = todo.pop()
        if name in installed:
            continue
        installed.add(name)
        try:
            todo += [_dist(r) for r in metadata.requires(name) or [] if "extra ==" not in r]
        except metadata.PackageNotFoundError:
            pass
    providers = metadata.packages_distributions()
    missing = {}
    for path in sorted((ROOT / "edgeslm").rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for top in {n.split(".")[0] for n in names} - set(sys.stdlib_module_names) - {"edgeslm", "__future__"}:
                if not {_dist(d) for d in providers.get(top, [])} & installed:
                    missing.setdefault(top, []).append(str(path.relative_to(ROOT)))
    assert missing == {}


def test_catalog_hashes_are_hashes_or_absent():
    raw = tomllib.loads(shipped_catalog().read_text())["model"]
    assert all(re.fullmatch(r"[0-9a-f]{64}", m["sha256"]) for m in raw if "sha256" in m)
    assert any(m["source"]["kind"] == "hf" for m in raw)
    assert all(e.sha256 == "" for e in read_catalog(shipped_catalog()) if e.source.kind == "hf")
    with pytest.raises(ValueError, match="64 hex digits"):
        ModelEntry(id="x", architecture="llama", sha256="TODO", source=Source(kind="hf", repo="o/r", file="f.gguf"))


def test_a_file_without_a_pinned_hash_is_pinned_on_first_use_then_checked(tmp_path):
    settings = Settings(home=tmp_path)
    entry = ModelEntry(id="hub-model", architecture="llama", source=Source(kind="hf", repo="o/r", file="m.gguf"))
    (tmp_path / "models.toml").write_text(tomli_w.dumps({"model": [entry.model_dump()]}))
    stored = tmp_path / "models" / "hub-model" / "m.gguf"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"GGUF the file as first seen")  # e.g. pulled before the catalog pinned anything
    catalog = Catalog(settings)
    assert catalog.ensure_local(catalog.get("hub-model")) == stored
    pinned = Catalog(settings).get("hub-model").sha256
    assert pinned == hashlib.sha256(b"GGUF the file as first seen").hexdigest()
    stored.write_bytes(b"GGUF a different file, same name")
    catalog = Catalog(settings)
    with pytest.raises(InvalidRequest, match="does not match"):
        catalog.ensure_local(catalog.get("hub-model"))


class _Hub:
    """A hub that serves one file straight from its resolve URL and remembers the Authorization headers."""

    def __init__(self, data: bytes):
        self.auth: list[str | None] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, body: bool):
                hub.auth.append(self.headers.get("Authorization"))
                ok = self.path == "/org/fake/resolve/main/fake.gguf"
                self.send_response(200 if ok else 404)
                self.send_header("Content-Length", str(len(data) if ok else 0))
                self.end_headers()
                if ok and body:
                    self.wfile.write(data)

            def do_HEAD(self):
                self._answer(False)

            def do_GET(self):
                self._answer(True)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_pull_sends_the_token_of_hf_auth_login(env, tmp_path):
    data = b"GGUF" + bytes(range(256)) * 64
    hub = _Hub(data)
    try:
        home = tmp_path / "home"
        home.mkdir()
        entry = {"id": "fake-model", "architecture": "gemma3", "source": {"kind": "hf", "repo": "org/fake",
                                                                          "file": "fake.gguf"}}
        (home / "models.toml").write_text(tomli_w.dumps({"model": [entry]}))
        (tmp_path / "token").write_text("hf_logged_in_token\n")  # where `hf auth login` keeps it
        e = {**env, "EDGESLM_HOME": str(home), "HF_ENDPOINT": hub.url, "HF_TOKEN_PATH": str(tmp_path / "token")}
        for var in ("HF_HUB_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_DISABLE_IMPLICIT_TOKEN"):
            e.pop(var, None)
        r = subprocess.run([sys.executable, "-m", "edgeslm", "models", "pull", "fake-model"], env=e,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    finally:
        hub.server.shutdown()
    assert (home / "models" / "fake-model" / "fake.gguf").read_bytes() == data
    assert hub.auth and set(hub.auth) == {"Bearer hf_logged_in_token"}
    assert tomllib.loads((home / "models.toml").read_text())["model"][0]["sha256"] == hashlib.sha256(data).hexdigest()


def test_training_help_quotes_the_real_defaults():
    from typer.testing import CliRunner

    from edgeslm.cli import app
    from edgeslm.pipeline.finetune import TrainConfig

    cfg = TrainConfig()
    for command in (["finetune", "--help"], ["convert", "run", "--help"]):
        text = " ".join(CliRunner().invoke(app, command, env={"COLUMNS": "400"}).output.split())
        assert f"default: {cfg.epochs:g} epochs, at most {cfg.max_steps}" in text, command
        assert f"default: {cfg.lr:g}" in text and f"default: {cfg.rank}" in text and f"default: {cfg.batch}" in text
