"""The wheel is the product: built from this tree, installed with nothing of the source tree around it,
it serves the embedded model (its catalog, its shipped adapter and its kernel come from the wheel)."""

import os
import subprocess
import sys
import zipfile

import httpx

from benchmarks._server import running_server
from tests.cores import THREADS


def test_the_wheel_installs_and_serves_without_the_source_tree(tmp_path, env):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path / "dist"), root], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("edgeslm-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "edgeslm/models.toml" in names and any(n.startswith("edgeslm/_kernels") for n in names)
    assert any(n.endswith("tools/adapter.gguf") for n in names) and "edgeslm/web/index.html" in names
    assert "edgeslm/assets/names/probe.npz" in names  # S2's names probe (edgeslm/names.py)
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    # the installed copy shadows the source tree: its own dependencies come from this environment,
    # edgeslm itself only from the wheel, run from a folder with no edgeslm sources in it
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    wenv = {**env, "PYTHONPATH": str(target), "EDGESLM_HOME": str(tmp_path / "home")}
    r = subprocess.run([sys.executable, "-c", "import edgeslm, edgeslm._kernels; print(edgeslm.__file__)"],
                       cwd=cwd, env=wenv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith(str(target)), r.stdout + r.stderr
    with running_server(threads=THREADS, env=wenv, cwd=cwd) as base:
        r = httpx.post(base + "/chat/completions", timeout=60,
                       json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4})
        assert r.status_code == 200 and r.json()["model"] == "gemma-3-270m-q4_k_m@tools"
        assert "edgeslm_requests_total" in httpx.get(base.removesuffix("/v1") + "/metrics").text
        assert "<title>edgeslm</title>" in httpx.get(base.removesuffix("/v1") + "/").text
