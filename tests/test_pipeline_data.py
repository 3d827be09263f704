"""What the conversion pipeline trains and judges students on, below the models:
- the gate's held-out split (pipeline/data.gate_split): held-out values, and the calls that use them,
  never in training, so a student that memorized its generator's values fails the gate instead of
  passing by them, while calls that share a small vocabulary still leave most of a task to train on.
  Enum values and short strings recur legitimately and do not count;
- value swaps (pipeline/widen.swap_values): a captured call again with other captured calls' values,
  in the request and the call alike;
- the benchmark's wider workload (several calls per request, a text answer after a tool's result) as
  capture and curation keep it, and the facts such a text answer is judged by (data.result_facts)."""

import json
import random

from edgeslm.pipeline import data, widen

TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {
    "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}}}}


def _ex(city: str, unit: str = "celsius", n: int = 0) -> dict:
    args = json.dumps({"city": city, "unit": unit})
    return {"messages": [{"role": "user", "content": f"weather in {city}? ({n})"}], "tools": [TOOL],
            "answer": {"role": "assistant", "content": None,
                       "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": args}}]}}


def test_no_training_call_uses_a_held_out_value():
    cities = ["Lisbon", "Porto", "Faro", "Braga", "Évora"]
    examples = [_ex(c, n=i) for i in range(4) for c in cities]  # each city 4 times, in several calls
    idx = list(range(len(examples)))
    plain_train, plain_held = data.split(idx, examples)
    held_values = set().union(*(data.free_values(examples[i]) for i in plain_held))
    assert any(data.free_values(examples[i]) & held_values for i in plain_train)  # the plain split leaks values
    train, held = data.gate_split(idx, examples)
    assert sorted(train + held) == idx and len(held) == 4  # one city's 4 calls: a fifth of the task
    assert not set().union(*(data.free_values(examples[i]) for i in train)) & set().union(
        *(data.free_values(examples[i]) for i in held))


def test_a_shared_vocabulary_keeps_most_calls_for_training():
    """Calls that share a small vocabulary (several products per cart): picking held-out calls first and
    dropping every training call that shares a value with them left almost nothing to train on."""
    items = [f"item{k:02d}" for k in range(30)]
    rng = random.Random(0)
    examples = []
    for i in range(200):  # three values of thirty per call
        e = _ex("x", n=i)
        e["answer"]["tool_calls"] = [{"type": "function", "function": {"name": "get_weather", "arguments": json.dumps(
            {"city": c})}} for c in rng.sample(items, 3)]
        examples.append(e)
    idx = list(range(200))
    train, held = data.gate_split(idx, examples)
    train_values = set().union(*(data.free_values(examples[i]) for i in train))
    assert sorted(train + held) == idx and 20 <= len(held) <= 60 and len(train) >= 140
    assert all(data.free_values(examples[i]) - train_values for i in held)  # each asks for an unseen value


def test_enums_and_short_values_do_not_count_and_one_shared_value_keeps_the_plain_split():
    assert data.free_values(_ex("Lisbon", "fahrenheit")) == {"lisbon"}
    assert data.free_values(_ex("NY")) == set()
    same = [_ex("Lisbon", n=i) for i in range(6)]  # one value everywhere: holding it out leaves nothing
    assert data.gate_split(list(range(6)), same) == data.split(list(range(6)), same)
    short = [_ex("NY", n=i) for i in range(10)]  # no free-text value: the content-hash split
    assert data.gate_split(list(range(10)), short) == data.split(list(range(10)), short)
    # three common values and one rare: holding out the rare one's call alone would judge on 1 call
    common = [_ex(["Lisbon", "Porto", "Faro"][i % 3], n=i) for i in range(30)] + [_ex("Braga", n=99)]
    train, held = data.gate_split(list(range(31)), common)
    assert (train, held) == data.split(list(range(31)), common) and len(held) >= 5


def _call(text: str, args: dict) -> dict:
    return {"messages": [{"role": "user", "content": text}], "tools": [TOOL],
            "answer": {"role": "assistant", "content": None, "tool_calls": [
                {"type": "function", "function": {"name": "get_weather", "arguments": json.dumps(args)}}]}}


def test_swapped_values_change_in_the_request_and_the_call_alike():
    calls = [_call("Weather in Lisbon for 3 days, titled 'Trip to Lisbon'", {"city": "Lisbon", "days": 3,
                                                                           "note": "Trip to Lisbon", "unit": "celsius"}),
             _call("Porto, 5 days please", {"city": "Porto", "days": 5, "unit": "fahrenheit"}),
             _call("Forecast for Kraków over 12 days", {"city": "Kraków", "days": 12, "unit": "celsius"}),
             _call("Is it raining?", {"city": "Faro", "unit": "celsius"})]  # Faro is not stated: not in the pool
    pool = widen.value_pool(calls)
    assert pool[("get_weather", "city")] == ["Lisbon", "Porto", "Kraków"] and ("get_weather", "unit") not in pool
    for seed in range(20):
        e = widen.swap_values(calls[0], pool, random.Random(seed))
        text, args = e["messages"][0]["content"], json.loads(e["answer"]["tool_calls"][0]["function"]["arguments"])
        assert args["city"] in ("Porto", "Kraków") and args["days"] in (5, 12) and args["unit"] == "celsius"
        assert text == f"Weather in {args['city']} for {args['days']} days, titled '{args['note']}'", (text, args)
        assert "Lisbon" not in json.dumps(e, ensure_ascii=False) or args["note"] != "Trip to Lisbon"
    assert calls[0]["answer"]["tool_calls"][0]["function"]["arguments"].count("Lisbon") == 2  # the original stays
    assert widen.swap_values(calls[3], pool, random.Random(0)) is None  # nothing it states has another value


def test_the_wider_workload_is_captured_curated_and_judged_as_its_teacher_answered(tmp_path):
    """The benchmark's 8 task types through the proxy in front of the scripted teacher, then curation:
    several calls per request stay several calls, and after a tool's result the teacher's text is the
    answer, whose facts (the result's values it states) are what a student's text must state."""
    from openai import OpenAI

    from benchmarks import synthetic
    from benchmarks._server import app_in_thread
    from benchmarks.teacher import create_teacher
    from edgeslm.pipeline import curate
    from edgeslm.pipeline.proxy import create_proxy
    from edgeslm.store.capture import CaptureStore

    calls = synthetic.workload(4, seed=7, tasks=synthetic.ALL, spanish=0.5)
    assert {c["task"] for c in calls} == set(synthetic.ALL) and len(calls) == 32
    assert any(len(c["calls"]) > 1 for c in calls) and any(c.get("reply") for c in calls)
    assert any(not c["messages"][1]["content"].isascii() for c in calls)
    store = CaptureStore(tmp_path / "calls.db")
    with app_in_thread(create_teacher(calls)) as teacher, app_in_thread(create_proxy(teacher, store)) as proxy:
        agent = OpenAI(base_url=proxy + "/v1", api_key="sk-agent", max_retries=0, timeout=30)
        for i, c in enumerate(calls):
            kw = {"model": "teacher", "messages": c["messages"], "tools": c["tools"]}
            if i % 3 == 2:  # streamed: the pieces add up to the same answer
                text, pieces = "", {}
                for ch in agent.chat.completions.create(**kw, stream=True):
                    d = ch.choices[0].delta if ch.choices else None
                    text += (d.content or "") if d else ""
                    for tc in (d.tool_calls or []) if d else []:
                        p = pieces.setdefault(tc.index, {"name": "", "arguments": ""})
                        p["name"] += tc.function.name or ""
                        p["arguments"] += tc.function.arguments or ""
                got = [{"name": p["name"], "arguments": json.loads(p["arguments"])} for _, p in sorted(pieces.items())]
            else:
                m = agent.chat.completions.create(**kw).choices[0].message
                text, got = m.content, [{"name": t.function.name, "arguments": json.loads(t.function.arguments)}
                                        for t in m.tool_calls or []]
            assert synthetic.answered(c, got, text), (c, got, text)
            assert not synthetic.answered(c, got[:-1] if got else [{"name": "x", "arguments": {}}], text[:5] if text else None)
    store.close()
    curate.curate(tmp_path / "calls.db", tmp_path / "curated.db")
    examples = curate.examples(tmp_path / "curated.db")
    assert len(examples) == len(calls)
    assert sorted(len(data.teacher_calls(e)) for e in examples) == sorted(len(c["calls"]) for c in calls)
    replies = [e for e in examples if not data.teacher_calls(e)]
    assert replies and all(len(data.result_facts(e)) == 2 for e in replies)  # the status and the date
    facts = data.result_facts(replies[0])
    assert data.states(replies[0]["answer"]["content"], facts)
    assert not data.states("I could not find that order.", facts) and not data.states(None, [])


def test_result_facts_are_the_results_values_the_answer_states():
    ex = {"messages": [{"role": "user", "content": "order 7?"},
                       {"role": "assistant", "content": None, "tool_calls": [{"id": "a", "type": "function",
                                                                               "function": {"name": "f", "arguments": "{}"}}]},
                       {"role": "tool", "tool_call_id": "a", "content": json.dumps(
                           {"status": "Delayed", "eta": "2027-01-02", "items": [{"sku": "Crème-9"}], "n": 3, "ok": True})}],
          "answer": {"role": "assistant", "content": "It is delayed until 2027-01-02 (crème-9).", "tool_calls": None}}
    # case-insensitive; nested values count; values the answer does not state (3, True) do not
    assert data.result_facts(ex) == ["Delayed", "2027-01-02", "Crème-9"]
    assert data.states("Delayed: arrives 2027-01-02, crème-9 included", data.result_facts(ex))
    assert not data.states("Delayed: arrives soon, Crème-9 included", data.result_facts(ex))
    # a call as the answer, or a result that came before the last user message, gives no facts
    assert data.result_facts({**ex, "messages": ex["messages"] + [{"role": "user", "content": "thanks"}]}) == []


EVENT = {"type": "function", "function": {"name": "create_event", "parameters": {"type": "object", "properties": {
    "title": {"type": "string"}, "date": {"type": "string"}, "time": {"type": "string"}, "attendee": {"type": "string"}},
    "required": ["title", "date"]}}}


def _event(text: str, **args) -> dict:
    return {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}], "tools": [EVENT],
            "answer": {"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {
                "name": "create_event", "arguments": json.dumps(args)}}]}}


def test_an_optional_value_is_left_out_of_the_request_and_the_call_alike():
    ex = _event("Put Budget review on 2026-03-02 at 10:30 with ana@example.org", title="Budget review",
                date="2026-03-02", time="10:30", attendee="ana@example.org")
    seen = set()
    for seed in range(20):
        d = widen.drop_optional(ex, random.Random(seed))
        text, args = d["messages"][-1]["content"], data.teacher_calls(d)[0]["arguments"]
        gone = {"time", "attendee"} - set(args)
        assert len(gone) == 1 and {"title", "date"} <= set(args), args  # required values are never dropped
        seen |= gone
        assert all(str(v) in text for v in args.values()) and not any(str(ex_v) in text for k, ex_v in
                                                                       [("time", "10:30"), ("attendee", "ana@example.org")] if k in gone)
        assert d["messages"][0] == ex["messages"][0] and ex["messages"][-1]["content"].startswith("Put Budget")
    assert seen == {"time", "attendee"}
    # a value not led by a preposition, or stated twice, is not cut (the request would read wrong)
    assert widen.drop_optional(_event("Budget review 2026-03-02 10:30", title="Budget review", date="2026-03-02",
                                        time="10:30"), random.Random(0)) is None
    assert widen.cut("meet at 10:30, or at 10:30 tomorrow", "10:30") is None


def test_a_request_without_a_required_value_is_answered_with_a_question():
    ex = _event("Schedule 'Board call' on 2026-05-01", title="Board call", date="2026-05-01")
    a = widen.ask_missing(ex, random.Random(1))
    assert a["messages"][-1]["content"] == "Schedule on 2026-05-01" or a["messages"][-1]["content"] == "Schedule 'Board call'"
    assert not data.teacher_calls(a) and a["answer"]["content"].endswith("?")
    assert ("title" in a["answer"]["content"]) == ("Board call" not in a["messages"][-1]["content"])
    fit = [ex, _event("Add Sync on 2026-01-09 at 09:00", title="Sync", date="2026-01-09", time="09:00")]
    out, added = widen.widened(fit, 0, seed=3, drop=1.0, ask=1.0)
    assert added == len(out) - 2 and added >= 3  # one drop (the second has a time) and two asks
    # a value some request leaves to be inferred is never asked for: here the date of "tomorrow"
    implied = [_event("Add Sync on 2026-01-09", title="Sync", date="2026-01-09"),
               _event("Add an event called Retro tomorrow", title="Retro", date="2026-01-10")]
    assert widen.always_stated(implied) == {("create_event", "title")}
    assert "date" in widen.ask_missing(implied[0], random.Random(0))["answer"]["content"]  # without the rule
    out, _ = widen.widened(implied, 0, seed=3, ask=1.0)
    asked = [e["answer"]["content"] for e in out if not data.teacher_calls(e)]
    assert len(asked) == 1 and "title" in asked[0]


def test_name_values_are_widened_by_rule_to_several_words_and_letters_outside_ascii():
    pool = {("get_weather", "city"): ["Quito", "Lima", "Perth", "Accra", "Dakar", "Oslo"],
            ("create_event", "date"): ["2026-03-02", "2026-01-09"]}
    out = widen.opened(pool, random.Random(0))
    made = out[("get_weather", "city")][6:]
    assert out[("get_weather", "city")][:6] == pool[("get_weather", "city")] and len(made) == 3
    assert all(" " in m or not m.isascii() for m in made)  # joined, or accented
    assert out[("create_event", "date")] == pool[("create_event", "date")]  # not names: left alone
    closed = widen.opened(pool, random.Random(0), set())  # no open set: left alone
    assert closed == pool
    # open sets: no enum, and most values stated once; units recur and an enum's values never open
    units = {"type": "function", "function": {"name": "convert", "parameters": {"type": "object", "properties": {
        "to": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}, "place": {"type": "string"}}}}}
    fit = [{"messages": [{"role": "user", "content": f"to {to} in {unit} at {place}"}], "tools": [units],
            "answer": {"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {
                "name": "convert", "arguments": json.dumps({"to": to, "unit": unit, "place": place})}}]}}
           for n, (to, unit, place) in enumerate((["grams", "liters", "meters"][n % 3], ["celsius", "fahrenheit"][n % 2],
                                                  f"Town{chr(97 + n)}") for n in range(12))]
    assert widen.open_sets(fit) == {("convert", "place")}
    assert widen.open_sets(fit[:3]) == {("convert", "to"), ("convert", "place")}  # too few calls to tell: open
    # drawn from `opened`, a swap writes the made value whole in the request and the call alike
    ex = _ex("Lima", n=1)
    e = widen.swap_values(ex, {("get_weather", "city"): ["Lima", "São Tomé Príncipe"]}, random.Random(0))
    assert "São Tomé Príncipe" in e["messages"][0]["content"] and data.teacher_calls(e)[0]["arguments"]["city"] == "São Tomé Príncipe"


def test_free_text_values_are_widened_by_crossing_words_and_drawing_digits_again():
    refs = ["Miete #4471", "Faktura März", "Invoice Q3 2026", "Rent June", "Loyer flat 3B", "Gift for Zoë"]
    pool = {("send_money", "reference"): refs}
    made = [m for seed in range(20) for m in widen.opened(pool, random.Random(seed))[("send_money", "reference")][6:]]
    assert made and not set(made) & set(refs)
    words = {w for r in refs for w in r.split()}
    shape = lambda v: "".join("9" if ch.isdigit() else ch for ch in v)  # noqa: E731
    crossed = [m for m in made if set(m.split()) <= words]
    redrawn = [m for m in made if m not in crossed and any(ch.isdigit() for ch in m)]
    accented = [m for m in made if m not in crossed + redrawn]
    assert crossed and redrawn  # both rules draw
    # a redrawn code keeps its letters and marks, and only its digits differ
    assert all(shape(m) in {shape(r) for r in refs} for m in redrawn)
    # where both values drawn are words alone, the names' rule: one letter accented ("Fakturà März")
    assert all(not m.isascii() and len(m) in {len(r) for r in refs} for m in accented)
    # a value a held-out call states is never made, even where the rules would make it
    every = {m for seed in range(200) for m in widen.opened(pool, random.Random(seed))[("send_money", "reference")]}
    assert "Miete June" in every
    avoided = {m for seed in range(200) for m in widen.opened(pool, random.Random(seed), None, frozenset({"Miete June"}))[
        ("send_money", "reference")]}
    assert "Miete June" not in avoided and avoided >= set(refs)


def test_a_stated_enum_value_is_what_the_call_takes():
    mail = {"type": "function", "function": {"name": "triage_email", "parameters": {"type": "object", "properties": {
        "sender": {"type": "string"}, "priority": {"type": "string", "enum": ["low", "normal", "high"]}},
        "required": ["sender", "priority"]}}}
    ex = {"messages": [{"role": "user", "content": "I got an invoice from a@b.co"}], "tools": [mail],
          "answer": {"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {
              "name": "triage_email", "arguments": json.dumps({"sender": "a@b.co", "priority": "normal"})}}]}}
    seen = set()
    for seed in range(30):
        s = widen.state_enum(ex, random.Random(seed))
        text, args = s["messages"][-1]["content"], data.teacher_calls(s)[0]["arguments"]
        assert "I got an invoice from a@b.co" in text and args["sender"] == "a@b.co"
        assert args["priority"] in text.lower() and "priority" in text  # stated, and taken
        seen.add(args["priority"])
    assert seen == {"low", "normal", "high"}
    # a request that already states one of the enum's values is left as it is
    said = {**ex, "messages": [{"role": "user", "content": "high priority: the invoice from a@b.co"}]}
    assert widen.state_enum(said, random.Random(0)) is None


def test_a_copy_may_end_on_its_last_value_and_a_share_of_0_widens_as_before():
    order = {"type": "function", "function": {"name": "get_order_status", "parameters": {"type": "object",
             "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}}

    def ex(text: str, oid: str) -> dict:
        return {"messages": [{"role": "user", "content": text}], "tools": [order],
                "answer": {"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {
                    "name": "get_order_status", "arguments": json.dumps({"order_id": oid})}}]}}

    bare = widen.bare_end(ex("Where is my order K-58213?", "K-58213"), random.Random(0))
    assert bare["messages"][-1]["content"] == "Where is my order K-58213" and data.teacher_calls(bare) == \
        [{"name": "get_order_status", "arguments": {"order_id": "K-58213"}}]
    assert widen.bare_end(ex("Order K-58213, where is it?", "K-58213"), random.Random(0)) is None  # not last
    assert widen.bare_end(ex("status of order K-58213", "K-58213"), random.Random(0)) is None  # nothing to drop
    fit = [ex(f"Where is my order K-{n}?", f"K-{n}") for n in range(58210, 58230)]
    plain, n_plain = widen.widened(fit, 1, 0, drop=0.2)
    assert widen.widened(fit, 1, 0, drop=0.2, bare=0.0) == (plain, n_plain)
    more, n_more = widen.widened(fit, 1, 0, drop=0.2, bare=0.5)
    assert more[:len(plain)] == plain and n_more > n_plain
    assert all(not e["messages"][-1]["content"].endswith("?") for e in more[len(plain):])


def _read_amount(said: str) -> float:
    """An amount read back as a person means it: a final separator before exactly two digits is the
    decimal one; every other separator groups thousands."""
    import re

    if said.endswith("k"):
        return float(said[:-1]) * 1000
    m = re.fullmatch(r"(.*?)[.,](\d\d)", said)
    whole, cents = (m.group(1), m.group(2)) if m else (said, "0")
    return int(re.sub(r"[ .,]", "", whole)) + int(cents) / 100


def _read_time(said: str) -> str:
    import re

    if said == "noon":
        return "12:00"
    m = re.fullmatch(r"(\d{1,2})(?::(\d\d))? ?(am|pm|AM|PM|in the morning|in the afternoon|in the evening)?", said)
    assert m, said
    h, mins, half = int(m.group(1)), int(m.group(2) or 0), (m.group(3) or "").lower()
    if half in ("pm", "in the afternoon", "in the evening") and h != 12:
        h += 12
    return f"{h:02d}:{mins:02d}"


def test_the_workloads_free_forms_say_what_the_teachers_calls_hold():
    """The convert workload writes dates, times and amounts as people do, and the scripted teacher answers
    the canonical value: each form, read back, is that value (a generator that wrote 1.200,5 for 1200.05
    or 3pm for 03:00 would teach its students wrong answers)."""
    import random

    from benchmarks import synthetic

    rng = random.Random(0)
    for _ in range(2000):
        said, hhmm = synthetic.time_forms(rng)
        assert _read_time(said) == hhmm
        amount = synthetic.draw_amount(rng)
        assert abs(_read_amount(synthetic.amount_forms(amount, rng)) - amount) < 1e-9
    forms = {synthetic.amount_forms(1200.5, random.Random(s)) for s in range(200)}
    assert {"1200.50", "1,200.50", "1.200,50", "1 200,50"} <= forms


def test_the_dev_requests_are_valid_calls_apart_from_the_handwritten_ones():
    """benchmarks/data/convert_dev.jsonl (what a pipeline change is chosen on) holds 20 requests per task
    type (the second 10 written in session 41 by a helper that did not see the hand-written file), each answer a valid call of the task's tool, and shares no request and no call with the
    hand-written file that grades: a change chosen on one is judged on the other."""
    from benchmarks import handwritten, synthetic

    dev, graded = handwritten.rows(handwritten.DEV), handwritten.rows(handwritten.HANDWRITTEN)
    assert {t: sum(r["task"] == t for r in dev) for t in synthetic.ALL} == {t: 20 for t in synthetic.ALL}
    for r in dev:
        tool = synthetic.TOOLS[r["task"]]["function"]
        for call in r["calls"]:
            props, args = tool["parameters"]["properties"], call["arguments"]
            assert call["name"] == tool["name"] and set(tool["parameters"]["required"]) <= set(args) <= set(props), r
            assert all(v in props[k].get("enum", [v]) for k, v in args.items()), r
    calls = {json.dumps(r.get("calls") or [r["call"]], sort_keys=True) for r in graded}
    assert not {json.dumps(r["calls"], sort_keys=True) for r in dev} & calls
    assert not {r["request"].lower() for r in dev} & {r["request"].lower() for r in graded}
