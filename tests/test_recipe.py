"""The shipped "tools" adapter and its recipe: the file in the package is the one its manifest describes,
llama.cpp loads it, it lands in the store on first use and serves `default`; the training data it records is
what the recipe builds now (when the BFCL data is present); and a short run of the recipe's trainer is
deterministic (same seed, same data: the same weights). Issue 23's data: no dev or val function is trained
on, Seal-Tools answers are checked against their schemas and the request (drops counted), names are masked
consistently, and irrelevance and When2Call examples are made as the recipe says."""

from __future__ import annotations

import hashlib
import json
import random
import re

import jsonschema
import pytest

from edgeslm.pipeline import agentdata, augment, bfcl, recipe, sealtools
from tests.cores import THREADS

SHIPPED = recipe.ASSETS / recipe.BASE / recipe.TASK


@pytest.fixture(scope="module")
def manifest() -> dict:
    assert (SHIPPED / "manifest.json").is_file(), "the tools adapter is not in the package"
    return json.loads((SHIPPED / "manifest.json").read_text())


def test_shipped_adapter_matches_its_manifest(manifest):
    gguf = (SHIPPED / "adapter.gguf").read_bytes()
    assert len(gguf) <= 16 * 2**20
    assert hashlib.sha256(gguf).hexdigest() == manifest["adapter_sha256"]
    assert manifest["base_id"] == recipe.BASE and manifest["task"] == "tools"
    assert manifest["recipe"]["seed"] == manifest["config"]["seed"]
    t = manifest["training"]
    assert t["losses"] and t["loss_last"] < t["loss_first"]
    # a recipe that evaluates a held-out loss picks its step by it; one that does not (issue 23's sweep,
    # judged by val accuracy afterwards) keeps its last step
    assert bool(t["evals"]) == bool(manifest["config"]["eval_every"]) and t["steps"] == len(t["losses"])
    assert len(manifest["data"]["training_hash"]) == 64


def test_the_recipe_finetune_trains_is_the_shipped_adapters(manifest):
    """`edgeslm finetune --recipe tools` rebuilds the shipped adapter (up to the CPU's rounding), not an
    earlier candidate of the sweep."""
    assert recipe.RECIPE == manifest["recipe"]


@pytest.mark.skipif(not bfcl.default_dir().is_dir(), reason="BFCL data not found: cannot rebuild the training set")
def test_recorded_training_data_is_what_the_recipe_builds(manifest):
    from edgeslm.pipeline import data

    train, dev, counts = recipe.examples(manifest["recipe"])
    assert data.training_hash(train) == manifest["data"]["training_hash"]
    assert counts == manifest["data"]["counts"]
    dev_ids = {e["id"] for e in dev}
    assert not dev_ids & {e.get("id") for e in train}  # never trained on dev


def test_shipped_adapter_loads_and_serves_default(tmp_path, monkeypatch):
    from edgeslm.config import Settings
    from edgeslm.engine import Engine
    from edgeslm.pipeline import data
    from edgeslm.store.adapters import AdapterStore

    settings = Settings(home=tmp_path, threads=THREADS)
    engine = Engine(settings)
    try:
        w = engine.worker("default")
        assert w.preparer.task_for(None) == "tools" and w.preparer.task_for("none") is None
        landed = AdapterStore(settings.adapters_dir).get(recipe.BASE, "tools")
        assert landed.manifest["source"] == "package"
        assert hashlib.sha256(landed.gguf.read_bytes()).hexdigest() == landed.manifest["adapter_sha256"]
        ex = {"messages": [{"role": "user", "content": "What's the weather in Lisbon?"}],
              "tools": [agentdata.WEATHER[0]]}
        g = w.run(*data.request(ex, settings, max_tokens=32))  # llama.cpp accepted the LoRA
        assert g.model.endswith("@tools")
        bare = w.run(*data.request(ex, settings, max_tokens=32), adapter="none")
        assert bare.model == recipe.BASE
    finally:
        engine.close()


def test_short_retraining_is_deterministic(tmp_path):
    """Two runs of the recipe's trainer (per-example, prompt without gradients) on the same generated
    conversations, same seed: the same adapter weights, bit for bit."""
    from safetensors.numpy import load_file

    from edgeslm.config import Settings
    from edgeslm.engine import Engine
    from edgeslm.pipeline import finetune

    settings = Settings(home=tmp_path, threads=THREADS)
    engine = Engine(settings)
    try:
        w = engine.worker(recipe.BASE)
        base = engine.catalog.ensure_local(w.entry)
        pairs = [finetune.encode(w, e, settings) for e in agentdata.generate(6, seed=1)]
    finally:
        engine.close()
    r = recipe.RECIPE
    cfg = finetune.TrainConfig(rank=4, alpha=8, modules=tuple(r["modules"]), lr=r["lr"], batch=2, max_steps=2,
                               seed=r["seed"], prompt_grad=False, eval_every=2)
    weights = []
    for run in ("a", "b"):
        rec = finetune.train(base, pairs[:4], tmp_path / run, cfg, dev=pairs[4:])
        assert rec["best_step"] == 2 and rec["evals"][0]["dev_loss"] > 0
        weights.append(load_file(str(tmp_path / run / "adapter_model.safetensors")))
    assert weights[0].keys() == weights[1].keys()
    assert all((weights[0][k] == weights[1][k]).all() for k in weights[0])
    assert any(abs(v).sum() > 0 for k, v in weights[0].items() if "lora_B" in k)  # it did train


# ---- issue 23's data: the function split, Seal-Tools checked, Hammer's augmentations ------------------

needs_data = pytest.mark.skipif(not bfcl.default_dir().is_dir() or not sealtools.default_dir().is_dir(),
                                reason="BFCL or Seal-Tools data not found")


@pytest.fixture(scope="module")
def built():
    return recipe.examples(recipe.ISSUE23)  # the recipe with Seal-Tools and Hammer's masking


@needs_data
def test_training_offers_no_dev_or_val_function(built):
    train, val, counts = built
    parts = bfcl.function_split()
    held = {bfcl.function_key(f) for p in ("dev", "val") for qs in parts[p].values() for q in qs for f in q["function"]}
    offered = {t["function"]["name"].lower() for e in train if not e.get("masked") for t in e.get("tools") or []}
    assert offered and not offered & held
    held_ids = {q["id"] for p in ("dev", "val") for qs in parts[p].values() for q in qs}
    assert not {e.get("id", "").split(":")[0] for e in train} & held_ids  # masked ones too, by id
    val_ids = {q["id"] for qs in parts["val"].values() for q in qs}
    assert {e["id"] for e in val} <= val_ids  # the step is picked on val, never dev
    assert counts["generated"]["left_out"] > 0  # a generated tool shares a val function's name: left out


@needs_data
def test_sealtools_calls_are_checked_and_drops_counted(built):
    kept, tools, drops = sealtools.checked()
    assert len(kept) + sum(drops.values()) == 2054
    assert drops["value not in the request"] > 100 and drops["nested call"] > 50  # the LLM's invented values
    for r in kept:
        for c in r["calling"]:
            schema = sealtools.openai_tool(tools[c["api"]])["function"]["parameters"]
            jsonschema.Draft202012Validator(schema).validate(c["parameters"])
            assert all(isinstance(v, (bool, int, float)) or str(v).lower() in r["query"].lower()
                       or re.fullmatch(r"\d{4}-\d\d-\d\d", str(v)) for v in c["parameters"].values())
    assert built[2]["sealtools"]["checked"] == len(kept)


def test_sealtools_check_refuses_invented_values_and_keeps_them_whole():
    tool = {"api_name": "bookTable", "parameters": {"city": {"type": "str", "description": "City and country"},
                                                    "people": {"type": "int", "description": "Party size"}},
            "required": ["city"]}
    tools = {"bookTable": tool}
    q = "Book a table for 4 in Tel Aviv, Israel."
    assert sealtools.check_call({"api": "bookTable", "parameters": {"city": "Tel Aviv, Israel", "people": 4}}, tools, q) == "ok"
    assert sealtools.check_call({"api": "bookTable", "parameters": {"city": "Haifa"}}, tools, q) == "value not in the request"
    assert sealtools.check_call({"api": "bookTable", "parameters": {"city": "Tel Aviv, Israel", "people": "4"}}, tools, q) == "wrong type"
    assert sealtools.check_call({"api": "bookTable", "parameters": {"people": 4}}, tools, q) == "missing required value"
    assert sealtools.check_call({"api": "bookTable", "parameters": {"city": "API_call_0"}}, tools, q) == "nested call"
    ask = sealtools.ask_example({"id": "x", "query": q, "calling": [{"api": "bookTable", "parameters": {
        "city": "Tel Aviv, Israel", "people": 4}}]}, tools, {}, random.Random(0))
    assert ask["messages"][0]["content"] == "Book a table for 4." and "tool_calls" not in ask["answer"]


def test_mask_renames_consistently_and_reads_descriptions():
    ex = {"messages": [{"role": "user", "content": "Tide in Cobh?"}],
          "tools": [{"type": "function", "function": {"name": "tides", "description": "Tide times for a harbour.",
                                                      "parameters": {"type": "object", "properties": {
                                                          "harbour": {"type": "string", "description": "Harbour town"},
                                                          "day": {"type": "string"}}, "required": ["harbour"]}}},
                    {"type": "function", "function": {"name": "undescribed", "parameters": {"type": "object", "properties": {}}}}],
          "answer": {"tool_calls": [{"type": "function", "function": {"name": "tides",
                                                                      "arguments": json.dumps({"harbour": "Cobh", "day": "today"})}}]}}
    m = augment.mask(ex, random.Random(1))
    fn = m["tools"][0]["function"]
    call = m["answer"]["tool_calls"][0]["function"]
    assert fn["name"] != "tides" and call["name"] == fn["name"] and m["tools"][1]["function"]["name"] == "undescribed"
    (masked_param,) = set(fn["parameters"]["properties"]) - {"day"}  # "day" has no description: kept
    assert fn["parameters"]["required"] == [masked_param]
    assert json.loads(call["arguments"]) == {masked_param: "Cobh", "day": "today"}
    assert ex["tools"][0]["function"]["name"] == "tides"  # the original is untouched
    irr = augment.drop_gold(ex, "No tool fits.")
    assert [t["function"]["name"] for t in irr["tools"]] == ["undescribed"] and irr["answer"] == {"content": "No tool fits."}


def test_answered_states_each_made_up_result_after_the_calls():
    calls = [{"type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
             for n, a in (("get_pollen_count", {"town": "Ljubljana"}), ("math.calculateArea", {"base": 3}))]
    ex = {"messages": [{"role": "user", "content": "Pollen in Ljubljana, and the area?"}], "tools": [], "kind": "parallel",
          "answer": {"tool_calls": calls}}
    for seed in range(20):
        a = agentdata.answered(ex, random.Random(seed))
        said, results = a["messages"][1], a["messages"][2:]
        assert [c["function"]["name"] for c in said["tool_calls"]] == ["get_pollen_count", "math.calculateArea"]
        assert [r["tool_call_id"] for r in results] == [c["id"] for c in said["tool_calls"]]
        text = a["answer"]["content"]
        assert "tool_calls" not in a["answer"] and "pollen count" in text and "the area" in text
        # every result's value is in the answer (the value is the result's last field, or all of it)
        for r in results:
            c = r["content"]
            value = next(iter(json.loads(c).values())) if c.startswith("{") else c.split(": ", 1)[-1]
            assert value in text, (c, text)
    assert agentdata.answered({**ex, "answer": {"content": "No tool fits."}}, random.Random(0)) is None
    assert agentdata.answered({**ex, "tool_choice": "required"}, random.Random(0)) is None


def test_combined_joins_requests_offers_their_tools_once_and_answers_every_call():
    def one(text, name, args, others=()):
        tools = [{"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}}
                 for n in (name, *others)]
        return {"messages": [{"role": "user", "content": text}], "tools": tools, "kind": "simple_python",
                "answer": {"tool_calls": [{"type": "function", "function": {"name": name, "arguments": json.dumps(args)}}]}}

    a, b = one("Area of a circle of radius 3?", "circle_area", {"r": 3}, ["tides"]), one("Tide in Cobh?", "tides", {"harbour": "Cobh"})
    c = agentdata.combined([a, b], random.Random(4))
    text = c["messages"][0]["content"]
    assert text.startswith("Area of a circle of radius 3?") and text.endswith("Tide in Cobh?") and len(c["messages"]) == 1
    assert sorted(t["function"]["name"] for t in c["tools"]) == ["circle_area", "tides"]
    assert [json.loads(x["function"]["arguments"]) for x in c["answer"]["tool_calls"]] == [{"r": 3}, {"harbour": "Cobh"}]
    clash = one("Tide in Cork?", "tides", {"harbour": "Cork"})
    clash["tools"][0]["function"]["description"] = "another tides"
    assert agentdata.combined([b, clash], random.Random(0)) is None  # one name, two schemas: not offered together
    assert agentdata.combined([a, {**b, "tool_choice": "required"}], random.Random(0)) is None


@needs_data
def test_recipe_masks_about_two_thirds_and_adds_irrelevance(built):
    train, _, counts = built
    with_tools = [e for e in train if e.get("tools")]
    assert 0.55 < counts["masked"] / len(with_tools) < 0.7
    assert 0.07 < counts["no_gold"] / counts["total"] < 0.11
    asks = [e for e in train if e["kind"] == "ask"]
    assert len(asks) > 150 and all("tool_calls" not in e["answer"] for e in asks)


@needs_data
def test_recipe_run_resumes_after_the_process_dies(tmp_path):
    """A recipe run killed after its second step (here: an exception from the progress callback) resumes
    from the checkpoint in its work folder, without encoding again, and writes the adapter."""
    from edgeslm.config import Settings

    settings = Settings(home=tmp_path / "home", threads=THREADS)
    # 2 epochs of 2 examples: 4 steps, cut to 3 (the shipped recipe's 1 epoch would end at step 2)
    r = {**recipe.RECIPE, "rank": 4, "alpha": 8, "batch": 1, "epochs": 2.0, "modules": ["q_proj", "v_proj"]}
    work, out = tmp_path / "run", tmp_path / "run" / "adapter"

    class Died(Exception):
        pass

    def dies(stage, i, n, text):
        if stage == "train" and i == 2:
            raise Died

    with pytest.raises(Died):
        recipe.build(settings, out=out, recipe=r, limit=2, max_steps=3, bar=dies, work=work, save_every=1)
    assert (work / "encoded.json").is_file() and (work / "peft" / "checkpoint").is_dir() and not out.exists()
    from edgeslm.pipeline import finetune

    finetune._BASES.clear()  # as a new process would: the dead run's LoRA layers are still on the cached base
    encoded = []
    m = recipe.build(settings, out=out, recipe=r, limit=2, max_steps=3, work=work, save_every=1,
                     bar=lambda stage, i, n, text: encoded.append(stage))
    assert "encode" not in encoded  # the cached encoding was used
    # died after step 2 but before its checkpoint: resumed from step 1's, and the losses are whole
    assert m["training"]["resumed_from"] == 1 and len(m["training"]["losses"]) == 3
    assert (out / "adapter.gguf").is_file() and json.loads((out / "manifest.json").read_text())["recipe"] == r


@needs_data
def test_combined_requests_join_parts_of_one_language():
    cfg = {**recipe.RECIPE, "split": "function", "sealtools": 0, "mask": 0.0, "no_gold": 0.0, "combined": 0.1}
    train, _, counts = recipe.examples(cfg)
    joined = [e for e in train if e.get("kind") == "combined"]
    assert counts["combined"] == len(joined) > 50
    def lang(part_id: str) -> str:
        return bfcl.language(part_id.rsplit("_", 1)[0])

    for e in joined:
        langs = {lang(i) for i in e["id"].split("+")}
        assert len(langs) == 1, e["id"]
        assert len(e["answer"]["tool_calls"]) >= 2
    # Java and JavaScript parts are drawn too, not only the many Python ones
    assert {lang(e["id"].split("+")[0]) for e in joined} == {"python", "java", "javascript"}


@needs_data
def test_swapped_questions_state_their_new_values_in_request_and_call():
    cfg = {**recipe.RECIPE, "split": "function", "sealtools": 0, "mask": 0.0, "no_gold": 0.0}
    plain, _, _ = recipe.examples(cfg)
    train, _, counts = recipe.examples({**cfg, "swapped": 0.5})
    assert counts["swapped"] == len(train) - len(plain) > 100
    seen = {json.dumps([e["messages"], e["answer"]], sort_keys=True) for e in plain}
    extra = [e for e in train if json.dumps([e["messages"], e["answer"]], sort_keys=True) not in seen]
    originals = {e["id"]: e for e in plain if "id" in e}  # BFCL's questions (the generated have none)
    swapped = 0
    for e in extra:
        was = originals[e["id"]]
        text, before = e["messages"][-1]["content"], was["messages"][-1]["content"]
        assert text != before
        for new, old in zip(e["answer"]["tool_calls"], was["answer"]["tool_calls"], strict=True):
            args, old_args = json.loads(new["function"]["arguments"]), json.loads(old["function"]["arguments"])
            assert args.keys() == old_args.keys() and new["function"]["name"] == old["function"]["name"]
            for k, v in args.items():
                if isinstance(v, str) and v != old_args[k] and old_args[k] in before:
                    assert v in text, (e["id"], k, v, text)  # a stated value swapped is stated as swapped
                    swapped += 1
    assert swapped > 100
