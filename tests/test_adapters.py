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
from safetensors.numpy import save_file

from edgeslm.backends import open_backend
from edgeslm.config import Settings
from edgeslm.store.gguf_io import read_header
from edgeslm.store.registry import Catalog


def cli(env, *args):
    return subprocess.run([sys.executable, "-m", "edgeslm", *args], env=env, capture_output=True, text=True, timeout=120)


def write_peft(d: Path, *, rank=4, layers=range(18), modules=("q_proj", "v_proj"), peft_type="LORA", in_dim=640,
               prefix="base_model.model.model.layers") -> Path:
    out_dims = {"q_proj": 1024, "k_proj": 256, "v_proj": 256, "o_proj": 640}
    rng = np.random.default_rng(1)
    tensors = {}
    for i in layers:
        for m in modules:
            tensors[f"{prefix}.{i}.self_attn.{m}.lora_A.weight"] = (rng.standard_normal((rank, in_dim)) * 0.05).astype(np.float32)
            tensors[f"{prefix}.{i}.self_attn.{m}.lora_B.weight"] = (rng.standard_normal((out_dims[m], rank)) * 0.05).astype(np.float32)
    d.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(d / "adapter_model.safetensors"))
    (d / "adapter_config.json").write_text(json.dumps({
        "peft_type": peft_type, "r": rank, "lora_alpha": 2 * rank, "target_modules": list(modules),
        "base_model_name_or_path": "google/gemma-3-270m"}))
    return d


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
    def logits(lora):
        b = open_backend(Path(base_path), "gguf", n_ctx=256, n_threads=2, lora=lora)
        b.prefill(b.tokenize("SELECT name FROM", add_bos=True))
        x = np.array(b.logits(), copy=True)
        b.close()
        return x

    base = logits([])
    assert np.abs(logits([(Path(shown["gguf"]), 1.0)]) - base).max() > 1e-2
    assert np.array_equal(logits([]), base)

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
