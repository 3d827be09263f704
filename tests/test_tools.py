"""Tool calls: every tool_choice mode, streaming deltas and a full tool round trip, all through the
real server. The grammar guarantees parseable, schema-valid arguments; these tests check it."""

import json

import jsonschema
from conftest import TIME, WEATHER

ASK = [{"role": "user", "content": "What's the weather in Paris?"}]


def call(client, messages=ASK, **kw):
    kw.setdefault("temperature", 0)
    kw.setdefault("max_tokens", 300)
    return client.chat.completions.create(model="default", messages=messages, **kw)


def assert_valid_calls(choice, tools):
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    calls = choice.message.tool_calls
    assert calls and choice.finish_reason == "tool_calls"
    assert len({c.id for c in calls}) == len(calls)
    for c in calls:
        assert c.type == "function" and c.id.startswith("call_")
        jsonschema.validate(json.loads(c.function.arguments), schemas[c.function.name])
    return calls


def test_required_always_calls(client):
    r = call(client, tools=[WEATHER, TIME], tool_choice="required")
    calls = assert_valid_calls(r.choices[0], [WEATHER, TIME])
    assert r.choices[0].message.content is None
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments)["city"] == "Paris"


def test_named_function_is_enforced(client):
    r = call(client, tools=[WEATHER, TIME], tool_choice={"type": "function", "function": {"name": "get_time"}})
    calls = assert_valid_calls(r.choices[0], [WEATHER, TIME])
    assert {c.function.name for c in calls} == {"get_time"}


def test_parallel_tool_calls_false_gives_exactly_one(client):
    r = call(client, tools=[WEATHER], tool_choice="required", parallel_tool_calls=False)
    assert len(assert_valid_calls(r.choices[0], [WEATHER])) == 1


def test_auto_is_the_default_and_yields_text_or_valid_calls(client):
    for content in ("What's the weather in Paris?", "Say hello."):
        r = call(client, [{"role": "user", "content": content}], tools=[WEATHER])
        choice = r.choices[0]
        if choice.message.tool_calls:
            assert_valid_calls(choice, [WEATHER])
        else:
            assert choice.finish_reason in ("stop", "length")
            assert not choice.message.content.lstrip().startswith("<tool_call>")


def test_auto_calls_for_a_plain_tool_question(client):
    # The tools-first prompt makes even the pretrained 270M open a call; auto must return it parsed.
    r = call(client, tools=[WEATHER])
    calls = assert_valid_calls(r.choices[0], [WEATHER])
    assert calls[0].function.name == "get_weather"


def test_none_never_calls(client):
    r = call(client, tools=[WEATHER], tool_choice="none", max_tokens=40)
    assert r.choices[0].message.tool_calls is None
    assert "<tool_call>" not in r.choices[0].message.content[:20]


def test_tool_result_round_trip(client):
    first = call(client, tools=[WEATHER], tool_choice="required", parallel_tool_calls=False)
    tc = first.choices[0].message.tool_calls[0]
    messages = ASK + [
        {"role": "assistant", "content": None, "tool_calls": [tc.model_dump()]},
        {"role": "tool", "tool_call_id": tc.id, "content": '{"temperature": 18, "sky": "clear"}'},
    ]
    r = call(client, messages, tools=[WEATHER], tool_choice="none", max_tokens=30)
    assert r.choices[0].message.content
    assert r.usage.prompt_tokens > first.usage.prompt_tokens


def test_streamed_tool_call_deltas_assemble_to_the_same_calls(client):
    kw = dict(tools=[WEATHER, TIME], tool_choice="required")
    call(client, **kw)  # same KV-cache state for both runs below (batch shapes change float rounding)
    whole = call(client, **kw).choices[0].message.tool_calls
    calls: dict[int, dict] = {}
    finish = None
    for chunk in call(client, stream=True, **kw):
        delta = chunk.choices[0].delta
        finish = chunk.choices[0].finish_reason or finish
        for d in delta.tool_calls or []:
            slot = calls.setdefault(d.index, {"id": None, "name": None, "arguments": ""})
            slot["id"] = d.id or slot["id"]
            slot["name"] = (d.function.name if d.function and d.function.name else slot["name"])
            slot["arguments"] += (d.function.arguments or "") if d.function else ""
    assert finish == "tool_calls"
    assert [(c["name"], c["arguments"]) for _, c in sorted(calls.items())] == \
           [(c.function.name, c.function.arguments) for c in whole]
    assert all(c["id"].startswith("call_") for c in calls.values())


def test_tool_call_cut_by_max_tokens_reports_length(client):
    r = call(client, tools=[WEATHER], tool_choice="required", max_tokens=6)
    assert r.choices[0].finish_reason == "length"
    assert not r.choices[0].message.tool_calls  # an unfinished call is never returned as if valid


def test_json_schema_output_validates(client):
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                               "age": {"type": "integer", "minimum": 0, "maximum": 120},
                                               "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]},
                                                        "maxItems": 3}},
              "required": ["name", "age", "tags"]}
    r = call(client, [{"role": "user", "content": "Describe a person as JSON."}],
             response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}})
    assert r.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(r.choices[0].message.content), schema)


def test_json_object_output_parses(client):
    r = call(client, [{"role": "user", "content": "Give me a JSON object about a cat."}],
             response_format={"type": "json_object"}, max_tokens=200)
    if r.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(r.choices[0].message.content), dict)
    else:
        assert r.choices[0].finish_reason == "length" and r.choices[0].message.content.startswith("{")
