"""No envelope in `content` (issue 23): with tools offered, a tool-call marker never reaches `content`.
Text followed by a call comes back as both (the text in `content`, the call in `tool_calls`), streamed
the same way (the text, then the call's deltas); anywhere else the grammar forbids the marker in text.

The grammar runs on the embedded model's real tokenizer (llguidance); the parser is fed each family's
envelope byte by byte; the end-to-end checks go through the real server and the openai client.
"""

from __future__ import annotations

import json

import pytest

from edgeslm.decoding import constraints
from edgeslm.decoding.schemas import Bounds
from edgeslm.decoding.tools import ENVELOPES
from edgeslm.output import Output
from edgeslm.types import OutputSpec, ToolSpec

PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOLS = [ToolSpec("get_air_quality", "Air quality index for a city.", PARAMS),
         ToolSpec("get_sunrise", "Sunrise time for a city.", PARAMS)]
FREE = Bounds(numbers_in_schema=False)


@pytest.fixture(scope="module")
def gemma(tmp_path_factory):
    """The embedded model's backend and llguidance tokenizer."""
    from edgeslm.backends import open_backend
    from edgeslm.config import Settings
    from edgeslm.store.registry import Catalog

    home = tmp_path_factory.mktemp("no-envelope")
    cat = Catalog(Settings(home=home))
    backend = open_backend(cat.ensure_local(cat.get("default")), "gguf", n_ctx=256, n_threads=1, n_batch=64, n_seq=1)
    try:
        yield backend, constraints.build_tokenizer(backend, home / "vocab")
    finally:
        backend.close()


def _walk(gemma, grammar: str, text: str) -> tuple[constraints.Constraint, int | None]:
    """Feed `text`'s tokens through the grammar; (the constraint, index of the first refused token or None)."""
    backend, vocab = gemma
    c = constraints.Constraint(vocab, grammar)
    for i, t in enumerate(backend.tokenize(text, add_bos=False, special=False)):
        c.mask()
        if not c.matcher.consume_token(t):
            return c, i
    return c, None


@pytest.mark.parametrize("fmt", ["hermes", "llama3-json"])
def test_the_marker_is_nowhere_in_text(gemma, fmt):
    env = ENVELOPES[fmt]
    for choice in ("auto", "none"):
        grammar = constraints.grammar_for(OutputSpec("tools", TOOLS, choice), env, FREE, 4)
        _, refused = _walk(gemma, grammar, f"Sure, I can write {env.marker} for you.")
        assert refused is not None, f"{choice}: the marker inside text was allowed"
        _, refused = _walk(gemma, grammar, "The air in Ljubljana is clean today.")
        assert refused is None, f"{choice}: plain text was refused"
        if env.marker.startswith("<"):  # a tag's opening in any spelling (the 270M model wrote "<tool_call >")
            _, refused = _walk(gemma, grammar, f"{env.marker[:-1]} >\nHigh tide 06:42\n</tool_call>")
            assert refused is not None, f"{choice}: a spelling of the marker was allowed"


@pytest.mark.parametrize("fmt", ["hermes", "llama3-json"])
def test_text_then_a_call_goes_on_as_the_call(gemma, fmt):
    """After text, the marker is the start of a call: the grammar forces the rest of its head."""
    backend, _ = gemma
    env = ENVELOPES[fmt]
    grammar = constraints.grammar_for(OutputSpec("tools", TOOLS[:1], "auto"), env, FREE, 4)
    c, refused = _walk(gemma, grammar, "Let me check that.\n" + env.marker)
    assert refused is None
    forced = b"".join(backend.piece(t) for t in c.forced(32)).decode()
    assert (env.marker + forced).startswith(env.head("get_air_quality"))
    c, refused = _walk(gemma, grammar, "Let me check that.\n" + env.render([("get_air_quality", '{"city": "Ljubljana"}')]))
    assert refused is None and c.matcher.is_accepting()


def _parse(fmt: str, written: str, answered: tuple = ()) -> tuple[Output, list[tuple], tuple]:
    """Feed `written` to the output parser one byte at a time: (the parser, its events, what it finishes with)."""
    events: list[tuple] = []
    out = Output(OutputSpec("tools", TOOLS, "auto"), ENVELOPES[fmt], [], events.append, answered)
    ended = False
    for b in written.encode():
        ended = ended or out.feed(bytes([b]))
    return out, events, out.finish()


@pytest.mark.parametrize("fmt", ["hermes", "llama3-json"])
def test_text_then_call_comes_back_as_both_and_streams_so(fmt):
    env = ENVELOPES[fmt]
    call = env.render([("get_air_quality", '{"city": "Ljubljana"}')])
    for said in ("OK.", "Let me look that up for you:"):
        for gap in ("\n", " ", "\n\n"):
            _, events, (content, calls) = _parse(fmt, said + gap + call)
            assert content == said and [(c.name, c.arguments) for c in calls] == [("get_air_quality", '{"city": "Ljubljana"}')]
            kinds = [e[0] for e in events]
            assert kinds.index("call") > max(i for i, k in enumerate(kinds) if k == "text"), "the text streams first"
            assert "".join(e[1] for e in events if e[0] == "text") == content, "the stream says what content says"
            assert "".join(e[2] for e in events if e[0] == "args") == '{"city": "Ljubljana"}'


@pytest.mark.parametrize("fmt", ["hermes", "llama3-json"])
def test_text_that_only_looks_like_the_marker_stays_text(fmt):
    env = ENVELOPES[fmt]
    for text in ("It is " + env.marker[:-1], "Clean air <b>today</b>.  ", "x " + env.marker[:3] + " y"):
        _, events, (content, calls) = _parse(fmt, text)
        assert (content, calls) == (text, []) and "".join(e[1] for e in events if e[0] == "text") == text


def test_a_repeated_answered_call_after_text_keeps_the_text():
    """A call that repeats one the conversation already answered is dropped; the text before it stays the
    answer (it was streamed already: decoding the answer again as text would say it twice)."""
    env = ENVELOPES["hermes"]
    out, _, (content, calls) = _parse("hermes", "The index is 12.\n" + env.render([("get_air_quality", '{"city": "Ljubljana"}')]),
                                      answered=('get_air_quality\0{"city": "Ljubljana"}',))
    assert (content, calls) == ("The index is 12.", []) and not out.repeated_answered


# ---- through the real server -------------------------------------------------------------------

AIR = {"type": "function", "function": {"name": "get_air_quality", "description": "Air quality index for a city.",
                                         "parameters": PARAMS}}
# a conversation whose earlier assistant turn said something and then called: the model follows it
PRIMED = [
    {"role": "user", "content": "How is the air in Ljubljana?"},
    {"role": "assistant", "content": "Let me check the air quality in Ljubljana.",
     "tool_calls": [{"id": "call_1", "type": "function",
                     "function": {"name": "get_air_quality", "arguments": '{"city": "Ljubljana"}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": '{"aqi": 21}'},
    {"role": "assistant", "content": "The air quality index in Ljubljana is 21: good."},
    {"role": "user", "content": "And in Tallinn?"},
]


def test_server_returns_text_and_call_apart_streamed_too(client):
    kw = dict(model="default@none", messages=PRIMED, tools=[AIR], max_tokens=96, temperature=0, parallel_tool_calls=False)
    client.chat.completions.create(**kw)  # same KV-cache state for both runs below
    whole = client.chat.completions.create(**kw).choices[0]
    assert whole.message.content and "<tool_call>" not in whole.message.content
    assert [c.function.name for c in whole.message.tool_calls or []] == ["get_air_quality"]
    assert json.loads(whole.message.tool_calls[0].function.arguments)["city"]
    assert whole.finish_reason == "tool_calls"
    text, args, order = "", "", []
    for chunk in client.chat.completions.create(stream=True, **kw):
        d = chunk.choices[0].delta if chunk.choices else None
        if d and d.content:
            text += d.content
            order.append("text")
        for t in (d.tool_calls or []) if d else []:
            args += t.function.arguments or ""
            order.append("call")
    assert text == whole.message.content and args == whole.message.tool_calls[0].function.arguments
    assert order.index("call") > len(order) - 1 - order[::-1].index("text"), "the text streams before the call"


def test_qwen_text_then_its_special_marker_token(tmp_path):
    """Qwen's `<tool_call>` is one special token: text may be followed by that token (a call), and the
    marker spelled in bytes is refused inside text (the parser would see the same characters)."""
    from tests import families

    if not families.available():
        pytest.skip(f"the families' tokenizers are not unpacked in {families.MODELS} (python -m tests.families)")
    from edgeslm.backends import open_backend

    f = next(f for f in families.FAMILIES if f.family == "qwen2.5")
    backend = open_backend(families.build_tiny(f, tmp_path / "tiny.gguf"), "gguf", n_ctx=256, n_threads=1,
                           n_batch=64, n_seq=1)
    try:
        vocab, env = constraints.build_tokenizer(backend), ENVELOPES["hermes"]
        marks = vocab.markers(env)
        assert "<tool_call>" in marks
        grammar = constraints.grammar_for(OutputSpec("tools", TOOLS[:1], "auto"), env, FREE, 4, marks)
        special = backend.tokenize("<tool_call>", add_bos=False, special=True)
        assert len(special) == 1
        c = constraints.Constraint(vocab, grammar)
        for t in backend.tokenize("Let me check.\n", add_bos=False, special=False) + special:
            c.mask()
            assert c.matcher.consume_token(t)
        forced = b"".join(backend.piece(t) for t in c.forced(32)).decode()
        assert ("<tool_call>" + forced).startswith(env.head("get_air_quality"))
        c = constraints.Constraint(vocab, grammar)
        spelled = backend.tokenize("Let me write <tool_call> here", add_bos=False, special=False)
        assert len(spelled) > len(backend.tokenize("Let me write  here", add_bos=False, special=False))
        refused = False
        for t in spelled:
            c.mask()
            if not c.matcher.consume_token(t):
                refused = True
                break
        assert refused, "the marker spelled in bytes was allowed inside text"
    finally:
        backend.close()
