"""store.lora_gguf.mean: one GGUF LoRA whose weight change is the mean of several (a soup of seeds), checked as
weight deltas against each adapter's own, on the shipped `tools` adapter and a variant of it with another alpha."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from edgeslm.errors import InvalidRequest
from edgeslm.store.lora_gguf import lora_deltas, mean

SHIPPED = Path(__file__).parent.parent / "edgeslm" / "assets" / "adapters" / "gemma-3-270m-q4_k_m" / "tools" / "adapter.gguf"


def _variant(path: Path, alpha: float, b_times: float, pairs: int = 6) -> Path:
    """The shipped adapter's first `pairs` A/B pairs with B scaled and another alpha: another ΔW of the same shapes."""
    r = gguf.GGUFReader(SHIPPED)
    w = gguf.GGUFWriter(str(path), "gemma3")
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    for t in r.tensors[:2 * pairs]:
        x = np.array(t.data, dtype=np.float32)
        w.add_tensor(t.name, (x * b_times if t.name.endswith("_b") else x).astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_the_mean_of_adapters_changes_the_weights_by_the_mean_of_their_changes(tmp_path):
    shipped = _variant(tmp_path / "shipped.gguf", alpha=32.0, b_times=1.0)
    other = _variant(tmp_path / "other.gguf", alpha=8.0, b_times=-3.0)  # scale 8/16 against the shipped 32/16
    rank = mean([shipped, other], tmp_path / "soup.gguf")
    assert rank == 32
    a, b, m = lora_deltas(shipped), lora_deltas(other), lora_deltas(tmp_path / "soup.gguf")
    assert m.keys() == a.keys() and len(m) == 6
    for k in m:
        want = (a[k] + b[k]) / 2
        assert np.abs(m[k] - want).max() <= 1e-3 * np.abs(a[k]).max() + 1e-6
    assert any(np.abs(a[k] - b[k]).max() > 1e-3 for k in m)  # the two differ, so a wrong weighting would show
    one = mean([shipped], tmp_path / "one.gguf")
    assert one == 16 and all(np.allclose(lora_deltas(tmp_path / "one.gguf")[k], a[k], atol=1e-5) for k in a)


def test_adapters_of_other_tensors_or_no_adapter_are_refused(tmp_path):
    fewer = _variant(tmp_path / "fewer.gguf", alpha=32.0, b_times=1.0, pairs=5)
    with pytest.raises(InvalidRequest, match="adapts other tensors"):
        mean([_variant(tmp_path / "six.gguf", alpha=32.0, b_times=1.0), fewer], tmp_path / "soup.gguf")
    model = gguf.GGUFWriter(str(tmp_path / "model.gguf"), "gemma3")  # a model's file, not an adapter
    model.add_tensor("token_embd.weight", np.zeros((4, 8), np.float16))
    model.write_header_to_file()
    model.write_kv_data_to_file()
    model.write_tensors_to_file()
    model.close()
    with pytest.raises(InvalidRequest, match="not a GGUF LoRA"):
        mean([tmp_path / "model.gguf"], tmp_path / "soup.gguf")
    with pytest.raises(InvalidRequest, match="no adapters"):
        mean([], tmp_path / "soup.gguf")
    assert not (tmp_path / "soup.gguf").exists()


def test_the_soup_benchmark_writes_the_mean_of_a_runs_seeds_and_the_table_lists_it(tmp_path, monkeypatch):
    """benchmarks.tools_soup on two committed seeds (copies of the shipped adapter, as `tools_sweep run` leaves them):
    its adapter folder, and `tools_sweep table` listing the soup as a seed of RUN-soup once scored."""
    import json
    import shutil

    from benchmarks import tools_soup, tools_sweep

    monkeypatch.setattr(tools_sweep, "RESULTS", tmp_path)
    monkeypatch.setattr(tools_soup, "RESULTS", tmp_path)
    for seed in (0, 1):
        shutil.copytree(SHIPPED.parent, tmp_path / "tools_sweep" / f"v2-nogold-full-s{seed}" / "adapter")
    task = tools_soup.soup("v2-nogold-full", [0, 1])
    out = tmp_path / "tools_sweep" / task
    assert task == "v2-nogold-full-soup-s01"
    m = json.loads((out / "adapter" / "manifest.json").read_text())
    assert m["rank"] == 32 and m["task"] == task and "seeds [0, 1]" in m["source"]
    cats = {c: {"default@x": {"accuracy": 0.5}} for c in ("simple", "multiple", "parallel", "parallel_multiple",
                                                          "irrelevance", "overall")}
    (out / "dev_defaults.json").write_text(json.dumps({"categories": cats}))
    assert [r["run"] for r in tools_sweep.defaults_rows()["v2-nogold-full-soup"]] == [task]
    with pytest.raises(SystemExit, match="no finished adapter"):
        tools_soup.soup("v2-nogold-full", [0, 5])
