"""`edgeslm qualify`: the pure verdict, the memory plan against measured peak RSS, refusals before
loading, bad input, and a real qualification of the embedded model through the CLI."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmarks._lora import last_logits, write_peft
from edgeslm.backends.memory import parse_size, plan
from edgeslm.config import Settings
from edgeslm.errors import DoesNotFit, NotFound
from edgeslm.qualify.report import compare
from edgeslm.qualify.run import profiles, qualify
from edgeslm.qualify.verdict import Profile, judge, load_profiles, pick
from edgeslm.store.lora_gguf import convert
from edgeslm.store.registry import Catalog, shipped_catalog
from tests.cores import THREADS

GOOD = {"ttft_512_s": 0.5, "ttft_tools_s": 1.0, "decode_tps": 40.0, "tool_call_s": 0.8,
        "memory_ram_fraction": 0.1, "load_s": 1.0}


def cli(env, *args, timeout=600):
    return subprocess.run([sys.executable, "-m", "edgeslm", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def default_path(home):
    return Catalog(Settings(home=home)).ensure_local(Catalog(Settings(home=home)).get("default"))


# ---- the verdict: a pure function ----------------------------------------------------------------

def test_shipped_profiles_have_documented_thresholds():
    p = load_profiles(shipped_catalog())
    ia = p["interactive-agent"]
    assert (ia.ttft_512_max_s, ia.decode_min_tps, ia.tool_call_max_s, ia.memory_max_ram_fraction) == (1.0, 10, 2.0, 0.5)
    bg = p["background-agent"]
    assert bg.ttft_512_max_s > ia.ttft_512_max_s and bg.decode_min_tps < ia.decode_min_tps


def test_verdict_passes_with_margins():
    v = judge(GOOD, pick(load_profiles(shipped_catalog()), "interactive-agent"))
    assert v.overall == "pass" and v.passed
    by = {c.figure: c for c in v.criteria}
    assert by["ttft_512_s"].margin == pytest.approx(0.5)  # 0.5 s against <= 1.0 s: 50% headroom
    assert by["decode_tps"].margin == pytest.approx(3.0)  # 40 against >= 10
    assert by["memory_ram_fraction"].margin == pytest.approx(0.8)


def test_verdict_fails_on_any_criterion_and_says_which():
    prof = Profile(name="t", ttft_512_max_s=1.0, decode_min_tps=10)
    v = judge({**GOOD, "decode_tps": 8.0}, prof)
    assert v.overall == "fail"
    bad = [c for c in v.criteria if not c.passed]
    assert [c.figure for c in bad] == ["decode_tps"] and bad[0].margin == pytest.approx(-0.2)
    assert [c.figure for c in v.criteria] == ["ttft_512_s", "decode_tps"]  # unset thresholds are not checked
    edge = judge({**GOOD, "ttft_512_s": 1.0}, Profile(name="edge", ttft_512_max_s=1.0))
    assert edge.overall == "pass" and edge.criteria[0].margin == 0


def test_verdict_is_incomplete_when_a_checked_figure_is_missing():
    v = judge({**GOOD, "ttft_512_s": None}, Profile(name="t", ttft_512_max_s=1.0, load_max_s=5))
    assert v.overall == "incomplete" and not v.passed


def test_user_catalog_profiles_override_and_unknown_profiles_name_the_choices(tmp_path):
    user = tmp_path / "models.toml"
    user.write_text('[profile.interactive-agent]\nttft_512_max_s = 0.2\n[profile.mine]\ndecode_min_tps = 100\n')
    p = load_profiles(shipped_catalog(), user)
    assert p["interactive-agent"].ttft_512_max_s == 0.2 and "mine" in p
    with pytest.raises(NotFound) as e:
        pick(p, "fastest")
    assert "fastest" in e.value.message and "background-agent" in e.value.message and "mine" in e.value.message


def test_compare_checks_each_figure_against_the_stated_noise():
    a = {"schema": "s", "figures": dict(GOOD), "noise": {k: 0.1 for k in GOOD}}
    b = {"schema": "s", "figures": {**GOOD, "decode_tps": 30.0}, "noise": {k: 0.1 for k in GOOD}}
    rows = {r["figure"]: r for r in compare(a, b)}
    assert rows["decode_tps"]["within_noise"] is False and rows["decode_tps"]["change"] == pytest.approx(-0.25)
    assert rows["ttft_512_s"]["within_noise"] is True


def test_sizes_parse_and_name_the_forms():
    assert parse_size("512MiB") == 512 << 20 and parse_size("6GB") == 6 << 30 and parse_size("0.5G") == 1 << 29
    with pytest.raises(ValueError, match="512MiB"):
        parse_size("lots")


# ---- the memory plan against what llama.cpp really takes -------------------------------------------

PROBE = textwrap.dedent("""
    import json, sys
    from edgeslm.backends.memory import plan
    from edgeslm.config import Settings
    from edgeslm.engine import ModelWorker
    from edgeslm.qualify.profile import AGENT_TOOLS, peak_rss
    from edgeslm.store.registry import Catalog
    from edgeslm.types import Message, OutputSpec, SamplingParams
    n_ctx = int(sys.argv[1])
    s = Settings(n_ctx=n_ctx, threads=int(sys.argv[2]))
    cat = Catalog(s)
    entry = cat.get("default")
    p = plan(cat.ensure_local(entry), n_ctx=n_ctx, n_batch=s.n_batch)
    w = ModelWorker(entry, s, cat)
    w.run([Message("user", "word " * 1900)], OutputSpec("text"), SamplingParams(max_tokens=16, temperature=0))
    w.run([Message("user", "Weather in Paris?")], OutputSpec("tools", AGENT_TOOLS, "auto"),
          SamplingParams(max_tokens=64, temperature=0))
    print(json.dumps({"plan": p.total, "terms": p.terms, "peak": peak_rss()}))
""")


@pytest.mark.parametrize("n_ctx", [2048, 8192])
def test_memory_plan_is_within_15_percent_of_peak_rss(env, default_path, n_ctx):
    r = subprocess.run([sys.executable, "-c", PROBE, str(n_ctx), str(THREADS)], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    error = (got["plan"] - got["peak"]) / got["peak"]
    assert abs(error) <= 0.15, f"plan {got['plan'] >> 20} MiB vs peak RSS {got['peak'] >> 20} MiB: {got['terms']}"


def test_plan_grows_with_context_by_the_kv_cache(default_path):
    small, big = plan(default_path, n_ctx=2048, runtime=0), plan(default_path, n_ctx=8192, runtime=0)
    # Gemma 3 270M: 18 layers x 1 KV head x (256 + 256) x f16 = 18 KiB per token
    assert small.kv_bytes_per_token == 18 * 1024
    assert big.terms["kv_cache"] - small.terms["kv_cache"] == 6144 * 18 * 1024
    assert small.terms["weights"] > 200 << 20


# ---- refusals and bad input ------------------------------------------------------------------------

def test_a_budget_too_small_is_refused_before_loading(home):
    settings = Settings(home=home, memory_budget="100MiB", threads=THREADS)
    with pytest.raises(DoesNotFit) as e:
        qualify(settings, "default", runs=2)
    msg = e.value.message
    assert "100 MiB" in msg and "weights" in msg and "kv_cache" in msg and "n_ctx" in msg


def test_serve_refuses_a_model_over_budget(env):
    r = cli(env, "serve", "--memory-budget", "100MiB", "--port", "0", timeout=120)
    assert r.returncode == 2 and "memory budget is 100 MiB" in r.stderr and "Traceback" not in r.stderr
    r = cli(env, "serve", "--memory-budget", "lots", "--port", "0", timeout=60)
    assert r.returncode == 2 and "'lots'" in r.stderr and "512MiB" in r.stderr


@pytest.mark.parametrize("args,needle", [
    (["no-such-model"], "unknown model 'no-such-model'; known models: default"),
    (["default", "--profile", "fastest"], "unknown profile 'fastest'; choose one of: background-agent"),
    (["default", "--adapter", "../etc"], "invalid adapter task name '../etc'"),
    (["default", "--adapter", "summarize"], "no adapter 'summarize' for 'gemma-3-270m-q4_k_m'"),
    (["default", "--memory-budget", "lots"], "invalid size 'lots'"),
])
def test_bad_input_gets_a_clear_error(env, args, needle):
    r = cli(env, "qualify", *args, timeout=120)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_corrupt_and_truncated_gguf_files_are_refused(env, default_path, tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model at all" * 100)
    r = cli(env, "qualify", str(junk))
    assert r.returncode == 2 and "not a GGUF file" in r.stderr
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(Path(default_path).read_bytes()[: 50 << 20])  # header intact, tensor data cut
    r = cli(env, "qualify", str(cut))
    assert r.returncode == 2 and "truncated" in r.stderr and "Traceback" not in r.stderr


def test_an_adapter_made_for_another_base_is_refused(env, home):
    d = home / "adapters" / "qwen2.5-0.5b-instruct-q4_k_m" / "sql"
    d.mkdir(parents=True)
    (d / "manifest.json").write_text(json.dumps({"base_id": "qwen2.5-0.5b-instruct-q4_k_m", "task": "sql"}))
    (d / "adapter.gguf").write_bytes(b"")
    r = cli(env, "qualify", "default", "--adapter", "sql")
    assert r.returncode == 2 and "made for base qwen2.5-0.5b-instruct-q4_k_m, not 'gemma-3-270m-q4_k_m'" in r.stderr
    mine = home / "adapters" / "gemma-3-270m-q4_k_m" / "sql2"
    mine.mkdir(parents=True)
    (mine / "manifest.json").write_text(json.dumps({"base_id": "gemma-3-270m-q4_k_m", "base_sha256": "0" * 64}))
    (mine / "adapter.gguf").write_bytes(b"")
    r = cli(env, "qualify", "default", "--adapter", "sql2")
    assert r.returncode == 2 and "made for base gemma-3-270m-q4_k_m (sha256 000000000000" in r.stderr


# ---- a real qualification ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_reports(env, qualified):
    out, first = qualified  # conftest's: 3 runs
    # the second report is for the history's comparison
    r = cli(env, "qualify", "default", "--runs", "2", "--n-ctx", "4096", "--threads", str(THREADS), "--json",
            "--out", str(out), "--profile", "background-agent")
    assert r.returncode in (0, 1), r.stderr[-3000:]  # 1: a verdict other than pass
    return out, [first, json.loads(r.stdout)]


def test_qualify_measures_the_default_and_writes_json_and_png(two_reports, home):
    out, (report, _) = two_reports
    assert report["schema"] == "edgeslm.qualify/1" and report["model"]["id"] == "gemma-3-270m-q4_k_m"
    assert report["verdict"]["overall"] in ("pass", "fail")
    assert [c["figure"] for c in report["verdict"]["criteria"]] == [
        "ttft_512_s", "ttft_tools_s", "decode_tps", "tool_call_s", "memory_ram_fraction"]
    m = report["measured"]
    assert [x["target_tokens"] for x in m["prefill"]] == [128, 512, 2048]
    assert all(abs(x["prompt_tokens"] - x["target_tokens"]) <= 8 for x in m["prefill"])
    assert m["prefill"][0]["ttft_s"] < m["prefill"][2]["ttft_s"]  # longer prompts take longer
    assert m["decode"]["tokens_per_s"] > 1 and m["decode"]["ms_per_token_p90"] >= m["decode"]["ms_per_token_median"]
    assert m["tools"]["calls_made"] >= 1 and m["tools"]["ttft_warm_s"] < m["tools"]["ttft_cold_s"]
    # cold, then restored from the prefix cache on disk (as after a restart), then warm in memory
    assert m["tools"]["ttft_restored_s"] is not None and m["tools"]["ttft_restored_s"] < m["tools"]["ttft_cold_s"]
    assert abs(report["memory"]["plan_error"]) <= 0.15
    assert report["device"]["physical_cores"] >= 1 and "llama.cpp" in report["device"]["backend"]
    if report["device"]["gpu_build"] is None:  # a CPU build: the report says what it could not measure
        assert report["gpu"]["measured"] is False and "no GPU offload" in report["gpu"]["not_measured"]
        assert report["verdict"]["device"].endswith("(CPU)") and report["cpu_run"] is None
    assert len(list(out.glob("*.json"))) == 2 and len(list(out.glob("*.png"))) == 2
    assert len(list((home / "reports" / "qualify").glob("*.png"))) >= 2


def test_history_lists_and_compares_two_runs(env, two_reports):
    rows = json.loads(cli(env, "qualify", "--history", "--json").stdout)
    assert len(rows) >= 2 and rows[-1]["model"] == "gemma-3-270m-q4_k_m"
    a, b = rows[-2]["report"], rows[-1]["report"]
    r = cli(env, "qualify", "--compare", a, b, "--json")
    assert r.returncode == 0, r.stderr
    cmp = {x["figure"]: x for x in json.loads(r.stdout)}
    assert cmp["memory_ram_fraction"]["within_noise"] is True  # memory is stable run to run
    assert set(cmp) >= {"ttft_512_s", "decode_tps", "tool_call_s"}
    r = cli(env, "qualify", "--compare", a, "nope")
    assert r.returncode == 2 and "no report matches 'nope'" in r.stderr


def test_profiles_come_from_the_store_catalog_too(home):
    assert {"interactive-agent", "background-agent"} <= set(profiles(Settings(home=home)))


# ---- with an adapter ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_adapter(home, default_path):
    entry = Catalog(Settings(home=home)).get("default")
    d = home / "adapters" / entry.id / "tiny"
    d.mkdir(parents=True, exist_ok=True)
    convert(write_peft(d / "peft", rank=8, modules=("q_proj",), seed=0), Path(default_path), d / "adapter.gguf")
    (d / "manifest.json").write_text(json.dumps({
        "base_id": entry.id, "base_sha256": entry.sha256, "architecture": "gemma3", "rank": 8, "alpha": 16,
        "target_modules": ["q_proj"], "source": "test fixture (random weights)"}))
    return d / "adapter.gguf"


def test_the_adapter_changes_the_logits(default_path, tiny_adapter):
    import numpy as np

    text = "The capital of France is"
    base, adapted = last_logits(default_path, text), last_logits(default_path, text, [(tiny_adapter, 1.0)])
    assert np.abs(base - adapted).max() > 1e-2
    assert np.array_equal(base, last_logits(default_path, text))  # without it the base logits come back exactly


def test_qualify_with_an_adapter(env, tiny_adapter):
    r = cli(env, "qualify", "default", "--adapter", "tiny", "--runs", "2", "--n-ctx", "2048", "--threads", str(THREADS),
            "--json", "--profile", "background-agent")
    assert r.returncode in (0, 1), r.stderr[-3000:]
    report = json.loads(r.stdout)
    assert report["adapter"]["task"] == "tiny"
    assert report["memory"]["plan"]["terms"]["adapters"] == tiny_adapter.stat().st_size
    assert report["measured"]["tools"]["calls_made"] == 2  # tool_choice required: a call each run


def test_plan_only_prints_json_without_loading(env):
    r = cli(env, "qualify", "default", "--plan", "--n-ctx", "2048", timeout=60)
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)
    assert p["fits"] is True and p["kv_bytes_per_token"] == 18 * 1024 and p["terms"]["kv_cache"] == 2048 * 18 * 1024
    assert p["total"] == sum(p["terms"].values())
    r = cli(env, "qualify", "default", "--plan", "--memory-budget", "300MiB", timeout=60)
    assert r.returncode == 1 and json.loads(r.stdout)["fits"] is False
