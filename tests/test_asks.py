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
    assert asks.kind([3, "14"]) == "number"
    assert asks.kind(["DE44500105175407324931", "PL61 1090 1014"]) is None  # an IBAN is no name
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
