"""A student's questions for a value are leaned away from while the request states a value of the kind
(decoding/asks.py, pipeline/widen.asks, Preparer._shun, generation's first token). The real students' answers are
measured by `python -m benchmarks.handwritten` (a benchmark: it needs a convert home's students)."""

import json
import random
from types import SimpleNamespace

import numpy as np

from edgeslm.decoding import asks
from edgeslm.generation import _merged
from edgeslm.pipeline import widen
from edgeslm.types import Message, OutputSpec, ToolSpec


def test_a_parameters_kind_is_what_every_captured_value_is():
    assert asks.kind(["Paris", "São Paulo", "Kraków"]) == "name"
    assert asks.kind(["a@b.com", "x.y@z.org"]) == "email"
    assert asks.kind(["ORD-1234", "#Z0093321", "A77B-0042"]) == "code"
    assert asks.kind([3, "14"]) == "number" and asks.kind(["18:30", "09:05"]) == "clock" and asks.kind(["9:05"]) is None
    assert asks.kind(["DE44500105175407324931", "PL61 1090 1014"]) == "code"  # an IBAN is no name; in groups, one code
    assert asks.kind(["Flat 12"]) is None and asks.kind(["12B Elm St, Leeds"]) == "address"  # a code's first group has both
    src = "Transfer 2,345.60 CHF to LI21 0881 0000 2324 013A A, ref ORD123 to Bo"
    assert [src[a:b] for a, b in asks.codes(src)] == ["LI21 0881 0000 2324 013A A", "ORD123"]  # lower-case words are no group
    assert asks.kind(["inbox", "spam"]) is None and asks.kind(["ORD-1234", "5561029"]) is None and asks.kind([]) is None


def test_a_request_states_a_value_of_a_kind():
    assert asks.states("Do I need an umbrella in Reykjavík over the next four days?", "name")
    assert asks.states("give me one day of wether for New Delhi", "name")
    assert not asks.states("Do I need an umbrella today?", "name")  # "Do" and "I" are no names
    assert not asks.states("Paris weather?", "name")  # a sentence's first word says nothing
    assert asks.states("refund request from a.moreau@laposte.fr, please triage", "email")
    assert not asks.states("refund request, please triage", "email")
    assert asks.states("track order no. #Z0093321", "code") and asks.states("eta on 5561029", "number")
    assert not asks.states("eta on 5561029", None) and not asks.states("x", ["name"]) and not asks.states("x", "colour")
    assert asks.texts({"texts": ["What city?", "", 7]}) == ["What city?"] and asks.texts({"texts": "What city?"}) == []


def _example(text: str, city: str) -> dict:
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string", "description": "The city name"},
                                         "days": {"type": "integer"}}, "required": ["city"]}}}
    call = {"type": "function", "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}}
    return {"messages": [{"role": "user", "content": text}], "tools": [tool],
            "answer": {"role": "assistant", "content": None, "tool_calls": [call]}}


def test_s5_records_what_a_student_was_taught_to_ask():
    fit = [_example("Weather in Paris?", "Paris"), _example("Is it cold in São Paulo now?", "São Paulo")]
    got = widen.asks(fit)
    assert got == [{"tool": "get_weather", "param": "city", "kind": "name", "texts": widen.ask_texts("city", {
        "description": "The city name"})}]
    assert widen.ask_for("city", {"description": "The city name"}, random.Random(0)) in got[0]["texts"]
    assert widen.asks([_example("Weather, please", "Paris")]) == []  # a value the request leaves to be inferred


def test_the_server_shuns_a_question_for_a_value_the_request_states():
    from edgeslm.preparation import Preparer

    p = Preparer.__new__(Preparer)
    words: dict[str, int] = {}
    p.backend = SimpleNamespace(tokenize=lambda text, add_bos, special: [words.setdefault(w, len(words)) for w in text.split()])
    student = SimpleNamespace(manifest={"training": {"asks": [
        {"tool": "get_weather", "param": "city", "kind": "name", "texts": ["What is the city?", 3]},
        {"tool": "send_money", "param": "iban", "kind": "code", "texts": ["What is the IBAN?"]}]}})
    spec = OutputSpec("tools", [ToolSpec("get_weather", "", {})])
    got = p._shun([Message("user", "Do I need an umbrella in Reykjavík?")], spec, [student])
    assert got == [[words["What"], words["is"], words["the"], words["city?"]]]  # send_money is not offered
    assert p._shun([Message("user", "Do I need an umbrella today?")], spec, [student]) == []  # nothing to ask? ask
    assert p._shun([Message("user", "Umbrella in Oslo?")], OutputSpec("tools", spec.tools, tool_choice="required"),
                   [student]) == []
    for junk in (None, [1, 2], "asks", {"asks": "What city?"}, {"asks": ["What city?", 3]}):  # an imported record is any JSON
        assert p._shun([Message("user", "Umbrella in Oslo?")], spec, [SimpleNamespace(manifest={"training": junk})]) == []


def test_the_first_tokens_lift_holds_the_call_lean_and_the_shun_together():
    a = (np.array([5, 9]), np.array([4.0, 4.0]))
    b = (np.array([9, 2]), np.array([-4.0, -4.0]))
    ids, amounts = _merged(a, b)
    assert dict(zip(ids.tolist(), amounts.tolist(), strict=True)) == {2: -4.0, 5: 4.0, 9: 0.0}
    assert _merged(None, b) is b and _merged(a, None) is a and _merged(None, None) is None


def test_a_call_is_due_where_a_students_question_is_shunned():
    """Seed 1's e-mail student asked "What is the sender?" of 16 of 20 dev requests that name the sender: its record holds
    other phrasings ("Sure, ...", "Could you ..."), which the shun took, and the request fit the tools poorly enough that the
    call lean pushed the call's opener down. Where a question is shunned on a user's turn (Job.asked), the opener gets all of
    call_bias (session 42)."""
    from edgeslm.decoding.copying import Copier, Leans
    from edgeslm.decoding.said import Ranking

    openers = np.array([7, 8])
    poor = Copier("refund request from a.moreau@laposte.fr", lambda t: b"x", Leans(call=4.0), Ranking({}, 0.1), openers=openers)
    ids, amounts = poor.open()
    assert ids.tolist() == [7, 8] and max(amounts) < 0  # the request reads unlike the tools
    ids, amounts = poor.open(due=True)
    assert ids.tolist() == [7, 8] and amounts.tolist() == [4.0, 4.0]
    assert Copier("x", lambda t: b"x", Leans(call=0.0), Ranking({}, 0.1), openers=openers).open(due=True) is None  # lean off
    assert Copier("x", lambda t: b"x", Leans(call=4.0), Ranking({}, 0.1)).open(due=True) is None  # no openers


def _cc_example(text: str, attendee: str | None) -> dict:
    args = {"title": "Sync", **({"attendee": attendee} if attendee else {})}
    e = _example(text, "x")
    e["answer"]["tool_calls"][0]["function"] = {"name": "create_event", "arguments": json.dumps(args)}
    e["tools"] = [{"type": "function", "function": {"name": "create_event", "parameters": {"type": "object", "properties": {
        "title": {"type": "string"}, "attendee": {"type": "string"}}}}}]
    return e


def test_s5_records_each_parameters_kind_and_the_server_reads_it_back():
    fit = [_cc_example("Put Sync on, invite ana@x.org", "ana@x.org"), _cc_example("Sync, cc bo.li@y.co.uk", "bo.li@y.co.uk"),
           _cc_example("Sync please", None)]
    assert widen.kinds(fit) == {"create_event": {"attendee": "email", "title": "name"}}
    assert asks.kinds({"training": {"kinds": {"create_event": {"attendee": "email", "title": "colour", "x": 3}}}}) == {
        "create_event": {"attendee": "email"}}
    for junk in (None, [1], "kinds", {"kinds": ["email"]}, {"kinds": {"t": "email"}}):  # an imported record is any JSON
        assert asks.kinds({"training": junk}) in ({}, {"t": {}}) or asks.kinds({"training": junk}) == {}


# a student's parameter of e-mail addresses (copying.Copier with `kinds`): a vocabulary of whole pieces, split greedily
VOCAB = ["Lena", " Hoffmann", "lena", ".h", "@", "mail", ".de", '"', '",', "l", "ena", "my", " sister"]


def _split(text: str) -> list[int]:
    out = []
    while text:
        best = max((p for p in VOCAB if text.startswith(p)), key=len, default=None)
        if best is None:
            return []
        out.append(VOCAB.index(best))
        text = text[len(best):]
    return out


def _student(kinds: dict | None, source: str = "Lena Hoffmann, lena.h@mail.de, can't log in. Support, normal."):
    from edgeslm.decoding.copying import MID_NAME, SLOT, Copier, Leans

    c = Copier(source, lambda t: VOCAB[t].encode() if t < len(VOCAB) else b"qq", Leans(copy=4.0), tokenize=_split, kinds=kinds)
    return c, 4.0 * MID_NAME * SLOT


def test_a_students_address_parameter_is_held_on_the_requests_address_along_its_own_split():
    kinds = {"triage_email": {"sender": "email"}}
    c, hold = _student(kinds)
    logits = np.full(len(VOCAB), -30.0)
    logits[[VOCAB.index("Lena"), VOCAB.index("l"), VOCAB.index("my")]] = [10.0, 9.0, 8.0]
    c.begin("triage_email")
    c.feed('{"sender": "')
    ids, amounts = c.boost(logits, None)
    # the address's first piece as the tokenizer splits it, 40 logits down; not the name before it, nor "l" that also begins it
    assert dict(zip(ids.tolist(), amounts.tolist(), strict=True)) == {VOCAB.index("lena"): hold}
    c.feed("lena")
    assert c.boost(logits, None)[0].tolist() == [VOCAB.index(".h")]
    c.feed(".h@mail.de")
    logits[VOCAB.index('",')] = -20.0  # closing on the whole address, though a run-on piece is the best
    assert c.boost(logits, None)[0].tolist() == [VOCAB.index('",')]  # (a closer 40 down stays there)
    # once written, the address is no longer due for another parameter of the kind
    c.feed('", "cc": "')
    c.kept.kinds["triage_email"]["cc"] = "email"
    assert c.kept.due("triage_email", c.w.n, c.args, c.w.written) == ()
    got = c.boost(logits, None)
    assert got is None or VOCAB.index("lena") not in got[0].tolist()


def test_without_a_kind_or_off_the_address_the_copy_lean_is_as_before():
    logits = np.full(len(VOCAB), -30.0)
    logits[[VOCAB.index("Lena"), VOCAB.index("my")]] = [10.0, 8.0]
    for kinds in (None, {"triage_email": {"sender": "name"}}, {"other_tool": {"sender": "email"}}):
        c, hold = _student(kinds)
        c.begin("triage_email")
        c.feed('{"sender": "')
        got = c.boost(logits, None)
        assert got is not None and VOCAB.index("lena") not in got[0].tolist() and max(got[1]) < hold
    c, hold = _student({"triage_email": {"sender": "email"}}, "my sister sent lena.h@mail.de a note")
    c.begin("triage_email")
    c.feed('{"sender": "my')  # the value left the address: the ordinary lean copies on ("my sister")
    logits[VOCAB.index(" sister")] = 7.0
    got = c.boost(logits, None)
    assert got is not None and VOCAB.index(" sister") in got[0].tolist() and max(got[1]) < hold


def test_a_students_time_parameter_is_held_on_the_requests_time_as_its_calls_wrote_it():
    global VOCAB
    saved, VOCAB = VOCAB, ["0", "9", ":", "15", "1", "19", "half", " past", '",', "x"]
    try:
        c, hold = _student({"create_event": {"time": "clock"}}, "Debrief on 3 November 2026 at 9:15 with the team")
        logits = np.full(len(VOCAB), -30.0)
        logits[[VOCAB.index("19"), VOCAB.index("half")]] = [10.0, 9.0]
        c.begin("create_event")
        c.feed('{"title": "Debrief", "time": "')
        ids, amounts = c.boost(logits, None)  # 09:15, as the student's calls wrote a time, and not 19:15
        assert dict(zip(ids.tolist(), amounts.tolist(), strict=True)) == {VOCAB.index("0"): hold}
        c2, _ = _student({"create_event": {"time": "clock"}}, "Vet at half past seven in the evening")
        assert c2.kept.stated["clock"] == ("19:30",)
    finally:
        VOCAB = saved


def test_a_students_date_parameter_is_recorded_and_its_other_parameters_stay_off_the_date():
    assert asks.kind(["2027-01-22", "2026-12-05"]) == "date" and asks.kind(["2027-1-22"]) is None
    assert asks.states("deliver on August 19, 2027", "date") and not asks.states("deliver in 2027", "date")
    global VOCAB
    saved, VOCAB = VOCAB, ["2", "0", "21", "1", "Baker", "7", "42", "August", '",', "x"]
    try:
        kinds = {"schedule_delivery": {"date": "date"}}
        c, hold = _student(kinds, "Deliver 2027-01-22 221 Baker Street")
        logits = np.full(len(VOCAB), -30.0)
        logits[[VOCAB.index("0"), VOCAB.index("21")]] = [10.0, 9.0]
        c.begin("schedule_delivery")
        c.feed('{"address": "2')  # "2" begins both the date and "221": "0" leads into the date alone
        lift = dict(zip(*(a.tolist() for a in c.boost(logits, None)), strict=True))
        assert lift[VOCAB.index("0")] == -hold and lift[VOCAB.index("21")] > 0
        # once the date is written, or for a parameter of dates itself, nothing is kept off it
        c.feed('21 Baker Street", "date": "')
        assert c.kept.off("schedule_delivery", c.args, c.w.written) is None
        assert c.kept.due("schedule_delivery", c.w.n, c.args, c.w.written) == ("2027-01-22",)
        c2, _ = _student(kinds, "Deliver on August 19, 2027 to 742 Evergreen Terrace")
        c2.begin("schedule_delivery")
        c2.feed('{"address": "')
        logits = np.full(len(VOCAB), -30.0)
        logits[[VOCAB.index("August"), VOCAB.index("7"), VOCAB.index("x")]] = [10.0, 2.0, 3.0]
        lift = dict(zip(*(a.tolist() for a in c2.boost(logits, None)), strict=True))
        # the lean reads from the best of the rest: "742", 8 logits down, is lifted past the junk just above it
        assert lift[VOCAB.index("August")] == -hold and 2.0 + lift[VOCAB.index("7")] > 3.0 + lift.get(VOCAB.index("x"), 0.0)
        c3, _ = _student(None, "Deliver 2027-01-22 221 Baker Street")  # no record of kinds: as before
        c3.begin("schedule_delivery")
        c3.feed('{"address": "2')
        logits = np.full(len(VOCAB), -30.0)
        logits[[VOCAB.index("0"), VOCAB.index("21")]] = [10.0, 9.0]
        assert all(a > 0 for a in c3.boost(logits, None)[1])
    finally:
        VOCAB = saved


def test_a_students_address_is_not_closed_before_its_town():
    assert asks.kind(["742 Evergreen Terrace, Springfield", "Hauptstraße 12, Berlin"]) == "address"
    assert asks.kind(["Paris, France"]) is None and asks.kind(["12 Main St"]) is None
    assert not asks.states("10 Downing Street, London", "address")  # no kind a request is read for
    assert asks.kinds({"training": {"kinds": {"schedule_delivery": {"address": "address"}}}}) == {
        "schedule_delivery": {"address": "address"}}
    global VOCAB
    saved, VOCAB = VOCAB, ["10", " Downing", " Street", '",', ",", " London", "x"]
    try:
        c, _ = _student({"schedule_delivery": {"address": "address"}}, "Deliver to 10 Downing Street, London on 2027-01-22")
        c.begin("schedule_delivery")
        c.feed('{"address": "10 Downing Street')
        logits = np.full(len(VOCAB), -30.0)
        logits[[VOCAB.index('",'), VOCAB.index(",")]] = [10.0, 7.0]
        lift = dict(zip(*(a.tolist() for a in c.boost(logits, None)), strict=True))
        assert VOCAB.index('",') not in lift and 7.0 + lift[VOCAB.index(",")] > 10.0  # on to the town
        c.feed(", London")
        assert not c.kept.short("schedule_delivery", c.args, c.args.value)  # the town written: it may close
        # no record: as before (without "to" before it, which makes ", London" a place's region for anyone: said.cut)
        c2, _ = _student(None, "Deliver 10 Downing Street, London on 2027-01-22")
        c2.begin("schedule_delivery")
        c2.feed('{"address": "10 Downing Street')
        assert VOCAB.index('",') in dict(zip(*(a.tolist() for a in c2.boost(logits, None)), strict=True))
    finally:
        VOCAB = saved


def test_a_students_time_or_address_left_holds_the_arguments_open():
    """Seed 1's calendar student closed its arguments after the date of "Piano recital, 2027-02-14, 18:45", 12.7 logits above
    going on (5 of its 8 dev misses, session 43). While a parameter of the tool of times, dates or e-mail addresses is
    unwritten and the request states a value of its kind that no call holds, and the model would close the arguments, going
    on gets the hold (Kept.left); once written, where the model would not close (inside an address: "Bahnhofstrasse 3" of
    "Bahnhofstrasse 3, 8001 Zürich"), or where a string value does not end a phrase ("Piano" of "Piano recital"), as before."""
    from edgeslm.decoding.copying import MID_NAME, SLOT, Copier, Leans

    kinds = {"create_event": {"date": "date", "time": "clock", "attendee": "email", "title": "name"}}
    pieces = {0: b'",', 1: b'"}}', 2: b",", 3: b"}}"}
    src = "the one I need in the calendar is Piano recital, 2027-02-14, 18:45."
    c = Copier(src, lambda t: pieces.get(t, b"qq"), Leans(copy=4.0, close=5.0, left=6.0), tools=[
        ToolSpec("create_event", "Create a calendar event.", {"properties": {p: {} for p in kinds["create_event"]}})],
        commas=np.array([0, 1, 2, 3]), tokenize=lambda text: [9] * len(text), kinds=kinds)
    c.begin("create_event")
    c.feed('{"title": "Piano recital", "date": "2027-02-14')
    at = src.index("18:45")
    assert [s[:2] for s in c.kept.left("create_event", c.args, c.w.written)] == [(at, at + 5)]  # not the date being written
    closing = np.array([26.5, 39.2, 0.0, 0.0])  # the model would close the arguments
    ids, amounts = c.ending.more_args(np.ones(4, dtype=bool), closing)
    assert ids.tolist() == [0] and amounts.tolist() == [4.0 * MID_NAME * SLOT + 6.0]  # the hold and the left lean
    ids, amounts = c.ending.more_args(np.ones(4, dtype=bool), closing[[1, 0, 2, 3]])  # it would go on, or run on inside a value
    assert amounts.tolist() == [6.0]  # the left lean alone
    c.feed('", "time": "18:45')
    got = c.ending.more_args(np.ones(4, dtype=bool), closing)
    assert c.kept.left("create_event", c.args, c.w.written) == [] and (got is None or max(got[1]) <= 5.0)
    c.begin("create_event")
    c.feed('{"title": "Piano')
    ids, amounts = c.ending.more_args(np.ones(4, dtype=bool), closing)  # "Piano" ends no phrase of the request: not pushed on
    assert dict(zip(ids.tolist(), amounts.tolist(), strict=True)).get(0, 0.0) <= 0.0


def test_a_students_value_does_not_run_on_into_another_parameters_date():
    """Seed 0's calendar student wrote the title of "Crea un evento llamado Cena con Lucía el 21 de mayo de 2027 a las 21:00"
    as "Cena con Lucía el 21 de mayo de 2027" (" el" 3.3 logits above closing, session 44). Where a value stands whole right
    before a date, time or address a parameter not written yet is due to hold, at most two joining words between
    (Kept.before), going on is shunned and the lean reads from the closers; not once that parameter is written, nor without
    a record of kinds, nor where the value stands elsewhere too."""
    from edgeslm.decoding.copying import Copier, Leans

    kinds = {"create_event": {"date": "date", "time": "clock"}}
    vocab = [" el", '",', " de", "x"]
    src = "Crea un evento llamado Cena con Lucía el 21 de mayo de 2027 a las 21:00"
    logits = np.array([26.9, 23.6, 10.0, 0.0])

    def lift(kinds, src, feed):
        c = Copier(src, lambda t: vocab[t].encode(), Leans(copy=4.0), tokenize=lambda text: [3] * len(text), kinds=kinds)
        c.begin("create_event")
        c.feed(feed)
        got = c.boost(logits, None)
        return dict(zip(*(a.tolist() for a in got), strict=True)) if got else {}

    up = lift(kinds, src, '{"title": "Cena con Lucía')
    assert up[0] < 0 and logits[1] + up[1] > logits[0] + up[0]
    assert asks.Kept(src, kinds, lambda t: []).before("create_event", _args('{"title": "Cena con Lucía'), "", "Cena con Lucía")
    assert lift(None, src, '{"title": "Cena con Lucía').get(0, 0.0) >= 0  # no record of kinds: as before
    assert lift(kinds, src, '{"date": "2027-05-21", "time": "21:00", "title": "Cena con Lucía').get(0, 0.0) >= 0  # both written
    twice = "Cena con Lucía, dice Cena con Lucía el 21 de mayo de 2027"
    assert lift(kinds, twice, '{"title": "Cena con Lucía').get(0, 0.0) >= 0  # it stands elsewhere too


def _args(fragment):
    from edgeslm.decoding.argstream import ArgStream

    a = ArgStream()
    a.feed(fragment)
    return a
