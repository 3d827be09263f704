"""The adapter store and `edgeslm adapters import|list|show|rm`: PEFT LoRA -> GGUF conversion, checked
by llama.cpp itself, and every refusal. The PEFT directories are written here with random LoRA
weights in PEFT's own layout (no torch/peft install needed to import); parity with a trained adapter
against transformers+peft is issue 5's remaining test."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks._lora import last_logits, write_peft
from edgeslm.config import Settings
from edgeslm.store.gguf_io import read_header
from edgeslm.store.registry import Catalog


def cli(env, *args):
    return subprocess.run([sys.executable, "-m", "edgeslm", *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def base_path(home):
    cat = Catalog(Settings(home=home))
    return cat.ensure_local(cat.get("default"))


def test_import_converts_checks_and_lists(env, home, base_path, tmp_path):
    peft = write_peft(tmp_path / "peft")
    r = cli(env, "adapters", "import", str(peft), "--base", "default", "--task", "sql-writer")
    assert r.returncode == 0, r.stderr
    assert "rank 4, alpha 8, 36 tensors (q_proj, v_proj)" in r.stdout
    shown = json.loads(cli(env, "adapters", "show", "default", "sql-writer").stdout)
    assert shown["base_id"] == "gemma-3-270m-q4_k_m" and shown["architecture"] == "gemma3"
    assert shown["base_sha256"] == Catalog(Settings(home=home)).get("default").sha256
    meta, tensors = read_header(shown["gguf"])
    assert meta["general.type"] == "adapter" and meta["adapter.type"] == "lora" and meta["adapter.lora.alpha"] == 8
    names = {t.name for t in tensors}
    assert "blk.0.attn_q.weight.lora_a" in names and "blk.17.attn_v.weight.lora_b" in names and len(names) == 72
    assert (Path(shown["dir"]) / "peft" / "adapter_config.json").is_file()
    rows = json.loads(cli(env, "adapters", "list", "--json").stdout)
    assert any(r["base"] == "gemma-3-270m-q4_k_m" and r["task"] == "sql-writer" for r in rows)

    # llama.cpp applies it: the logits move; without it they are the base's, exactly
    base = last_logits(base_path, "SELECT name FROM")
    assert np.abs(last_logits(base_path, "SELECT name FROM", [(Path(shown["gguf"]), 1.0)]) - base).max() > 1e-2
    assert np.array_equal(last_logits(base_path, "SELECT name FROM"), base)

    r = cli(env, "adapters", "import", str(peft), "--base", "default", "--task", "sql-writer")
    assert r.returncode == 2 and "already has an adapter 'sql-writer'" in r.stderr
    r = cli(env, "adapters", "rm", "default", "sql-writer")
    assert r.returncode == 0 and not Path(shown["dir"]).exists()


@pytest.mark.parametrize("case,needle", [
    ("task", "invalid adapter task name '../x'"),
    ("ia3", "PEFT type 'IA3' is not supported; only LORA is"),
    ("shape", "shapes of blk.0.attn_q.weight do not fit the base"),
    ("module", "has no tensor in the gemma3 base"),
    ("notpeft", "not a PEFT adapter directory"),
    ("base", "unknown model 'nope'"),
])
def test_import_refusals_are_clear_and_leave_nothing(env, home, tmp_path, case, needle):
    peft = tmp_path / "p"
    task, base = "t1", "default"
    if case == "task":
        write_peft(peft)
        task = "../x"
    elif case == "ia3":
        write_peft(peft, peft_type="IA3")
    elif case == "shape":
        write_peft(peft, in_dim=896)  # a Qwen2.5-0.5B-sized adapter on Gemma
    elif case == "module":
        write_peft(peft, layers=[40])
    elif case == "notpeft":
        peft.mkdir()
    else:
        write_peft(peft)
        base = "nope"
    r = cli(env, "adapters", "import", str(peft), "--base", base, "--task", task)
    assert r.returncode == 2, r.stdout
    assert needle in r.stderr and "Traceback" not in r.stderr
    d = home / "adapters" / "gemma-3-270m-q4_k_m"
    assert not (d / "t1").exists() and not list(d.glob(".*staging")) if d.exists() else True


# ---- serving: per-request selection and isolation -------------------------------------------------------

@pytest.fixture(scope="module")
def two_tasks(env, tmp_path_factory):
    for task, seed in (("task-a", 11), ("task-b", 22)):
        peft = write_peft(tmp_path_factory.mktemp(task), rank=8, modules=("q_proj", "k_proj", "v_proj"), seed=seed)
        r = cli(env, "adapters", "import", str(peft), "--base", "default", "--task", task)
        assert r.returncode == 0, r.stderr
    return "task-a", "task-b"


def _ask(client, model, **extra):
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "List three colors:"}],
                                       max_tokens=16, temperature=0, **extra)
    return r.model, r.choices[0].message.content


def test_adapters_are_listed_and_selected_per_request_without_restart(server, client, two_tasks):
    ids = {m.id for m in client.models.list().data}
    assert {"gemma-3-270m-q4_k_m@task-a", "gemma-3-270m-q4_k_m@task-b"} <= ids  # imported after start
    # every request below follows one with another adapter set, so each evaluates its whole prompt
    # (llama.cpp's logits depend slightly on batch shape, so cold and prefix-cached runs may differ)
    model, text_a = _ask(client, "default@task-a")
    assert model == "gemma-3-270m-q4_k_m@task-a"
    _, base = _ask(client, "default")
    model, via_body = _ask(client, "default", extra_body={"adapter": "task-a"})
    assert model == "gemma-3-270m-q4_k_m@task-a" and via_body == text_a
    _, text_b = _ask(client, "default@task-b")
    assert len({text_a, text_b, base}) == 3  # each adapter really changes the output


def test_interleaved_adapters_do_not_contaminate_each_other(client, two_tasks):
    alone = {m: _ask(client, m)[1] for m in ("default@task-a", "default@task-b", "default")}  # each after a switch
    order = ["default@task-a", "default@task-b", "default", "default@task-a", "default", "default@task-b"]
    for m in order:
        assert _ask(client, m)[1] == alone[m], m


def test_adapter_errors_over_http(server, client, two_tasks):
    import httpx

    def post(body):
        return httpx.post(server + "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}],
                                                                 "max_tokens": 2, **body}, timeout=60)

    r = post({"model": "default@nope"})
    assert r.status_code == 404 and "no adapter 'nope'" in r.json()["error"]["message"]
    r = post({"model": "default@task-a", "adapter": "task-b"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "adapter"
    r = post({"model": "default@../../etc"})
    assert r.status_code == 400 and "invalid adapter task name" in r.json()["error"]["message"]
    assert _ask(client, "default")[0] == "gemma-3-270m-q4_k_m"  # and the server keeps serving
