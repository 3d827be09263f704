"""The shipped "tools" adapter and its recipe: the file in the package is the one its manifest describes,
llama.cpp loads it, it lands in the store on first use and serves `default`; the training data it records is
what the recipe builds now (when the BFCL data is present); and a short run of the recipe's trainer is
deterministic (same seed, same data: the same weights)."""

from __future__ import annotations

import hashlib
import json

import pytest

from edgeslm.pipeline import agentdata, bfcl, recipe

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
    assert t["losses"] and t["best_step"] and t["evals"] and t["loss_last"] < t["loss_first"]
    assert len(manifest["data"]["training_hash"]) == 64


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

    settings = Settings(home=tmp_path, threads=2)
    engine = Engine(settings)
    try:
        w = engine.worker("default")
        assert w.task_for(None) == "tools" and w.task_for("none") is None
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

    settings = Settings(home=tmp_path, threads=2)
    engine = Engine(settings)
    try:
        w = engine.worker(recipe.BASE)
        base = engine.catalog.ensure_local(w.entry)
        pairs = [finetune.encode(w, e, settings) for e in agentdata.generate(6, seed=1)]
    finally:
        engine.close()
    r = recipe.RECIPE
    cfg = finetune.TrainConfig(rank=4, alpha=8, modules=tuple(r["modules"]), lr=r["lr"], batch=3, max_steps=2,
                               seed=r["seed"], prompt_grad=False, eval_every=2)
    weights = []
    for run in ("a", "b"):
        rec = finetune.train(base, pairs[:4], tmp_path / run, cfg, dev=pairs[4:])
        assert rec["best_step"] == 2 and rec["evals"][0]["dev_loss"] > 0
        weights.append(load_file(str(tmp_path / run / "adapter_model.safetensors")))
    assert weights[0].keys() == weights[1].keys()
    assert all((weights[0][k] == weights[1][k]).all() for k in weights[0])
    assert any(abs(v).sum() > 0 for k, v in weights[0].items() if "lora_B" in k)  # it did train
