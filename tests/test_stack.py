"""Students on top of the default adapter (edgeslm/pipeline/stack.py): the flattened LoRA is exactly the
sum of the two, the base a student trains on really carries the shipped `tools` adapter, and the student
keeps that adapter's sampling defaults."""

from __future__ import annotations

import json

import numpy as np
from safetensors.numpy import load_file, save_file

from edgeslm.config import Settings
from edgeslm.pipeline import finetune, stack
from edgeslm.store.adapters import AdapterStore
from tests.cores import THREADS

PREFIX = "base_model.model.model.layers.0"


def _peft(path, rank, alpha, modules, rng, n_in=6, n_out=5):
    path.mkdir()
    tensors = {}
    for m in modules:
        tensors[f"{PREFIX}.{m}.lora_A.weight"] = rng.normal(size=(rank, n_in)).astype(np.float32)
        tensors[f"{PREFIX}.{m}.lora_B.weight"] = rng.normal(size=(n_out, rank)).astype(np.float32)
    save_file(tensors, str(path / "adapter_model.safetensors"))
    (path / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "r": rank, "lora_alpha": alpha, "target_modules": [m.split(".")[-1] for m in modules]}))
    return tensors


def _delta(tensors, module, scale):
    return scale * tensors[f"{PREFIX}.{module}.lora_B.weight"] @ tensors[f"{PREFIX}.{module}.lora_A.weight"]


def test_the_flattened_adapter_is_the_sum_of_both(tmp_path):
    rng = np.random.default_rng(0)
    # the default adapts q and k; the student q and v, at another rank and scale
    under = _peft(tmp_path / "under", 4, 8, ["self_attn.q_proj", "self_attn.k_proj"], rng)
    student = _peft(tmp_path / "student", 2, 16, ["self_attn.q_proj", "self_attn.v_proj"], rng)
    (tmp_path / "student" / "edgeslm_training.json").write_text("{}")
    out = stack.flatten(tmp_path / "under", tmp_path / "student", tmp_path / "flat")
    flat = load_file(str(out / "adapter_model.safetensors"))
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["r"] == 6 and cfg["lora_alpha"] == 6 and cfg["target_modules"] == ["k_proj", "q_proj", "v_proj"]
    assert (out / "edgeslm_training.json").is_file()
    zero = np.zeros((5, 6), np.float32)
    for module in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
        want = (_delta(under, module, 2.0) if f"{PREFIX}.{module}.lora_A.weight" in under else zero) + (
            _delta(student, module, 8.0) if f"{PREFIX}.{module}.lora_A.weight" in student else zero)
        assert np.allclose(_delta(flat, module, 1.0), want, atol=1e-5), module


def test_the_student_trains_on_the_base_with_the_tools_adapter_in_it(tmp_path):
    from edgeslm.engine import Engine

    settings = Settings(home=tmp_path, threads=THREADS)
    engine = Engine(settings)
    try:
        entry = engine.worker(None).entry
        base = engine.catalog.ensure_local(entry)
    finally:
        engine.close()
    store = AdapterStore(settings.adapters_dir)
    below = stack.under(settings, store, entry, base)
    # the student keeps the default adapter's sampling defaults too (the leans that copy values whole)
    keeps = stack.sampling(store, entry)
    shipped = store.get(entry.id, "tools", entry.sha256).manifest["sampling"]
    assert keeps.get("copy_bias") and all(keeps[k] == v for k, v in shipped.items()
                                          if k not in stack.COUNT_LEANS and k not in stack.STUDENT_LEANS)
    assert shipped["more_bias"] and not keeps["more_bias"]  # a student learned its task's number of calls
    assert keeps["left_bias"] == stack.STUDENT_LEANS["left_bias"] > 0
    assert below is not None and below[1]["task"] == "tools" == entry.default_adapter
    peft_dir, _ = below
    cfg = json.loads((peft_dir / "adapter_config.json").read_text())
    tools = load_file(str(peft_dir / "adapter_model.safetensors"))
    name = "model.layers.3.mlp.down_proj"
    plain = finetune._base(base, settings.cache).get_parameter(name + ".weight").detach().numpy().copy()
    merged = finetune._base(base, settings.cache, peft_dir).get_parameter(name + ".weight").detach().numpy()
    want = cfg["lora_alpha"] / cfg["r"] * tools[f"base_model.model.{name}.lora_B.weight"] @ tools[f"base_model.model.{name}.lora_A.weight"]
    assert np.abs(want).max() > 1e-4  # the shipped adapter changes this weight
    assert np.allclose(merged - plain, want, atol=1e-5)
