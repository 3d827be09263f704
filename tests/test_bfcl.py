"""BFCL data for the "tools" recipe and its benchmark (`edgeslm/pipeline/bfcl.py`) on the real data, with
BFCL's own checker: the function split is fixed, its parts share no function (name and parameter names)
and no question text, answers cut off or left as text in `content` score as wrong (irrelevance too), every
training target the recipe keeps passes the checker, near misses fail it, and the prepared tools are valid
OpenAI tools with JSON Schemas."""

import copy

import jsonschema
import pytest

from edgeslm.pipeline import bfcl

pytestmark = pytest.mark.skipif(not bfcl.default_dir().is_dir(), reason=f"BFCL data not found at {bfcl.default_dir()}")


@pytest.fixture(scope="module")
def check():
    return bfcl.checker()


def test_function_split_shares_no_function_between_parts():
    parts = bfcl.function_split()
    keys = {p: {bfcl.function_key(f) for qs in parts[p].values() for q in qs for f in q["function"]}
            for p in bfcl.PARTS}
    assert not keys["dev"] & keys["train"] and not keys["dev"] & keys["val"] and not keys["val"] & keys["train"]
    # nor a function of the same name and parameter names (nor, stricter, of the same name at all)
    named = {p: {(f["name"], tuple(sorted(f["parameters"].get("properties", {})))) for qs in parts[p].values()
                 for q in qs for f in q["function"]} for p in bfcl.PARTS}
    assert not named["dev"] & (named["train"] | named["val"])
    assert not {n for n, _ in named["dev"]} & {n for p in ("train", "val") for n, _ in named[p]}
    for c in bfcl.CATEGORIES:
        total = len(bfcl.load(c))
        ids = [q["id"] for p in bfcl.PARTS for q in parts[p][c]]
        assert len(ids) == len(set(ids)) == total  # every question in exactly one part
        assert abs(len(parts["dev"][c]) - round(total * bfcl.DEV_SHARE)) <= 0.05 * total, c
        assert len(parts["val"][c]) >= 0.05 * total, c


def test_function_split_is_fixed():
    """The seed fixes it: the same parts on every build, with the sizes and ids it gave when introduced."""
    parts = bfcl.function_split()
    bfcl._SPLITS.clear()
    again = bfcl.function_split()
    assert {c: [q["id"] for q in v] for c, v in parts["dev"].items()} == {c: [q["id"] for q in v] for c, v in again["dev"].items()}
    assert {c: len(v) for c, v in parts["dev"].items()} == {
        "simple_python": 80, "multiple": 38, "parallel": 36, "parallel_multiple": 40, "simple_java": 20,
        "simple_javascript": 10, "irrelevance": 44}
    assert [q["id"] for q in parts["dev"]["multiple"][:3]] == ["multiple_0", "multiple_10", "multiple_101"]


def test_cut_off_or_enveloped_answers_are_wrong(check):
    from benchmarks.bfcl_dev import judge

    irr = bfcl.load("irrelevance")[0]
    assert judge(irr, [], "No function fits.", False, check)[0]
    assert not judge(irr, [], '<tool_call>\n{"name": "calc', True, check)[0]  # cut off mid-call: not a refusal
    assert not judge(irr, [], 'Sure.\n<tool_call>\n{"name": "x", "arguments": {}}\n</tool_call>', False, check)[0]
    q = bfcl.load("simple_python")[0]
    calls = bfcl.target_calls(q)
    assert judge(q, calls, None, False, check)[0]
    assert not judge(q, calls, None, True, check)[0]
    assert not judge(q, [{"name": calls[0]["name"], "arguments": None}], None, False, check)[0]


@pytest.mark.parametrize("category", bfcl.CATEGORIES)
def test_legacy_split_is_fixed_and_disjoint(category):
    items = bfcl.load(category)
    train, dev = bfcl.split(items)
    assert {q["id"] for q in train}.isdisjoint(q["id"] for q in dev)
    assert len(train) + len(dev) == len(items) and len(dev) == round(0.2 * len(items))
    again = bfcl.split(list(reversed(items)))  # order-independent: a hash of each id
    assert [q["id"] for q in again[1]] == [q["id"] for q in dev]


@pytest.mark.parametrize("category", [c for c in bfcl.CATEGORIES if c != "irrelevance"])
def test_targets_pass_bfcls_checker(category, check):
    items = bfcl.load(category)
    passed = sum(check(q, bfcl.target_calls(q))[0] for q in items)
    # Python: all but one answer of parallel_multiple; Java: a few HashMap/Array values this converter
    # writes in a form BFCL's parser does not read back (the recipe drops those, and says how many)
    assert passed >= (len(items) - 1 if "java" not in category else 0.85 * len(items)), (category, passed)


def test_near_misses_fail(check):
    q = bfcl.load("simple_python")[0]
    calls = bfcl.target_calls(q)
    assert check(q, calls)[0]
    wrong_name = [{**calls[0], "name": "nope"}]
    assert not check(q, wrong_name)[0]
    extra = copy.deepcopy(calls)
    extra[0]["arguments"]["unknown_param"] = 1
    assert not check(q, extra)[0]
    assert not check(q, calls + calls)[0]  # a second call nobody asked for
    assert not check(q, [])[0]
    irr = bfcl.load("irrelevance")[0]
    assert check(irr, [])[0] and not check(irr, [{"name": "x", "arguments": {}}])[0]
    par = bfcl.load("parallel")[0]
    assert check(par, list(reversed(bfcl.target_calls(par))))[0]  # parallel calls in any order
    assert not check(par, bfcl.target_calls(par)[:1])[0]


@pytest.mark.parametrize("category", bfcl.CATEGORIES)
def test_prepared_tools_are_valid(category):
    for q in bfcl.load(category):
        for t in bfcl.openai_tools(q):
            name = t["function"]["name"]
            assert name.replace("_", "").replace("-", "").isalnum() and len(name) <= 64
            jsonschema.Draft202012Validator.check_schema(t["function"]["parameters"])
        if category in ("simple_java", "simple_javascript"):  # values travel as strings in that syntax
            assert all(p["type"] == "string" for t in bfcl.openai_tools(q)
                       for p in t["function"]["parameters"]["properties"].values())


def test_targets_validate_against_the_prepared_schemas():
    """Nearly every answer fits the schema the grammar enforces. The exceptions are BFCL answers that hold
    another type than their parameter declares (a variable name for an array) or more items than
    maxItems: the served grammar cannot produce those, so training tokenizes them plainly."""
    total = bad = 0
    for cat in ("simple_python", "multiple", "parallel", "parallel_multiple", "simple_java", "simple_javascript"):
        for q in bfcl.load(cat):
            schemas = {t["function"]["name"]: t["function"]["parameters"] for t in bfcl.openai_tools(q)}
            for c in bfcl.target_calls(q):
                total += 1
                bad += not jsonschema.Draft202012Validator(schemas[c["name"]]).is_valid(c["arguments"])
    assert total > 1500 and bad <= 0.02 * total, (bad, total)


def test_unknown_category_names_the_choices():
    from edgeslm.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="simple_python"):
        bfcl.load("live_simple")


def test_clean_dev_shares_no_question_with_any_trained_part():
    parts = bfcl.function_split()
    trained = {bfcl._text(q) for p in ("train", "val") for c in bfcl.CATEGORIES for q in parts[p][c]}
    total = 0
    for c in bfcl.CATEGORIES:
        clean, removed = bfcl.clean_dev(c)
        assert not {bfcl._text(q) for q in clean} & trained
        assert len(clean) + removed == len(parts["dev"][c])
        total += removed
    assert total > 0  # BFCL does repeat questions across categories


def test_sweep_table_reports_mean_and_minimum_over_seeds(tmp_path, monkeypatch):
    """benchmarks.tools_sweep's committed table: one row per finished run, then the mean and the minimum
    over a run's seeds (fed finished runs as the sweep leaves them)."""
    import json

    from benchmarks import tools_sweep

    monkeypatch.setattr(tools_sweep, "RESULTS", tmp_path)
    for seed, acc in ((0, 0.5), (1, 0.3), (2, 0.4)):
        d = tmp_path / "tools_sweep" / f"v3-s{seed}"
        d.mkdir(parents=True)
        (d / "manifest.json").write_text(json.dumps({"data": {"examples": 10}, "training": {
            "best_step": 5, "steps": 8, "dev_loss": 0.3, "train_s": 1}}))
        cats = {c: {"default@v3-s0": {"accuracy": acc}} for c in (*bfcl.CATEGORIES, "simple", "overall")}
        for split in ("val", "dev", "dev_defaults"):
            (d / f"{split}.json").write_text(json.dumps({"categories": cats}))
    (tmp_path / "tools_sweep" / "v3-s0" / "val_defaults.json").write_text(json.dumps({"categories": {
        c: {"default@v3-s0-defaults": {"accuracy": 0.625}} for c in (*bfcl.CATEGORIES, "simple", "overall")}}))
    (tmp_path / "tools_sweep" / "v3-r8-s0").mkdir()  # unfinished: no dev.json, not in the table
    tools_sweep.table(None)
    out = json.loads((tmp_path / "tools_sweep.json").read_text())
    assert [(r["seed"], r["val"]) for r in out["at_defaults"]["v3"]] == [(0, 0.625), (1, None), (2, None)]
    assert "| v3-s0 at the shipped defaults | | | | | 0.625 | 0.5 |" in (tmp_path / "tools_sweep.md").read_text()
    assert [r["run"] for r in out["runs"]] == ["v3-s0", "v3-s1", "v3-s2"]
    s = out["over_seeds"]["v3"]
    assert s["seeds"] == [0, 1, 2] and s["mean_overall"] == 0.4 and s["min_overall"] == 0.3
    assert s["min_parallel_multiple"] == 0.3 and "0.4 (0.3)" in (tmp_path / "tools_sweep.md").read_text()


def test_python_questions_again_as_java_and_javascript_ones(check):
    """The `typed` recipe share (pipeline/recipe.py): a simple Python question retyped the way BFCL types its
    Java and JavaScript questions, so its answer is written in that language's syntax and BFCL's checker,
    reading it as that language, takes it; the same values in Python's syntax it refuses."""
    import random

    items = bfcl.function_split()["train"]["simple_python"]
    made = {"java": 0, "javascript": 0}
    for n, q in enumerate(items[:60]):
        lang = ("java", "javascript")[n % 2]
        t = bfcl.as_language(q, lang, random.Random(n))
        if t is None:
            continue
        assert t["category"] == f"simple_{lang}" and t["id"] != q["id"]
        calls = bfcl.target_calls(t)
        if check(t, calls)[0]:
            made[lang] += 1
            assert all(isinstance(v, str) for c in calls for v in c["arguments"].values())  # typed strings
            assert all(p["type"] == "string" for tool in bfcl.openai_tools(t)
                       for p in tool["function"]["parameters"]["properties"].values())
        typed = bfcl.target_calls({**t, "category": "simple_python"})  # the values as Python writes them
        if any(not isinstance(v, str) for c in typed for v in c["arguments"].values()):
            assert not check(t, typed)[0]
    assert made["java"] >= 25 and made["javascript"] >= 25, made
    # a long is written with its suffix; an unknown type has no counterpart
    fact = {"id": "f", "category": "simple_python", "question": [[{"role": "user", "content": "5!"}]],
            "function": [{"name": "math.factorial", "description": "n!", "parameters": {
                "type": "dict", "properties": {"number": {"type": "integer"}}, "required": ["number"]}}],
            "ground_truth": [{"math.factorial": {"number": [5]}}]}
    longs = [bfcl.as_language(fact, "java", random.Random(s)) for s in range(20)]
    assert {bfcl.target_calls(t)[0]["arguments"]["number"] for t in longs} == {"5", "5L"}
    assert all(check(t, bfcl.target_calls(t))[0] for t in longs)
    fact["function"][0]["parameters"]["properties"]["number"]["type"] = "tuple"
    assert bfcl.as_language(fact, "java", random.Random(0)) is None
