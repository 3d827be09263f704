"""Tool calling on the catalog's families, with each family's real chat template and tokenizer
(tests/families.py: from llama.cpp's source; the tiny models' weights are random, so only the
path is under test, not what a model would answer).

Per family: the template renders tools natively and the family's call format in history; that
format parses back into tool_calls, in one piece and fed one byte at a time; and a call decoded
under the grammar on the real tokenizer writes the envelope with the family's own tokens (Qwen's
`<tool_call>` is one special token) and comes back through a real server and the openai client.
"""

from __future__ import annotations

import json
import tomllib

import jsonschema
import pytest
from openai import OpenAI

from benchmarks._server import running_server
from edgeslm.config import Settings
from edgeslm.decoding.templates import ChatTemplate
from edgeslm.decoding.tools import envelope_for, format_of_template
from edgeslm.output import Output
from edgeslm.store.entries import ModelEntry, shipped_catalog
from edgeslm.store.registry import Catalog
from edgeslm.types import Message, OutputSpec, ToolCall, ToolSpec
from tests import families
from tests.cores import THREADS

pytestmark = pytest.mark.skipif(not families.available(), reason=(
    f"the families' templates and tokenizers are not unpacked in {families.MODELS}: `make test` fetches them "
    "(python -m tests.families)"))

PARAMS = {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Rome"]},
                                           "days": {"type": "integer", "minimum": 1, "maximum": 7}},
          "required": ["city", "days"]}
WEATHER = ToolSpec("get_weather", "Get the weather forecast for a city", PARAMS)
TOOL = {"type": "function", "function": {"name": WEATHER.name, "description": WEATHER.description, "parameters": PARAMS}}
IDS = [f.family for f in families.FAMILIES]


def catalog_entry(family: str):
    with open(shipped_catalog(), "rb") as fh:
        return next(ModelEntry(**e) for e in tomllib.load(fh)["model"] if e["family"] == family)


def envelope_of(f: families.Family):
    return envelope_for(format_of_template(families.template_text(f)) or catalog_entry(f.family).tool_format)


@pytest.mark.parametrize("f", families.FAMILIES, ids=IDS)
def test_template_renders_tools_and_calls_natively(f):
    source, entry = families.template_text(f), catalog_entry(f.family)
    env = envelope_of(f)
    assert env.name == entry.tool_format, "the catalog's tool_format is the format the family's template teaches"
    tpl = ChatTemplate(source, entry.chat_format, env, "<bos>")
    assert tpl.native_tools == ("tools" in (source or ""))
    history = [Message("user", "Weather in Paris for 2 days?"),
               Message("assistant", None, tool_calls=[ToolCall("call_1", "get_weather", '{"city": "Paris", "days": 2}')]),
               Message("tool", '{"temp": 21}', tool_call_id="call_1"),
               Message("user", "And Rome?")]
    prompt = tpl.render(history, [WEATHER])
    assert WEATHER.description in prompt and "enum" in prompt and "Rome" in prompt
    assert env.render([("get_weather", '{"city": "Paris", "days": 2}')]) in prompt  # the call, as the family writes it
    assert "temp" in prompt and prompt.rstrip().endswith(("assistant", "model", "<|end_header_id|>", "</think>",
                                                         "<|end_of_role|>"))
    if "enable_thinking" in (source or ""):  # the call is wanted at once: thinking is rendered closed
        assert prompt.endswith("<think>\n\n</think>\n\n")


@pytest.mark.parametrize("f", families.FAMILIES, ids=IDS)
def test_call_format_parses_whole_and_at_every_byte(f):
    env = envelope_of(f)
    calls = [("get_weather", '{"city": "Paris", "days": 2}'), ("get_weather", '{"city": "Rome", "days": 7}')]
    calls = calls if env.parallel else calls[:1]
    written = env.render(calls).encode()
    for pieces in ([written], [written[i:i + 1] for i in range(len(written))]):
        events: list[tuple] = []
        out = Output(OutputSpec("tools", [WEATHER], "auto"), env, [], events.append)
        for p in pieces:
            assert not out.feed(p)
        text, got = out.finish()
        assert text is None and [(c.name, c.arguments) for c in got] == calls
        streamed = "".join(e[2] for e in events if e[0] == "args")
        assert streamed == "".join(a for _, a in calls) and [e[3] for e in events if e[0] == "call"] == [n for n, _ in calls]
    # text that does not open a call stays text, byte by byte too
    events = []
    out = Output(OutputSpec("tools", [WEATHER], "auto"), env, [], events.append)
    for b in "It is sunny.".encode():
        out.feed(bytes([b]))
    assert out.finish() == ("It is sunny.", [])


@pytest.mark.parametrize("f", families.FAMILIES, ids=IDS)
def test_grammar_forces_the_familys_own_envelope_tokens(f, tiny):
    from edgeslm.backends import open_backend
    from edgeslm.decoding import constraints
    from edgeslm.decoding.schemas import Bounds

    home, _, _ = tiny
    path = (home / f"tiny-{f.family}.gguf" if f.vocab
            else Catalog(Settings(home=home)).ensure_local(catalog_entry("gemma3")))
    backend = open_backend(path, "gguf", n_ctx=256, n_threads=1, n_batch=64, n_seq=1)
    try:
        env, vocab = envelope_of(f), constraints.build_tokenizer(backend)
        marks = vocab.markers(env)
        if f.family in ("qwen2.5", "qwen3"):  # their instruct tokenizers carry <tool_call> as one token
            assert marks == {"<tool_call>", "</tool_call>"}
            assert len(backend.tokenize("<tool_call>", add_bos=False, special=True)) == 1
            assert backend.piece(backend.tokenize("<tool_call>", add_bos=False, special=True)[0]) == b"<tool_call>"
        grammar = constraints.grammar_for(OutputSpec("tools", [WEATHER], "required"), env, Bounds(numbers_in_schema=False),
                                          4, marks)
        c = constraints.Constraint(vocab, grammar)
        forced = c.forced(64)
        # the forced text opens the call, and is tokenized exactly as the model's tokenizer writes it
        shown = constraints.marker_pieces(backend, vocab, env)  # markers that are control tokens, as text
        text = b"".join(shown.get(t) or backend.piece(t) for t in forced).decode()
        first = {"json": env.head("get_weather") + '{"city":', "python": env.open + env.head("get_weather") + "city=",
                 "functiongemma": env.head("get_weather") + "{city:"}[env.syntax]
        assert text.startswith(first), text
        assert forced == backend.tokenize(text, add_bos=False, special=True)
    finally:
        backend.close()


@pytest.fixture(scope="module")
def tiny_client(tiny):
    _, env, _ = tiny
    with running_server(threads=THREADS, env=env) as base:
        yield OpenAI(base_url=base, api_key="unused", max_retries=0, timeout=120)


@pytest.mark.parametrize("f", families.FAMILIES, ids=IDS)
def test_constrained_call_through_the_server(f, tiny, tiny_client):
    model = tiny[2][f.family]
    msgs = [{"role": "user", "content": "What's the weather in Paris for the next 3 days?"}]
    r = tiny_client.chat.completions.create(model=model, messages=msgs, tools=[TOOL], tool_choice="required",
                                            parallel_tool_calls=False, max_tokens=96, temperature=0)
    calls = r.choices[0].message.tool_calls
    assert r.choices[0].finish_reason == "tool_calls" and calls and calls[0].function.name == "get_weather"
    for c in calls:
        jsonschema.validate(json.loads(c.function.arguments), PARAMS)
    stream = tiny_client.chat.completions.create(model=model, messages=msgs, tools=[TOOL], tool_choice="required",
                                                 parallel_tool_calls=False, max_tokens=96, temperature=0, stream=True)
    args: dict[int, str] = {}
    for chunk in stream:
        for d in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            args[d.index] = args.get(d.index, "") + (d.function.arguments or "")
    assert [args[i] for i in sorted(args)] == [c.function.arguments for c in calls]
    # the answered call goes back into the family's template on the next turn
    follow = msgs + [r.choices[0].message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": calls[0].id, "content": '{"forecast": "sun"}'}]
    follow[1]["tool_calls"] = follow[1]["tool_calls"][:1]
    again = tiny_client.chat.completions.create(model=model, messages=follow, tools=[TOOL], max_tokens=8, temperature=0)
    assert again.choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_gbnf_engine_keeps_integer_bounds_on_a_real_tokenizer(tiny):
    """The GBNF fallback (llama.cpp's grammar sampler) enforces small integer ranges too: llama-cpp-python's
    schema converter ignores minimum/maximum, and sampled calls with "days": 70 (maximum 7) were 500s."""
    _, env, ids = tiny
    with running_server(threads=THREADS, env=env, extra_args=["--constraint-engine", "gbnf"]) as base:
        client = OpenAI(base_url=base, api_key="unused", max_retries=0, timeout=120)
        for seed in range(8):
            r = client.chat.completions.create(model=ids["qwen2.5"], messages=[{"role": "user", "content": "Weather?"}],
                                               tools=[TOOL], tool_choice="required", parallel_tool_calls=False,
                                               max_tokens=48, temperature=1.0, seed=seed)
            for c in r.choices[0].message.tool_calls or []:
                jsonschema.validate(json.loads(c.function.arguments), PARAMS)
