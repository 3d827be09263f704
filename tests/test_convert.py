"""S4-S6 and `convert run`, in miniature: a synthetic agent (4 task types, injected PII) captured
through the proxy in front of the scripted teacher (the stand-in for a hosted LLM, which cannot be
reached here), then the whole pipeline on the real 270M model with a few training steps.

Accuracy after 2 training steps is not asserted (the benchmark measures it, python -m
benchmarks.convert); what is asserted is that every stage ran on real data and left what the next
stage and `serve` need, that training is deterministic and resumable, and that bad input gets clear errors.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections import Counter

import httpx
import pytest
from openai import OpenAI

from benchmarks import synthetic
from benchmarks._server import app_in_thread, free_port
from benchmarks.teacher import create_teacher
from edgeslm.config import Settings
from edgeslm.pipeline import convert, curate, data, finetune, route
from edgeslm.pipeline.proxy import create_proxy
from edgeslm.store.capture import CaptureStore
from tests.cores import THREADS

CALLS = synthetic.workload(10, seed=11)


@pytest.fixture(scope="module")
def settings(tmp_path_factory, qualified) -> Settings:
    home = tmp_path_factory.mktemp("convert-home")
    st = Settings(home=home, threads=THREADS)
    # S4 judges a model by its newest qualify report on this device, or measures one (~40 s): the
    # session's real report of the same model serves (tests/test_qualify.py checks it)
    from edgeslm.qualify import report

    report.save(qualified[1], home)
    store = CaptureStore(st.capture_db)
    with app_in_thread(create_teacher(CALLS)) as teacher, app_in_thread(create_proxy(teacher, store)) as proxy:
        agent = OpenAI(base_url=proxy + "/v1", api_key="sk-agent", max_retries=0, timeout=30)
        for c in CALLS:
            agent.chat.completions.create(model="teacher", messages=c["messages"], tools=c["tools"])
    store.close()
    # the fakes curation writes are drawn under a salt that is random per home; a fixed one keeps this
    # tiny set's split and request text, and so the router's 8 held-out calls, the same run to run
    st.curated_db.parent.mkdir(parents=True, exist_ok=True)
    st.curated_db.with_name("fakes.salt").write_bytes(b"convert-test-16b")
    return st


@pytest.fixture(scope="module")
def result(settings) -> dict:
    # 2 steps of 1 call, 1 call per task to select and to gate: that every stage runs, not accuracy
    cfg = finetune.TrainConfig(max_steps=2, batch=1, rank=8, alpha=16)
    # a target above 1 sends every task to fine-tuning: the default model's `tools` adapter can get a
    # task's 1 held-out call right zero-shot (run to run, as greedy near-ties fall), and this test is
    # about every stage running, not about that score
    return convert.run(settings, train=cfg, zero_shot_limit=1, eval_limit=1, target=1.01)


def test_convert_runs_every_stage_on_curated_data(settings, result):
    records = curate.records(settings.curated_db)
    truth = [CALLS[r["call_id"] - 1]["task"] for r in records]
    # S3: the 4 task types, each cluster pure
    assert result["clusters"]["k"] == 4
    for t in result["tasks"]:
        members = [truth[i] for i, a in enumerate(result["clusters"]["assignments"]) if a == t["cluster"]]
        assert len(set(members)) == 1, (t["task"], Counter(members))
    # S4: the embedded model is the only one in the store; it qualifies and is chosen for fine-tuning
    row = next(c for c in result["candidates"] if c["model"] == "gemma-3-270m-q4_k_m")
    assert "excluded" not in row and row["verdict"] == "pass"
    assert row["verdict_source"].startswith("qualify report gemma-3-270m-q4_k_m-")  # read, not measured again
    assert all("excluded" in c for c in result["candidates"] if c["model"] != "gemma-3-270m-q4_k_m")
    for t in result["tasks"]:
        assert t["select"]["model"] == "gemma-3-270m-q4_k_m" and t["select"]["finetune"], t["select"]
        # S5 trained on the curated training split only (its hash is recorded with the adapter); no training
        # call uses a value held out for the gate
        members = [i for i, a in enumerate(result["clusters"]["assignments"]) if a == t["cluster"]]
        train, held = data.gate_split(members, [r["example"] for r in records])
        assert sorted(train + held) == sorted(members)
        seen = set().union(*(data.free_values(records[i]["example"]) for i in train))
        assert all(data.free_values(records[i]["example"]) - seen for i in held if data.free_values(records[i]["example"]))
        assert t["training_hash"] == data.training_hash([records[i]["example"] for i in train])
        # 15% of the training split (by content hash) is the dev split whose loss decides when to stop
        fit, dev = data.split(list(range(len(train))), [records[i]["example"] for i in train], held_out=0.15)
        # the captured training calls, plus copies with their stated values swapped (widen.swap_values)
        assert t["training_examples"]["capture"] == len(fit) and t["training_examples"]["augmented"] > 0
        assert t["training"]["steps"] == 2 and t["training"]["examples"] == len(fit) + t["training_examples"]["augmented"]
        assert dev
        assert t["training"]["evals"] and t["training"]["best_step"] in (1, 2)
        # the gate judged it on held-out calls, and the report says why
        assert t["student"]["n"] == min(1, len(held)) and t["why"]
        # the held-out calls it got wrong, with their requests (what the report shows of why)
        assert all(m["request"] for m in t["student"]["misses"])
        assert len(t["student"]["misses"]) == round(t["student"]["n"] * (1 - t["student"]["exact"]))
        assert not any(a.task.endswith("-candidate") for a in _adapters(settings))
    promoted = {t["task"] for t in result["tasks"] if t["promoted"]}
    assert promoted == {a.task for a in _adapters(settings)}
    for a in _adapters(settings):
        assert (a.dir / "peft" / "adapter_model.safetensors").is_file() and a.gguf.is_file()
        assert a.manifest["training"]["training_hash"]
        # trained on top of the shipped tools adapter, landed as one LoRA of both ranks (pipeline/stack.py)
        assert a.manifest["training"]["on"]["task"] == "tools" and a.manifest["rank"] == 16 + 8
        assert a.manifest["sampling"].get("copy_bias")  # with the tools adapter's sampling defaults
    # S6: a router over the clusters, and the report with its charts
    spec = json.loads(settings.router_path.read_text())
    assert [c["cluster"] for c in spec["classes"]] == [t["cluster"] for t in result["tasks"]]
    assert result["router"]["accuracy"] >= 0.9
    names = {p.rsplit("/", 1)[-1] for p in result["files"]}
    assert {"report.json", "report.md", "clusters.png", "accuracy_latency.png", "cost.png"} <= names
    md = (settings.home / "pipeline" / "report" / "report.md").read_text()
    assert all(t["task"] in md for t in result["tasks"]) and "Stage wall times" in md
    # no raw personal value reached the curated store training reads
    curated = json.dumps([r["example"] for r in records])
    assert not [v for c in CALLS for _, v in c["pii"] if json.dumps(v)[1:-1] in curated]


def _entry(settings):
    from edgeslm.store.registry import Catalog

    return Catalog(settings).get("default")


def _adapters(settings):
    from edgeslm.store.adapters import AdapterStore

    return [a for a in AdapterStore(settings.adapters_dir).all() if a.manifest.get("source") != "package"]


def test_a_second_run_without_drift_retrains_nothing(settings, result):
    again = convert.run(settings)
    assert again["drift"]["retrain"] is False and again["drift"]["n"] == 0
    assert "finetune" not in again["stages"]
    # the default adapter's sampling changes (a new edgeslm ships another manifest): a kept student is gated
    # again at it, without training; it takes it where it passes, else it stays at its own
    from edgeslm.pipeline import stack
    from edgeslm.store.adapters import AdapterStore

    store = AdapterStore(settings.adapters_dir)
    tools = store.get("gemma-3-270m-q4_k_m", "tools")
    shipped = (tools.dir / "manifest.json").read_text()
    (tools.dir / "manifest.json").write_text(json.dumps(
        {**tools.manifest, "sampling": {**tools.manifest["sampling"], "copy_bias": 1.0}}))
    try:
        third = convert.run(settings, train=finetune.TrainConfig(max_steps=2, batch=1, rank=8, alpha=16),
                            zero_shot_limit=1, eval_limit=1, target=1.01, force=True)
        want = stack.sampling(store, _entry(settings))
    finally:
        (tools.dir / "manifest.json").write_text(shipped)
    before = {t["task"]: t for t in again["tasks"]}
    if all(t["promoted"] for t in before.values()):
        assert "finetune" not in third["stages"]  # nothing trained again
    for t in third["tasks"]:
        assert t["promoted"] == before[t["task"]]["promoted"]
        if t["promoted"]:
            got = store.get("gemma-3-270m-q4_k_m", t["task"]).manifest["sampling"]
            assert got == want or "kept at its own sampling" in t["why"], (got, t["why"])
    # off-topic calls are what the router is unsure about: that is the drift signal
    off = [{"messages": [{"role": "user", "content": t}]} for t in
           ["Write a haiku about autumn", "Summarise the French revolution", "What is a monad?", "Sing me a song"]]
    assert route.drift(settings.router_path, off)["unsure"] >= 0.5


@pytest.fixture(scope="module")
def encoded(settings):
    """(the base GGUF, 6 curated calls encoded for training)."""
    from edgeslm.engine import Engine

    if not settings.curated_db.is_file():
        curate.curate(settings.capture_db, settings.curated_db)
    records = curate.records(settings.curated_db)[:6]
    engine = Engine(settings)
    try:
        worker = engine.worker(None)
        return engine.catalog.ensure_local(worker.entry), [finetune.encode(worker, r["example"], settings) for r in records]
    finally:
        engine.close()


def test_training_is_deterministic_and_resumes_from_its_checkpoint(encoded, tmp_path):
    from safetensors.numpy import load_file

    base, pairs = encoded
    cfg = finetune.TrainConfig(max_steps=2, batch=1, rank=4, alpha=8, save_every=1, seed=5)
    clean = finetune.train(base, pairs, tmp_path / "clean", cfg)

    def stop_after_two(step, total, loss):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune.train(base, pairs, tmp_path / "resumed", cfg, stop_after_two)
    assert (tmp_path / "resumed" / finetune.CHECKPOINT / "state.json").is_file()
    resumed = finetune.train(base, pairs, tmp_path / "resumed", cfg)
    assert resumed["resumed_from"] == 1 and resumed["losses"][:1] == clean["losses"][:1]
    a = load_file(str(tmp_path / "clean" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(abs(a[k] - b[k]).max() < 1e-5 for k in a)
    assert not (tmp_path / "resumed" / finetune.CHECKPOINT).exists()
    # a finished run is not redone for the same data and settings, and is for others
    assert finetune.train(base, pairs, tmp_path / "clean", cfg) == clean  # a rerun would have its own times
    other = finetune.train(base, pairs, tmp_path / "clean", dataclasses.replace(cfg, seed=6, max_steps=1))
    assert other["config"]["seed"] == 6 and other["steps"] == 1


def test_the_tokens_that_decide_a_calls_shape_are_the_ones_after_a_value():
    # a transfer's envelope as the grammar splits it: the closing quote and comma come as one piece
    pieces = [b"<tool_call>", b"\n", b'{"name": "', b"send_money", b'", "arguments": {"', b"iban", b'": "', b"GB32",
              b'",', b' "amount": ', b"3425", b",", b' "currency": "', b"USD", b'"}}', b"\n", b"</tool_call>"]
    free = [True, False, False, True, False, False, False, True, True, False, True, True, False, True, True, False, False]
    shape = finetune.shape_tokens(pieces, free)
    assert [p for p, s in zip(pieces, shape, strict=True) if s] == [b'",', b",", b'"}}']
    # a comma or brace inside a string value decides nothing; a second call's first chosen piece does
    pieces = [b'{"name": "', b"add_to_cart", b'", "arguments": {"item": "', b"eggs, {large}", b'",', b' "quantity": ',
              b"2", b"}}", b"\n", b'{"name": "', b"add_to_cart", b'"', b"}}"]
    shape = finetune.shape_tokens(pieces, [i not in (0, 2, 5, 9) for i in range(len(pieces))])
    assert [p for p, s in zip(pieces, shape, strict=True) if s] == [b'",', b"}}", b"\n", b"}}"]


def test_weighted_losses_agree_with_and_without_the_prefixs_gradient(encoded, settings):
    import torch

    from edgeslm.pipeline import loss

    base, pairs = encoded
    model = finetune._base(base, settings.cache)
    weighted = [(p, a, [4 if f and i % 3 == 0 else int(f) for i, f in enumerate(free)]) for p, a, free in pairs[:3]]
    with torch.no_grad():
        shared = float(loss.batch_loss(model, loss.collate(weighted)))
        frozen = float(loss.batch_loss(model, loss.collate(weighted), prefix_grad=False))
        each = loss.each_loss(model, weighted)
        plain = float(loss.batch_loss(model, loss.collate(pairs[:3])))
    assert abs(shared - each) < 1e-3 * max(1.0, each) and abs(shared - frozen) < 1e-5
    assert abs(shared - plain) > 1e-4  # the weights count
    # with gradients on, the frozen prefix gets none and the answer rows still do
    rows = loss.collate(weighted)
    peft_model = __import__("peft").get_peft_model(model, __import__("peft").LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"]))
    try:
        loss.batch_loss(peft_model, rows, prefix_grad=False).backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in peft_model.parameters() if p.requires_grad)
    finally:
        peft_model.unload()


def test_full_fine_tuning_lands_as_a_lora_and_gives_the_base_back(encoded, settings, tmp_path):
    import json as _json

    import torch
    from safetensors.numpy import load_file

    from edgeslm.store.lora_gguf import convert as to_gguf

    base, pairs = encoded
    name = "model.layers.3.self_attn.o_proj.weight"
    before = finetune._base(base, settings.cache).get_parameter(name).detach().clone()
    # one projection (12M weights): its checkpoints (weights and Adam's moments) stay small; the prompt
    # without gradients, as the tools recipe trains
    cfg = finetune.TrainConfig(max_steps=2, batch=1, rank=4, full=True, lr=1e-4, save_every=1, seed=5, modules=("o_proj",),
                               prompt_grad=False)

    def stop_at_two(step, total, loss):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # a run stopped part way gives the cached base back too
        finetune.train(base, pairs, tmp_path / "full", cfg, stop_at_two)
    assert torch.equal(finetune._base(base, settings.cache).get_parameter(name), before)
    assert (tmp_path / "full" / finetune.CHECKPOINT / "weights.safetensors").is_file()
    rec = finetune.train(base, pairs, tmp_path / "full", cfg)
    assert rec["resumed_from"] == 1 and rec["config"]["full"] and 0 < rec["kept"] <= 1
    assert torch.equal(finetune._base(base, settings.cache).get_parameter(name), before)
    assert not any(p.requires_grad for p in finetune._base(base, settings.cache).parameters())
    # an ordinary PEFT LoRA of rank 4 on the target module of every layer, nonzero where training moved it
    assert _json.loads((tmp_path / "full" / "adapter_config.json").read_text())["r"] == 4
    tensors = load_file(str(tmp_path / "full" / "adapter_model.safetensors"))
    assert len(tensors) == 2 * 18 and all(t.shape[0] == 4 or t.shape[1] == 4 for t in tensors.values())
    assert max(abs(t).max() for t in tensors.values()) > 0
    assert to_gguf(tmp_path / "full", base, tmp_path / "full.gguf", dtype="f16").rank == 4
    # a LoRA run's fingerprint is what it was before `full` existed: its checkpoints stay valid
    lora = finetune.train(base, pairs[:1], tmp_path / "lora", finetune.TrainConfig(max_steps=1, batch=1, rank=4, alpha=8,
                                                                                     prompt_grad=False))
    assert "full" not in lora["config"]


def test_the_low_rank_cut_of_a_change_is_exact_at_its_rank():
    import torch

    from edgeslm.pipeline import extract

    g = torch.Generator().manual_seed(0)
    delta = torch.randn(12, 3, generator=g) @ torch.randn(3, 20, generator=g)  # rank 3
    b, a, kept = extract.low_rank(delta, 4)
    assert b.shape == (12, 4) and a.shape == (4, 20) and kept == pytest.approx(1.0)
    assert torch.allclose(b @ a, delta, atol=1e-4)
    b, a, kept = extract.low_rank(delta, 1)
    assert b.shape == (12, 1) and 0 < kept < 1
    assert extract.low_rank(torch.zeros(4, 5), 2)[2] == 1.0


def test_a_dev_loss_within_the_tolerance_keeps_the_more_trained_state():
    from edgeslm.pipeline.finetune import no_worse

    # schedule_delivery's evaluations of session 31: 0.0151 at step 8, 0.0289 at 16, 0.0197 at 24
    assert not no_worse(0.0289, 0.0151, 0.5) and no_worse(0.0197, 0.0151, 0.5)
    assert no_worse(0.01, 0.0151, 0.0) and not no_worse(0.0197, 0.0151, 0.0) and not no_worse(0.0151, 0.0151, 0.0)


def test_a_finished_run_is_reused_only_for_the_same_examples():
    from edgeslm.pipeline import checkpoint

    one, other = [([2, 7], [9, 1], [True, True])], [([2, 7], [9, 4], [True, True])]  # same count, other answer
    now = {"config": {"rank": 8}, "n": 1, "pairs": checkpoint.pairs_hash(one)}
    assert checkpoint.matches({**now, "losses": [0.5]}, now, subset=True)  # a finished record
    assert not checkpoint.matches({**now, "pairs": checkpoint.pairs_hash(other)}, now)
    assert not checkpoint.matches({**now, "n": 2}, now) and not checkpoint.matches({**now, "extra": 1}, now)
    assert checkpoint.matches({"config": {"rank": 8}, "n": 1}, now)  # written before "pairs" existed: kept


def _cli(settings, *args, timeout=300):
    env = {**__import__("os").environ, "EDGESLM_HOME": str(settings.home)}
    return subprocess.run([sys.executable, "-m", "edgeslm", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def test_unknown_cluster_is_a_clear_error(settings, result):
    for args in (["convert", "show", "nope"], ["finetune", "nope"]):
        r = _cli(settings, *args)
        assert r.returncode == 2 and "unknown cluster 'nope'" in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert result["tasks"][0]["task"] in r.stderr  # names the valid choices
    r = _cli(settings, "convert", "show", result["tasks"][0]["task"])
    assert r.returncode == 0 and json.loads(r.stdout)["task"] == result["tasks"][0]["task"]


def test_empty_or_corrupt_stores_are_clear_errors(tmp_path):
    st = Settings(home=tmp_path / "empty", threads=THREADS)
    with pytest.raises(Exception) as e:
        convert.run(st)
    assert "no capture store" in str(e.value)
    CaptureStore(st.capture_db).close()
    r = _cli(st, "convert", "run")
    assert r.returncode == 2 and "holds no calls yet" in r.stderr and "Traceback" not in r.stderr
    st.capture_db.write_bytes(b"this is not a database" * 100)
    r = _cli(st, "convert", "run")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    st.curated_db.parent.mkdir(parents=True, exist_ok=True)
    st.curated_db.write_bytes(b"junk" * 100)
    with pytest.raises(Exception) as e:
        curate.records(st.curated_db)
    assert "damaged" in str(e.value)


def test_model_auto_routes_to_the_adapter_or_the_teacher(settings, result, tmp_path):
    """serve, model "auto": a promoted task's request is answered locally under its adapter; a task
    with no promoted adapter, or an unsure route, goes to the teacher; a dead teacher is a 502."""
    from benchmarks._lora import write_peft
    from edgeslm.engine import Engine
    from edgeslm.serving.app import create_app
    from edgeslm.store.adapters import AdapterStore

    # this test is about where routes go; the miniature router (10 varied calls per task) is less
    # sure than a real one, so its threshold is lowered
    st = Settings(home=settings.home, threads=THREADS, capture=True, route_threshold=0.5)
    records = curate.records(st.curated_db)
    spec = json.loads(st.router_path.read_text())
    # promote one class to a (random-weight) adapter, the others to nothing, whatever the gate said
    entry_id, weather = "gemma-3-270m-q4_k_m", next(t for t in result["tasks"] if t["label"] == "get_weather")
    store = AdapterStore(st.adapters_dir)
    if "routed" not in store.tasks(entry_id):
        from edgeslm.store.registry import Catalog

        cat = Catalog(st)
        e = cat.get(entry_id)
        store.add(entry_id, e.sha256, cat.ensure_local(e), "routed", write_peft(tmp_path / "p", rank=2, scale=0.001))
    for c in spec["classes"]:
        c.update(promoted=c["cluster"] == weather["cluster"], base=entry_id,
                 task="routed" if c["cluster"] == weather["cluster"] else None, reason="test: not promoted")
    route.save(spec, st.router_path)
    weather_call = next(c for c in synthetic.workload(3, seed=99) if c["task"] == "weather")
    email_call = next(c for c in synthetic.workload(3, seed=99) if c["task"] == "email")
    with app_in_thread(create_teacher([weather_call, email_call])) as teacher:
        engine = Engine(st.model_copy(update={"upstream": teacher}))
        try:
            with app_in_thread(create_app(engine)) as base:
                client = OpenAI(base_url=base + "/v1", api_key="x", max_retries=0, timeout=120)
                local = client.chat.completions.with_raw_response.create(
                    model="auto", messages=weather_call["messages"], tools=weather_call["tools"], max_tokens=60)
                assert local.headers["x-edgeslm-route"].startswith(f"{entry_id}@routed"), local.headers
                assert local.parse().model == f"{entry_id}@routed"

                far = client.chat.completions.with_raw_response.create(
                    model="auto", messages=email_call["messages"], tools=email_call["tools"])
                assert far.headers["x-edgeslm-route"].startswith("teacher"), far.headers
                call = far.parse().choices[0].message.tool_calls[0]
                assert json.loads(call.function.arguments) == email_call["call"]["arguments"]
                stream = client.chat.completions.create(model="auto", messages=email_call["messages"],
                                                        tools=email_call["tools"], stream=True)
                assert "".join(tc.function.arguments or "" for ch in stream if ch.choices
                               for tc in ch.choices[0].delta.tool_calls or [])
        finally:
            engine.close()
    captured = list(CaptureStore(st.capture_db).calls())[-3:]
    assert [c["adapter"] for c in captured] == ["routed", None, None]
    dead = Engine(st.model_copy(update={"upstream": f"http://127.0.0.1:{free_port()}", "capture": False}))
    try:
        with app_in_thread(create_app(dead)) as base:
            r = httpx.post(base + "/v1/chat/completions", timeout=60,
                           json={"model": "auto", "messages": email_call["messages"], "tools": email_call["tools"]})
            assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_unreachable"
            assert httpx.get(base + "/health", timeout=10).status_code == 200  # still serving
    finally:
        dead.close()
    assert len(records) == len(curate.records(st.curated_db))


@pytest.mark.parametrize("surrogates", [True, False])
def test_routed_answers_get_the_redacted_values_back(surrogates):
    """An adapter trained on curated calls sees requests as curation wrote them (realistic fakes; the
    placeholder mode is kept for other callers); the values go back into its answer, JSON-escaped in tool
    arguments, also when a stream splits a stand-in across fragments."""
    from edgeslm.privacy import Redactor, Restorer, find

    redact = Redactor(surrogates=surrogates)
    text = redact('File the mail from "j.o\'neil"+x@example.com, call +1 415-555-0199')
    spans = find(text)
    # the fake may share the original's example domain; what must go is the address and the number
    assert {text[a:b] for a, b, _ in spans}.isdisjoint({"x@example.com", "+1 415-555-0199"}), text
    assert "+x@example.com" not in text and "415-555-0199" not in text, text
    mail, phone = (text[a:b] for a, b, _ in spans) if surrogates else ("<EMAIL_1>", "<PHONE_1>")
    assert mail in text and phone in text and ("<" in text) != surrogates, text
    restore = Restorer(redact)
    args = json.dumps({"sender": mail, "note": phone, "also": f"cc {mail}"})
    for size in (1, 3, 5, 8):
        pieces = [args[i : i + size] for i in range(0, len(args), size)]
        streamed = "".join(restore.feed("a", p, in_json=True) for p in pieces) + restore.flush("a", in_json=True)
        assert streamed == restore(args, in_json=True)
        got = json.loads(streamed)
        assert got["note"] == "+1 415-555-0199" and got["sender"] == "x@example.com"
        assert got["also"] == "cc " + got["sender"]
