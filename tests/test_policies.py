"""The runtime policies for small models, at the unit level (the served behaviour is in test_agents.py):
which earlier calls count as answered, and when a request gets at most one call."""

from edgeslm.config import Settings
from edgeslm.output import answered_calls
from edgeslm.wire import translate
from edgeslm.wire.protocol import ChatCompletionRequest
from edgeslm.types import Message, ToolCall, ToolSpec
from tests.conftest import TIME, WEATHER


def test_answered_calls_are_written_as_the_grammar_writes_them():
    tools = [ToolSpec("f", "", {"properties": {"a": {}, "b": {}}})]
    msgs = [Message("user", "x"),
            Message("assistant", None, [ToolCall("c1", "f", '{"b":1,"a":"x"}'), ToolCall("c2", "f", '{"a":"y"}')]),
            Message("tool", "ok", tool_call_id="c1")]  # c2 has no result yet: not answered
    assert answered_calls(msgs, tools) == ['f\x00{"a": "x", "b": 1}']


def _spec(**body):
    req = ChatCompletionRequest.model_validate({"model": "default", "messages": [{"role": "user", "content": "hi"}],
                                                "tools": [WEATHER, TIME], **body})
    return translate.to_internal(req, Settings())[1]


def test_a_named_function_gets_one_call_unless_parallel_is_asked():
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert _spec(tool_choice=named).parallel is False
    assert _spec(tool_choice=named, parallel_tool_calls=True).parallel is True
    assert _spec().parallel is True and _spec(tool_choice="required").parallel is True
    assert _spec(parallel_tool_calls=False).parallel is False
