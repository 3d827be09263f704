"""Decoding pieces without a server: the call parser, schema bounds, grammars, templates."""


from time import time_ns

import pytest

from edgeslm.decoding.constraints import grammar_for
from edgeslm.decoding.parsing import CallParser, parser_for
from edgeslm.decoding.schemas import Bounds, bounded, check_schema, digit_limits
from edgeslm.decoding.templates import ChatTemplate
from edgeslm.decoding.tools import ENVELOPES, validate_arguments
from edgeslm.errors import GrammarError, InvalidRequest
from edgeslm.types import Message, OutputSpec, ToolCall, ToolSpec

HERMES = ENVELOPES["hermes"]
CALLS = [("get_weather", '{"city": "Pa\\\\", "q": "x\\"}", "n": [1, {"a": 2}]}'), ("get_time", "{}")]


@pytest.mark.parametrize("env", list(ENVELOPES.values()), ids=list(ENVELOPES))
@pytest.mark.parametrize("step", [1, 2, 5, 1000])
def test_call_parser_recovers_calls_from_any_chunking(env, step):
    text = env.render(CALLS)
    parser, events = parser_for(env), []
    for i in range(0, len(text), step):
        events += parser.feed(text[i : i + step])
    assert parser.calls == CALLS
    args = {0: "", 1: ""}
    for ev in events:
        if ev[0] == "args":
            args[ev[1]] += ev[2]
    assert [args[0], args[1]] == [CALLS[0][1], CALLS[1][1]]
    assert [ev for ev in events if ev[0] == "end"] == [("end", 0), ("end", 1)]


def test_call_parser_rejects_text_that_is_not_a_call():
    with pytest.raises(ValueError):
        CallParser(HERMES).feed("<tool_result>")


def test_bounded_limits_strings_and_closes_objects_without_loosening():
    schema = {"type": "object", "properties": {"s": {"type": "string"}, "e": {"type": "string", "enum": ["a"]},
                                               "o": {"type": "object", "properties": {"t": {"type": "string"}}},
                                               "free": {"type": "object", "additionalProperties": True}}}
    b = bounded(schema, Bounds(max_chars=10))
    assert b["properties"]["s"]["maxLength"] == 10
    assert "maxLength" not in b["properties"]["e"]
    assert b["additionalProperties"] is False and b["properties"]["o"]["additionalProperties"] is False
    assert b["properties"]["free"]["additionalProperties"] is True
    assert "maxLength" not in schema["properties"]["s"]  # the caller's schema is untouched


def test_bounded_numbers_keep_explicit_ranges():
    schema = {"type": "object", "properties": {"days": {"type": "integer"}, "big": {"type": "integer", "maximum": 10**12},
                                               "x": {"type": "number"}, "e": {"type": "integer", "enum": [1, 2]}}}
    p = bounded(schema, Bounds(int_digits=3, fraction_digits=2))["properties"]
    assert (p["days"]["minimum"], p["days"]["maximum"]) == (-999, 999)
    assert p["big"]["maximum"] == 10**12 and p["big"]["minimum"] == -999
    assert p["x"]["multipleOf"] == 0.01 and "multipleOf" not in p["days"]
    assert "minimum" not in p["e"]


def test_invalid_schemas_are_rejected_with_their_field():
    with pytest.raises(GrammarError) as e:
        check_schema({"type": "banana"}, "tools[0].function.parameters")
    assert e.value.param == "tools[0].function.parameters"
    with pytest.raises(GrammarError):
        check_schema([], "x")


def test_validate_arguments():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert validate_arguments('{"n": 1}', schema) is None
    assert "required" in validate_arguments("{}", schema)
    assert "not JSON" in validate_arguments("{", schema)


def test_grammar_per_tool_choice():
    tools = [ToolSpec("a", "", {"type": "object", "properties": {}}), ToolSpec("b", "", {"type": "object"})]
    auto = grammar_for(OutputSpec("tools", tools, "auto"), HERMES, Bounds(50), 3)
    assert "start: calls | TEXT" in auto and "call_1" in auto
    named = grammar_for(OutputSpec("tools", tools, "b", parallel=False), HERMES, Bounds(50), 3)
    assert '"name\\": \\"b\\"' in named and "call_1" not in named and "calls: call\n" in named
    assert grammar_for(OutputSpec("tools", tools, "none"), HERMES, Bounds(50), 3).startswith("start: TEXT")
    assert grammar_for(OutputSpec("text"), HERMES, Bounds(50), 3) is None


def test_gemma_template_with_generic_tools_and_tool_results():
    t = ChatTemplate(None, "gemma", HERMES, "<bos>")
    msgs = [Message("system", "Be brief."), Message("user", "Weather?"),
            Message("assistant", None, [ToolCall("call_1", "get_weather", '{"city": "Oslo"}')]),
            Message("tool", '{"temp": 3}', tool_call_id="call_1")]
    out = t.render(msgs, [ToolSpec("get_weather", "Get weather", {"type": "object"})])
    assert out.startswith("<bos><start_of_turn>user\n<tools>")
    assert '<start_of_turn>model\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>' in out
    assert "<tool_response>\n{\"temp\": 3}\n</tool_response>" in out
    assert out.endswith("<start_of_turn>model\n")


def test_template_errors_are_request_errors():
    t = ChatTemplate(None, "gemma", HERMES, "<bos>")
    with pytest.raises(InvalidRequest) as e:
        t.render([Message("assistant", "hi"), Message("assistant", "again")][:1] + [Message("user", "x")], [])
    assert e.value.param == "messages"


QWEN_LIKE = (
    "{% if tools %}<|im_start|>system\n# Tools\n<tools>{% for t in tools %}\n{{ t | tojson }}{% endfor %}\n</tools>"
    "<|im_end|>\n{% endif %}{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.content %}{{ m.content }}{% endif %}"
    "{% for c in m.tool_calls or [] %}<tool_call>\n{{ {'name': c.function.name, 'arguments': c.function.arguments} | tojson }}"
    "\n</tool_call>{% endfor %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_templates_that_know_tools_get_them_natively():
    t = ChatTemplate(QWEN_LIKE, "chatml", HERMES)
    assert t.native_tools
    out = t.render([Message("user", "Weather?"), Message("assistant", None, [ToolCall("c1", "w", '{"city": "Oslo"}')]),
                    Message("tool", "3C", tool_call_id="c1")], [ToolSpec("w", "weather", {"type": "object"})])
    assert '{"type": "function", "function": {"name": "w"' in out
    assert '<tool_call>\n{"name": "w", "arguments": {"city": "Oslo"}}\n</tool_call>' in out  # arguments as a dict
    assert "<|im_start|>tool\n3C<|im_end|>" in out
    assert out.endswith("<|im_start|>assistant\n")


def test_digit_limit_tracks_number_parts_and_skips_strings():
    from edgeslm.decoding.constraints import DigitLimit

    d = DigitLimit((5, 3, 2))
    d.feed(b'{"a1": 123')
    assert d.budget() == 2  # integer part: 3 of 5
    d.feed(b".4")
    assert d.budget() == 2  # decimals: 1 of 3
    d.feed(b"e-1")
    assert d.budget() == 1  # exponent: 1 of 2 (the sign does not count)
    d.feed(b', "b": "12345')
    assert d.budget() is None  # inside a string nothing is limited
    d.feed(b'6\\"7", "c": -')
    assert d.budget() == 5  # the escaped quote did not end the string; a new number starts fresh


def test_each_distinct_schema_is_walked_once_across_a_request_and_the_next():
    """The guard's size check, translation's validity check, the grammar's bounded copies and the digit
    limits read one cached walk of each schema (issue 27: four walks per request before)."""
    from edgeslm.config import Settings
    from edgeslm.decoding import schemas
    from edgeslm.decoding.constraints import grammar_for
    from edgeslm.wire import limits, translate
    from edgeslm.wire.protocol import ChatCompletionRequest

    def tool(name: str, n: int) -> dict:
        return {"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": {
            "x": {"type": "integer", "minimum": -n}, "note": {"type": "string"}}, "required": ["x"]}}}

    unique = f"t{time_ns()}"  # schemas no other test has cached
    body = {"model": "default", "messages": [{"role": "user", "content": "hi"}],
            "tools": [tool(unique + "a", 123456789012), tool(unique + "b", 7)]}
    st, bounds = Settings(), Bounds()

    def serve_once() -> tuple:
        limits.check(body, st)
        _, spec, _ = translate.to_internal(ChatCompletionRequest.model_validate(body), st)
        grammar = grammar_for(spec, ENVELOPES["hermes"], bounds, 8)
        return grammar, digit_limits([t.parameters for t in spec.tools], bounds)

    before = dict(schemas.stats)
    grammar, digits = serve_once()
    assert schemas.stats["walks"] - before["walks"] == 2  # two distinct schemas, one walk each
    assert digits == (12, 6, 3) and '"maxLength":' in grammar.replace(" ", "")  # the facts did their work
    walks = schemas.stats["walks"]
    assert serve_once() == (grammar, digits) and schemas.stats["walks"] == walks  # the next request: no walk
    # the same properties in another order are another schema: the grammar writes keys in its order
    props = body["tools"][0]["function"]["parameters"]["properties"]
    body["tools"][0]["function"]["parameters"]["properties"] = dict(reversed(list(props.items())))
    serve_once()
    assert schemas.stats["walks"] == walks + 1
