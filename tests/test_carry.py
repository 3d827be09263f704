"""A long benchmark's state carried to the next session through git (benchmarks/_carry.py), and what
`benchmarks.convert --save` picks from a seed's home: real tensors and a real Adam state, on disk."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from safetensors.torch import load_file, save_file  # noqa: E402

from benchmarks import _carry  # noqa: E402


def _adam_state(path):
    w = torch.nn.Parameter(torch.randn(8, 4))
    opt = torch.optim.Adam([w], lr=1e-3)
    (w ** 2).sum().backward()
    opt.step()
    torch.save(opt.state_dict(), path)
    return opt.state_dict()


def test_pack_narrows_and_unpack_widens_back_close(tmp_path):
    home = tmp_path / "home"
    (home / "ckpt").mkdir(parents=True)
    (home / "done").mkdir()
    weights = {"a": torch.randn(16, 64) * 0.02, "b": torch.randn(64, 16) * 1e-3}
    save_file(weights, str(home / "done" / "adapter_model.safetensors"))
    save_file(weights, str(home / "ckpt" / "adapter_model.safetensors"))
    state = _adam_state(home / "ckpt" / "optimizer.pt")
    (home / "run.json").write_text("{}")
    (home / "left_behind.bin").write_bytes(b"x" * 1000)
    keep = tmp_path / "keep"
    (keep / "stale").mkdir(parents=True)  # an older save: replaced whole
    n = _carry.pack(home, keep, [Path(p) for p in ("run.json", "done", "ckpt", "missing")],
                    {Path("done"): "float16", Path("ckpt"): "bfloat16"})
    assert not (keep / "stale").exists() and not (keep / "left_behind.bin").exists()
    assert load_file(str(keep / "done" / "adapter_model.safetensors"))["a"].dtype == torch.float16
    assert load_file(str(keep / "ckpt" / "adapter_model.safetensors"))["a"].dtype == torch.bfloat16
    assert n == sum(f.stat().st_size for f in keep.rglob("*") if f.is_file())

    fresh = tmp_path / "fresh"
    _carry.unpack(keep, fresh)
    # float16 keeps 11 bits down to 6e-5, and steps of 6e-8 below (its subnormals): no LoRA weight's
    # share of a change is lost; bfloat16 keeps 8 bits over float32's range
    for sub, tol, floor in (("done", 1e-3, 6e-8), ("ckpt", 8e-3, 1e-30)):
        got = load_file(str(fresh / sub / "adapter_model.safetensors"))
        for k, v in weights.items():
            assert got[k].dtype == torch.float32
            assert torch.allclose(got[k], v, rtol=tol, atol=floor), (sub, k)
    back = torch.load(fresh / "ckpt" / "optimizer.pt", weights_only=True)
    for i, st in state["state"].items():
        assert back["state"][i]["exp_avg_sq"].dtype == torch.float32
        assert torch.allclose(back["state"][i]["exp_avg_sq"], st["exp_avg_sq"], rtol=8e-3)
        assert float(back["state"][i]["step"]) == float(st["step"])


def test_convert_save_keeps_a_seeds_resumable_files_only(tmp_path, monkeypatch):
    from benchmarks import convert

    monkeypatch.setattr(convert, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(convert, "KEPT", tmp_path / "results" / "convert" / "kept")
    home = tmp_path / "root" / "default-seed1"
    runs = home / "pipeline" / "runs"
    for task in ("weather", "email", "units"):
        (runs / task / "peft").mkdir(parents=True)
    # training again (a record of an older run left beside the new checkpoint): the checkpoint goes
    (runs / "units" / "peft" / "edgeslm_training.json").write_text("{}")
    (runs / "units" / "peft" / "checkpoint").mkdir()
    (runs / "units" / "peft" / "checkpoint" / "state.json").write_text("{}")
    # what an interrupted unpack leaves: not a seed's home
    (tmp_path / "root" / "default-seed1.partial").mkdir(parents=True)
    (tmp_path / "root" / "default-seed1.partial" / "run.json").write_text("{}")
    (runs / "_under" / "tools-abc").mkdir(parents=True)
    save_file({"w": torch.ones(2, 2)}, str(runs / "_under" / "tools-abc" / "adapter_model.safetensors"))
    save_file({"w": torch.ones(2, 2)}, str(runs / "weather" / "peft" / "adapter_model.safetensors"))
    (runs / "weather" / "peft" / "adapter_config.json").write_text("{}")
    (runs / "weather" / "peft" / "edgeslm_training.json").write_text("{}")
    (runs / "email" / "peft" / "checkpoint").mkdir()
    save_file({"w": torch.ones(2, 2)}, str(runs / "email" / "peft" / "checkpoint" / "adapter_model.safetensors"))
    (home / "capture").mkdir()
    (home / "capture" / "calls.db").write_bytes(b"db")
    (home / "capture" / "fakes.salt").write_bytes(b"s" * 16)
    (home / "adapters").mkdir()
    (home / "adapters" / "big.gguf").write_bytes(b"g" * 100)
    stamp = {"seed": 1, "on": "default"}
    (home / "run.json").write_text(json.dumps(stamp))
    (home / "captured.json").write_text("{}")
    convert.save(tmp_path / "root")
    keep = tmp_path / "results" / "convert" / "kept" / "default-s1"
    got = sorted(str(p.relative_to(keep)) for p in keep.rglob("*") if p.is_file())
    assert sorted(p.name for p in keep.parent.iterdir()) == ["default-s1"]
    assert got == ["capture/calls.db", "capture/fakes.salt", "captured.json",
                   "pipeline/runs/email/peft/checkpoint/adapter_model.safetensors",
                   "pipeline/runs/units/peft/checkpoint/state.json",
                   "pipeline/runs/weather/peft/adapter_config.json",
                   "pipeline/runs/weather/peft/adapter_model.safetensors",
                   "pipeline/runs/weather/peft/edgeslm_training.json", "run.json"]
    # a seed whose results are written for the same settings is not carried
    shutil.rmtree(keep)
    (tmp_path / "results" / "convert" / "default-s1.json").write_text(json.dumps({"settings": stamp}))
    convert.save(tmp_path / "root")
    assert not keep.exists()


def test_a_seed_resumes_from_what_an_earlier_session_kept(tmp_path, monkeypatch):
    """seed_run's side: the kept files go into a fresh home when the settings match, not otherwise, and
    stay (as the seed ended) once the seed's results are written, for --rescore. The seed's run itself (2.7 h)
    is a stand-in here that reports what its home held. A home that only gated otherwise (an older `GATE`)
    trains the same: kept."""
    import argparse

    from benchmarks import convert

    monkeypatch.setattr(convert, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(convert, "KEPT", tmp_path / "results" / "convert" / "kept")
    seen = {}

    def one_run(args, seed, home):
        seen["files"] = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())
        return {"seed": seed}

    monkeypatch.setattr(convert, "one_run", one_run)
    args = argparse.Namespace(on="default", per_task=300, tasks="all", spanish=0.1, steps=None, eval_limit=None,
                              fresh=25, seed=0)
    stamp = {"pipeline": convert.PIPELINE, "gate": convert.GATE, "per_task": 300, "tasks": "all", "spanish": 0.1, "steps": None,
             "eval_limit": None, "fresh": 25, "workload_seed": 0, "seed": 2, "on": "default"}
    keep = tmp_path / "results" / "convert" / "kept" / "default-s2"
    (keep / "capture").mkdir(parents=True)
    (keep / "capture" / "fakes.salt").write_bytes(b"s" * 16)
    (keep / "run.json").write_text(json.dumps({**stamp, "per_task": 10}))  # other settings: not taken
    convert.seed_run(args, 2, tmp_path / "root")
    assert seen["files"] == ["run.json"]
    assert json.loads((keep / "run.json").read_text()) == stamp  # the seed finished: kept as it ended
    shutil.rmtree(keep)
    (keep / "capture").mkdir(parents=True)
    (keep / "capture" / "fakes.salt").write_bytes(b"s" * 16)
    (keep / "run.json").write_text(json.dumps({**stamp, "gate": convert.GATE - 1}))  # gated otherwise: taken
    (tmp_path / "results" / "convert" / "default-s2.json").unlink()
    convert.seed_run(args, 2, tmp_path / "root2")
    assert seen["files"] == ["capture/fakes.salt", "run.json"]
    assert json.loads((tmp_path / "results" / "convert" / "default-s2.json").read_text())["settings"] == stamp
    # finished: read back, unless scored again, which starts from the kept files and not from the home's state
    seen.clear()
    assert convert.seed_run(args, 2, tmp_path / "root2")["settings"] == stamp and not seen
    (tmp_path / "root2" / "default-seed2" / "pipeline").mkdir(parents=True)
    (tmp_path / "root2" / "default-seed2" / "pipeline" / "state.json").write_text("{}")
    args.rescore = True
    convert.seed_run(args, 2, tmp_path / "root2")
    assert seen["files"] == ["capture/fakes.salt", "run.json"]
    shutil.rmtree(keep)
    seen.clear()
    convert.seed_run(args, 2, tmp_path / "root2")  # nothing kept to score from: read back
    assert not seen
    # a seed scored at a commit whose scoring code is this tree's is read back by --rescore (a rescore spread
    # over sessions goes on); scored at a tree with changes ("+"), or at no known commit, it is scored again
    import subprocess

    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                          cwd=Path(convert.__file__).parent).stdout.strip()
    monkeypatch.setattr(convert, "SCORING", ["no-such-path-in-the-repo"])  # unchanged since any commit
    (keep / "capture").mkdir(parents=True)
    (keep / "run.json").write_text(json.dumps(stamp))
    done = tmp_path / "results" / "convert" / "default-s2.json"
    for code, again in [(head, False), (head + "+", True), (None, True), ("0" * 40, True)]:
        done.write_text(json.dumps({"settings": stamp, "code": code}))
        seen.clear()
        convert.seed_run(args, 2, tmp_path / "root3")
        assert bool(seen) == again, code
