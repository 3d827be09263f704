"""What the conversion pipeline trains and judges students on, below the models:
- the gate's held-out split (pipeline/data.gate_split): no training call shares a free-text argument
  value with a held-out call, so a student that memorized its generator's values fails the gate instead
  of passing by them. Enum values and short strings recur legitimately and do not count;
- value swaps (pipeline/augment.swap_values): a captured call again with other captured calls' values,
  in the request and the call alike."""

import json
import random

from edgeslm.pipeline import augment, data

TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {
    "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}}}}


def _ex(city: str, unit: str = "celsius", n: int = 0) -> dict:
    args = json.dumps({"city": city, "unit": unit})
    return {"messages": [{"role": "user", "content": f"weather in {city}? ({n})"}], "tools": [TOOL],
            "answer": {"role": "assistant", "content": None,
                       "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": args}}]}}


def test_no_training_call_shares_a_value_with_a_held_out_one():
    cities = ["Lisbon", "Porto", "Faro", "Braga", "Évora"]
    examples = [_ex(c, n=i) for i in range(4) for c in cities]  # each city 4 times, in several calls
    idx = list(range(len(examples)))
    plain_train, plain_held = data.split(idx, examples)
    held_values = set().union(*(data.free_values(examples[i]) for i in plain_held))
    assert any(data.free_values(examples[i]) & held_values for i in plain_train)  # the plain split leaks values
    train, held, left_out = data.gate_split(idx, examples)
    assert held == plain_held and left_out > 0 and train
    assert not set().union(*(data.free_values(examples[i]) for i in train)) & held_values
    assert len(train) + left_out == len(plain_train)


def test_enums_and_short_values_do_not_count_and_an_empty_train_keeps_the_plain_split():
    assert data.free_values(_ex("Lisbon", "fahrenheit")) == {"lisbon"}
    assert data.free_values(_ex("NY")) == set()
    same = [_ex("Lisbon", n=i) for i in range(6)]  # one value everywhere: nothing would be left to train on
    train, held, left_out = data.gate_split(list(range(6)), same)
    assert (train, held) == data.split(list(range(6)), same) and left_out == 0


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
    pool = augment.value_pool(calls)
    assert pool[("get_weather", "city")] == ["Lisbon", "Porto", "Kraków"] and ("get_weather", "unit") not in pool
    for seed in range(20):
        e = augment.swap_values(calls[0], pool, random.Random(seed))
        text, args = e["messages"][0]["content"], json.loads(e["answer"]["tool_calls"][0]["function"]["arguments"])
        assert args["city"] in ("Porto", "Kraków") and args["days"] in (5, 12) and args["unit"] == "celsius"
        assert text == f"Weather in {args['city']} for {args['days']} days, titled '{args['note']}'", (text, args)
        assert "Lisbon" not in json.dumps(e, ensure_ascii=False) or args["note"] != "Trip to Lisbon"
    assert calls[0]["answer"]["tool_calls"][0]["function"]["arguments"].count("Lisbon") == 2  # the original stays
    assert augment.swap_values(calls[3], pool, random.Random(0)) is None  # nothing it states has another value
