"""The adapter store and `edgeslm adapters import|list|show|rm`: PEFT LoRA -> GGUF conversion, checked
by llama.cpp itself, and every refusal. The PEFT directories are written here with random LoRA
weights in PEFT's own layout (no torch/peft install needed to import); parity with a trained adapter
against transformers+peft is issue 5's remaining test."""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks._lora import last_logits, write_peft
from edgeslm.config import Settings
from edgeslm.store.gguf_io import read_header
from edgeslm.store.registry import Catalog
from tests.cores import THREADS


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
    ("corrupt", "unreadable safetensors"),
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
    elif case == "corrupt":
        write_peft(peft)
        (peft / "adapter_model.safetensors").write_bytes(b"\x00garbage" * 10)
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
    model, _ = _ask(client, "default@task-a")  # first use: loads the adapter and fills a slot's cache
    assert model == "gemma-3-270m-q4_k_m@task-a"
    _, text_a = _ask(client, "default@task-a")  # compared warm with warm (see _alone)
    _, base = _ask(client, "default@none")
    model, via_body = _ask(client, "default", extra_body={"adapter": "task-a"})
    assert model == "gemma-3-270m-q4_k_m@task-a" and via_body == text_a
    _, text_b = _ask(client, "default@task-b")
    assert len({text_a, text_b, base}) == 3  # each adapter really changes the output


MODELS = ("default@task-a", "default@task-b", "default@none")  # @none: the bare base, not its default adapter


def _alone(client) -> dict:
    """Each model's answer with its slot's prefix cache warm, as every later request will find it
    (llama.cpp's logits depend slightly on batch shape, so a cold prompt and a cached one may differ)."""
    for m in MODELS:
        _ask(client, m)
    return {m: _ask(client, m)[1] for m in MODELS}


def test_interleaved_adapters_do_not_contaminate_each_other(client, two_tasks):
    alone = _alone(client)
    order = ["default@task-a", "default@task-b", "default@none", "default@task-a", "default@none", "default@task-b"]
    for m in order:
        assert _ask(client, m)[1] == alone[m], m


def test_concurrent_requests_on_different_adapters_run_together(client, two_tasks):
    got, spans = {}, {}

    def stream(m):
        t0, first, text, model = time.monotonic(), None, "", None
        for chunk in client.chat.completions.create(
                model=m, messages=[{"role": "user", "content": "List three colors:"}], max_tokens=24,
                temperature=0, stream=True):
            model = chunk.model
            if chunk.choices and chunk.choices[0].delta.content:
                first = first or time.monotonic()
                text += chunk.choices[0].delta.content
        got[m], spans[m] = (model, text), (t0, first, time.monotonic())

    threads = [threading.Thread(target=stream, args=(m,)) for m in MODELS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert {m: got[m][0] for m in MODELS} == {m: m.replace("default", "gemma-3-270m-q4_k_m").replace("@none", "")
                                              for m in MODELS}
    assert len({text for _, text in got.values()}) == 3  # each under its own adapter
    # really at the same time: every request streamed its first token before any of them ended
    assert max(first for _, first, _ in spans.values()) < min(end for _, _, end in spans.values())


def test_another_slots_adapter_never_reaches_this_slots_logits(base_path, tmp_path):
    """Slot 0 decodes under adapter A while slot 1 decodes under B, the base, or A, with a switch
    before every step (as the scheduler interleaves them). The KV layout is the same in every pass, so
    slot 0's logits must be bitwise identical each time: nothing of slot 1's adapter leaks in.
    (Against slot 0 decoding with nothing beside it they may differ slightly: llama.cpp's attention
    sums depend on where in the shared KV cache a sequence's cells sit.)"""
    from edgeslm.backends import open_backend
    from edgeslm.store.lora_gguf import convert

    loras = []
    for seed in (1, 2):
        d = write_peft(tmp_path / str(seed), seed=seed)
        convert(d, base_path, d / "a.gguf")
        loras.append([(d / "a.gguf", 1.0)])
    a, b = loras
    backend = open_backend(base_path, "gguf", n_ctx=512, n_threads=THREADS, n_seq=2)
    prompt = backend.tokenize("List three colors:", add_bos=True)

    def interleave(other):
        backend.reset()
        mine, theirs = [], []
        for step in range(8):
            for seq, adapters, out in ((0, a, mine), (1, other, theirs)):
                backend.set_adapters(adapters)
                if step == 0:
                    backend.prefill(prompt, seq)
                else:
                    backend.decode([int(out[-1].argmax())], seq)
                out.append(np.array(backend.logits(seq), copy=True))
        return mine, theirs

    with_b, b_side = interleave(b)
    with_base, base_side = interleave([])
    with_a, _ = interleave(a)
    backend.close()
    assert all(np.array_equal(x, y) and np.array_equal(x, z) for x, y, z in zip(with_b, with_base, with_a))
    assert max(np.abs(x - y).max() for x, y in zip(b_side, base_side)) > 0.1  # while B does act on its own slot


def test_adapter_errors_over_http(server, client, two_tasks, env, tmp_path):
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
    # a stored adapter whose file was damaged after import
    r = cli(env, "adapters", "import", str(write_peft(tmp_path / "p3", seed=5)), "--base", "default", "--task", "broken")
    assert r.returncode == 0, r.stderr
    gguf = Path(json.loads(cli(env, "adapters", "show", "default", "broken").stdout)["gguf"])
    gguf.write_bytes(gguf.read_bytes()[:64])
    r = post({"model": "default@broken"})
    assert r.status_code == 500 and r.json()["error"]["code"] == "adapter_corrupt", r.text  # the server's fault
    assert "remove it and import it again" in r.json()["error"]["message"]
    assert _ask(client, "default")[0] == "gemma-3-270m-q4_k_m@tools"  # and the server keeps serving


def test_an_adapter_replaced_while_serving_answers_with_its_new_weights(server, client, env, tmp_path):
    """`convert run` and `finetune` replace an adapter at the same path: the next request must decode
    under the new weights, and no slot cache computed under the old ones may be reused."""
    for task, seed in (("swap", 33), ("swap-ref", 44)):
        peft = write_peft(tmp_path / task, rank=8, modules=("q_proj", "k_proj", "v_proj"), seed=seed)
        assert cli(env, "adapters", "import", str(peft), "--base", "default", "--task", task).returncode == 0
    _, old = _ask(client, "default@swap")
    _, old_again = _ask(client, "default@swap")  # warm: its slot cache holds this prompt under the old weights
    _, ref = _ask(client, "default@swap-ref")
    assert old == old_again and old != ref
    assert cli(env, "adapters", "rm", "default", "swap").returncode == 0
    peft = write_peft(tmp_path / "swap-new", rank=8, modules=("q_proj", "k_proj", "v_proj"), seed=44)
    assert cli(env, "adapters", "import", str(peft), "--base", "default", "--task", "swap").returncode == 0
    model, new = _ask(client, "default@swap")
    assert model == "gemma-3-270m-q4_k_m@swap" and new == ref
