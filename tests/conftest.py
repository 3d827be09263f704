"""Fixtures: a private EDGESLM_HOME, and one real `edgeslm serve` on a free port with the embedded
model, reached through the official openai client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from openai import OpenAI

from benchmarks._server import running_server
from tests import families
from tests.cores import THREADS


# `make test` runs two pytest-xdist workers. Each module runs whole on one worker (its module fixtures,
# a server or a trained adapter, are made once); the modules that read the session's qualify report
# share a worker, and so the home it was saved in. The slowest modules (their share of a run on this
# project's machines) are handed out first, so that neither worker is left with a long one at the end.
SLOW_FIRST = ["test_convert", "test_qualify", "test_quantize", "test_adapter_parity", "test_hostile_matrix",
              "test_schema_suite", "test_everyday", "test_adapters", "test_export", "test_recipe", "test_prefix_disk",
              "test_control_tokens", "test_families", "test_kvbook", "test_fuzz", "test_cluster", "test_agents"]
SAME_WORKER = {"test_convert": "qualified", "test_qualify": "qualified"}


def _module(nodeid: str) -> str:
    return Path(nodeid.split("::")[0]).stem


def pytest_collection_modifyitems(config, items):
    rank = {m: i for i, m in enumerate(SLOW_FIRST)}
    items.sort(key=lambda it: rank.get(_module(it.nodeid), len(rank)))  # stable: a module's tests keep their order


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Work units of whole modules (SAME_WORKER joins some), in collection order."""
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return SAME_WORKER.get(_module(nodeid), _module(nodeid))

    config.option.loadscopereorder = False  # keep SLOW_FIRST's order, not the most tests first
    return ByModule(config, log)


def _shared(tmp_path_factory) -> Path:
    """A folder every xdist worker of this run sees (the session's own temp folder without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session", autouse=True)
def cache(tmp_path_factory):
    """One EDGESLM_CACHE_DIR for the whole run, every worker, home and subprocess: what edgeslm can
    rebuild (the dequantized checkpoint, ~45 s; the served copy, ~11 s) is built once, by whichever
    process needs it first (store/dequantized.py and store/folded.py lock it); tests/test_dequantized.py
    checks the cache."""
    path = _shared(tmp_path_factory) / "cache"
    path.mkdir(exist_ok=True)
    before = os.environ.get("EDGESLM_CACHE_DIR")
    os.environ["EDGESLM_CACHE_DIR"] = str(path)
    yield path
    if before is None:
        os.environ.pop("EDGESLM_CACHE_DIR", None)
    else:
        os.environ["EDGESLM_CACHE_DIR"] = before


@pytest.fixture(scope="session")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("edgeslm-home")


@pytest.fixture(scope="session")
def env(home) -> dict:
    return {**os.environ, "EDGESLM_HOME": str(home), "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="session")
def qualified(env, tmp_path_factory) -> tuple[Path, dict]:
    """(the folder it was written to, the report) of one real `edgeslm qualify default` of the embedded
    model (3 runs, n_ctx 4096, background-agent), saved in the session home too: tests/test_qualify.py
    checks it, and S4 in tests/test_convert.py reads its verdict instead of measuring the model again."""
    out = tmp_path_factory.mktemp("qualify-out")
    r = subprocess.run([sys.executable, "-m", "edgeslm", "qualify", "default", "--runs", "3", "--n-ctx", "4096",
                        "--threads", str(THREADS), "--json", "--out", str(out), "--profile", "background-agent"],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode in (0, 1), r.stderr[-3000:]  # 1: a verdict other than pass
    return out, json.loads(r.stdout)


@pytest.fixture(scope="session")
def server(env):
    """Base URL (without /v1) of a real server on a free loopback port."""
    with running_server(threads=THREADS, env=env) as base:
        yield base.removesuffix("/v1")


@pytest.fixture(scope="session")
def client(server) -> OpenAI:
    return OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0, timeout=120)


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Get the current time in a time zone",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
    },
}


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """The catalog families' tiny models (tests/families.py), imported into a private store once per
    session; {family: model id} (gemma3: the embedded model)."""
    home = tmp_path_factory.mktemp("families-home")
    env = {**os.environ, "EDGESLM_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    from edgeslm.config import Settings
    from edgeslm.store.registry import Catalog

    ids = {}
    embedded = None
    cat = Catalog(Settings(home=home))
    for f in families.FAMILIES:
        if f.vocab is None:
            ids[f.family] = "default@none"
            continue
        if f.vocab == families.EMBEDDED and embedded is None:
            embedded = cat.ensure_local(cat.get("default"))
        path = families.build_tiny(f, home / f"tiny-{f.family}.gguf", embedded=embedded)
        if not ids or all(v == "default@none" for v in ids.values()):  # the command itself, once
            subprocess.run([sys.executable, "-m", "edgeslm", "models", "import", str(path), "--id", f"tiny-{f.family}"],
                           env=env, check=True, capture_output=True)
            cat = Catalog(Settings(home=home))
        else:  # the rest as the command does it, in this process (a start-up each cost ~7 s)
            cat.import_gguf(path, f"tiny-{f.family}")
        ids[f.family] = f"tiny-{f.family}"
    return home, env, ids
