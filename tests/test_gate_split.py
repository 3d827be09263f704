"""The gate's held-out split (pipeline/data.gate_split): no training call shares a free-text argument
value with a held-out call, so a student that memorized its generator's values fails the gate instead of
passing by them. Enum values and short strings recur legitimately and do not count."""

import json

from edgeslm.pipeline import data

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
