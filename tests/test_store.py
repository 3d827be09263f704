"""The catalog, the store and `edgeslm models …`, run as a user would (real CLI, real files)."""

import json
import subprocess
import sys

import pytest

from edgeslm.config import Settings
from edgeslm.errors import InvalidRequest
from edgeslm.store import gguf_io
from edgeslm.store.registry import Catalog


def cli(env, *args):
    return subprocess.run([sys.executable, "-m", "edgeslm", *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def default_path(env):
    r = cli(env, "models", "pull", "default")
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().split(": ", 1)[1]


def test_catalog_lists_the_embedded_default_first_and_real_candidates(env):
    rows = json.loads(cli(env, "models", "list", "--json").stdout)
    assert rows[0]["id"] == "gemma-3-270m-q4_k_m" and rows[0]["aliases"] == ["default"]
    ids = {r["id"] for r in rows}
    for want in ("qwen2.5-0.5b-instruct-q4_k_m", "qwen2.5-1.5b-instruct-q4_k_m", "qwen2.5-3b-instruct-q4_k_m",
                 "llama-3.2-1b-instruct-q4_k_m", "llama-3.2-3b-instruct-q4_k_m", "smollm2-1.7b-instruct-q4_k_m",
                 "phi-4-mini-instruct-q4_k_m"):
        assert want in ids
    licenses = {r["id"]: r["license"] for r in rows}
    assert licenses["qwen2.5-3b-instruct-q4_k_m"] == "qwen-research"
    assert licenses["llama-3.2-1b-instruct-q4_k_m"] == "llama3.2"
    assert licenses["phi-4-mini-instruct-q4_k_m"] == "mit"


def test_default_is_assembled_and_verified(env, default_path, home):
    assert default_path.startswith(str(home))
    cat = Catalog(Settings(home=home))
    entry = cat.get("default")
    assert cat.is_local(entry)
    # a corrupted file is caught by sha256, not loaded
    marker = cat.path_of(entry).with_name(cat.path_of(entry).name + ".verified")
    assert json.loads(marker.read_text())["sha256"] == entry.sha256


def test_gguf_metadata_of_the_default(default_path):
    facts = gguf_io.summarize(gguf_io.read_metadata(default_path))
    assert facts["architecture"] == "gemma3"
    assert facts["context_length"] == 32768
    assert facts["vocab_size"] == 262144
    assert gguf_io.FILE_TYPES[facts["file_type"]] == "Q4_K_M"


def test_import_rejects_files_that_are_not_gguf(env, tmp_path):
    for content in (b"", b"hello world, not a model" * 10, b"GGUF" + b"\x07\x00\x00\x00" + b"\x00" * 40):
        bad = tmp_path / "bad.gguf"
        bad.write_bytes(content)
        r = cli(env, "models", "import", str(bad))
        assert r.returncode == 2
        assert "bad.gguf" in r.stderr and "Traceback" not in r.stderr
    r = cli(env, "models", "import", str(tmp_path / "missing.gguf"))
    assert r.returncode == 2 and "no such file" in r.stderr


def test_truncated_gguf_is_rejected(default_path, tmp_path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(open(default_path, "rb").read(4096))
    with pytest.raises(InvalidRequest, match="truncated"):
        gguf_io.read_metadata(cut)


def test_import_a_real_gguf_under_a_new_id(env, default_path, home):
    r = cli(env, "models", "import", default_path, "--id", "my-gemma")
    assert r.returncode == 0, r.stderr
    assert "gemma3" in r.stdout and "Q4_K_M" in r.stdout
    shown = json.loads(cli(env, "models", "show", "my-gemma").stdout)
    assert shown["local"] and shown["gguf"]["vocab_size"] == 262144 and shown["context_length"] == 32768
    r = cli(env, "models", "import", default_path, "--id", "../evil")
    assert r.returncode == 2 and "invalid model id" in r.stderr


def test_pull_of_a_hub_model_fails_clearly_offline(env):
    # HF_HUB_OFFLINE=1 (set by the env fixture) keeps a networked developer machine from downloading 491 MB;
    # on CI there is no network either way.
    r = cli(env, "models", "pull", "qwen2.5-0.5b-instruct-q4_k_m")
    assert r.returncode == 2
    assert "offline" in r.stderr and "edgeslm models import" in r.stderr


def test_unknown_ids_name_the_valid_choices(env):
    r = cli(env, "models", "show", "nope")
    assert r.returncode == 2 and "unknown model 'nope'" in r.stderr and "gemma-3-270m-q4_k_m" in r.stderr
    r = cli(env, "serve", "--model", "nope", "--port", "0")
    assert r.returncode == 2 and "unknown model 'nope'" in r.stderr


def test_an_imported_model_is_served_by_its_id(env, default_path, server, client):
    r = cli(env, "models", "import", default_path, "--id", "gemma-copy")
    assert r.returncode == 0, r.stderr
    reply = client.chat.completions.create(model="gemma-copy", messages=[{"role": "user", "content": "Hi"}],
                                           max_tokens=2)
    assert reply.model == "gemma-copy"
    import httpx

    listed = {m["id"]: m["loaded"] for m in httpx.get(server + "/v1/models").json()["data"]}
    assert listed["gemma-copy"] is True and listed["gemma-3-270m-q4_k_m"] is True
