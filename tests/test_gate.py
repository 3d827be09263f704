"""The promotion gate (pipeline/evaluate.py) on the real default model: a verdict depends on the student and
the held-out examples alone, not on what the process ran before or the order (a prompt evaluated after
another's cached prefix can flip a greedy near-tie; only the tool block, evaluated apart, is reused), and a text answer where a call was due is a wrong answer, not an invalid one."""

import json

from edgeslm.config import get_settings
from edgeslm.engine import Engine
from edgeslm.pipeline import data, evaluate
from edgeslm.store.adapters import AdapterStore
from tests.cores import THREADS

TOOL = {"type": "function", "function": {
    "name": "book_ferry", "description": "Book a ferry crossing.",
    "parameters": {"type": "object", "properties": {
        "port": {"type": "string", "description": "Departure port"},
        "passengers": {"type": "integer", "minimum": 1}}, "required": ["port", "passengers"]}}}


def _example(text: str, port: str, n: int, **extra) -> dict:
    call = {"type": "function", "function": {"name": "book_ferry",
                                             "arguments": json.dumps({"port": port, "passengers": n})}}
    return {"messages": [{"role": "user", "content": text}], "tools": [TOOL], "answer": {"tool_calls": [call]}, **extra}


EXAMPLES = [_example("Book a ferry from Split for 2 people.", "Split", 2),
            _example("Ferry out of Piraeus, 4 passengers please.", "Piraeus", 4),
            _example("I need a crossing from Holyhead for three of us.", "Holyhead", 3),
            _example("Get me on a boat leaving Tallinn, just me.", "Tallinn", 1)]


def _by_request(scores: dict) -> dict:
    return {r["request"]: (r["got"], r["exact"], r["valid"], r["tool_name"]) for r in scores["rows"]}


def test_scores_do_not_depend_on_what_ran_before(tmp_path):
    engine = Engine(get_settings(home=tmp_path / "home", threads=THREADS, n_ctx=2048, parallel=1))
    try:
        w = engine.worker(None)
        settings = engine.settings
        first = evaluate.run(w, EXAMPLES, settings)
        # other prompts that share the tool block with the examples leave prefixes in the cache
        w.run(*data.request(_example("Book a ferry from Split for 2 people, or 5.", "Split", 5), settings))
        again = evaluate.run(w, EXAMPLES[::-1], settings)
        assert _by_request(first) == _by_request(again)
        # nothing is reused but the tool block, evaluated apart once: the same length each time it is
        cached = [r["cached_tokens"] for r in first["rows"] + again["rows"]]
        assert cached[0] == 0 and len(set(cached) - {0}) == 1 and sum(c > 0 for c in cached) >= 6, cached
        assert first["n"] == 4 and first["exact"] >= 0.5  # the default model books most of these
    finally:
        engine.close()


def test_text_where_a_call_was_due_is_wrong_not_invalid(tmp_path):
    engine = Engine(get_settings(home=tmp_path / "home", threads=THREADS, n_ctx=2048, parallel=1))
    try:
        w = engine.worker(None)
        # tool_choice "none": the model must answer in text, while the teacher answered with a call
        s = evaluate.run(w, [_example("Book a ferry from Split for 2 people.", "Split", 2, tool_choice="none")], engine.settings)
        row = s["rows"][0]
        assert row["got"] == [] and not row["parsed"] and not row["tool_name"] and not row["exact"]
        assert row["valid"]  # no call came out, so none was malformed
    finally:
        engine.close()
    # one such answer among 60 held-out calls costs exact and tool name a sixtieth each: still promoted
    one_wrong = {"n": 60, "exact": 59 / 60, "valid": 1.0, "tool_name": 59 / 60}
    assert evaluate.gate(one_wrong) == (True, "meets the gate")
    assert not evaluate.gate({**one_wrong, "valid": 59 / 60})[0]  # a malformed call is not
    # a share just under the bar says so, not "0.90 < 0.90"
    assert evaluate.gate({"n": 69, "exact": 62 / 69, "valid": 1.0, "tool_name": 1.0}) == \
        (False, "below the gate: exact 0.899 (62 of 69) < 0.90")


def test_scores_are_remembered_by_what_decides_them(tmp_path):
    """A conversion that starts again (a seed outlives a session) reads back what it scored, and scores
    again what changed: other examples, or the default adapter's sampling defaults."""
    engine = Engine(get_settings(home=tmp_path / "home", threads=THREADS, n_ctx=2048, parallel=1))
    kept = tmp_path / "scores.json"
    try:
        w = engine.worker(None)
        settings = engine.settings
        first = evaluate.remembered(kept, w, EXAMPLES[:2], settings)
        real, calls = w.run, []
        w.run = lambda *a, **k: calls.append(a) or real(*a, **k)  # counts what is evaluated again
        again = evaluate.remembered(kept, w, EXAMPLES[:2], settings)
        assert calls == [] and _by_request(again) == _by_request(first) and again["exact"] == first["exact"]
        evaluate.remembered(kept, w, EXAMPLES[1:3], settings)  # another example: scored again
        assert len(calls) == 2
        # the default adapter's sampling defaults decide answers too: changed, the same examples score again
        store = AdapterStore(settings.adapters_dir)
        manifest = store.get(w.entry.id, w.entry.default_adapter).dir / "manifest.json"
        m = json.loads(manifest.read_text())
        manifest.write_text(json.dumps({**m, "sampling": {**m.get("sampling", {}), "close_bias": 0.0}}))
        evaluate.remembered(kept, w, EXAMPLES[:2], settings)
        assert len(calls) == 4
    finally:
        engine.close()


def test_a_narrow_wd1_miss_is_measured_again_and_judged_on_medians():
    """S4's device verdict (pipeline/select.settle) under the shipped background-agent profile: a first
    measurement that misses one bar narrowly (a busy moment) is measured twice more and judged on the
    medians; a wide miss or a pass is final after one measurement."""
    from edgeslm.pipeline import select
    from edgeslm.qualify.run import profiles
    from edgeslm.qualify.verdict import pick

    prof = pick(profiles(get_settings()), "background-agent")
    good = {"ttft_512_s": 1.5, "ttft_tools_s": 7.8, "decode_tps": 40.0, "tool_call_s": 0.4,
            "memory_ram_fraction": 0.03, "load_s": 2.0}
    busy = {**good, "ttft_tools_s": 12.4}
    again = iter([good, good])
    overall, how = select.settle(busy, lambda: next(again), prof)
    assert overall == "pass" and "ttft_tools_s 12.4 vs 10" in how and "median of 3" in how
    # contention that lasts: the medians fail too
    again = iter([busy, {**good, "ttft_tools_s": 11.0}])
    assert select.settle(busy, lambda: next(again), prof)[0] == "fail"

    def never():
        raise AssertionError("measured again")
    assert select.settle(good, never, prof) == ("pass", "")
    assert select.settle({**good, "ttft_tools_s": 40.0}, never, prof) == ("fail", "")


def test_a_refused_students_verdict_says_what_its_misses_got_wrong():
    """Seed 2's e-mail student was refused at 0.85 with no more said (session 45); all 9 misses filed to "inbox" what was due for
    "billing" or "support". The verdict names the arguments the misses got wrong most, with their commonest wrong values, and a call
    count that does not pair up; a student that meets the gate gets no such tail."""
    def row(got, want):
        return {"exact": data.exact(got, want), "ast": False, "tool_name": True, "parsed": True, "valid": True, "latency_s": 0.1,
                "prompt_tokens": 1, "completion_tokens": 1, "got": got, "want": want}

    def call(**a):
        return [{"name": "triage_email", "arguments": {"sender": "a@b.example", **a}}]

    rows = ([row(call(folder="inbox"), call(folder="billing"))] * 5 + [row(call(folder="inbox"), call(folder="support"))] * 4
            + [row(call(folder="inbox", priority="high"), call(folder="inbox"))] + [row([], call(folder="spam"))]
            + [row(call(folder="spam"), call(folder="spam"))] * 89)
    ok, why = evaluate.gate(evaluate.summarize(rows))
    assert not ok and why == ('below the gate: exact 0.890 (89 of 100) < 0.90; misses: folder 9 of 11 ("inbox" for "billing" 5, '
                              '"inbox" for "support" 4), priority 1 of 11 ("high" for none 1), 0 calls for 1 1 of 11')
    assert evaluate.gate(evaluate.summarize(rows[9:])) == (True, "meets the gate")
