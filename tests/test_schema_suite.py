"""The schema suite: hand-written hard cases plus BFCL dev functions. Each schema compiles into a
grammar or fails with an error naming the keyword; every decoded output validates against it."""

import json

import jsonschema
import pytest

from edgeslm.pipeline import bfcl
from edgeslm.config import Settings
from edgeslm.decoding.constraints import Constraint, grammar_for
from edgeslm.decoding.schemas import Bounds, digit_limits
from edgeslm.engine import Engine
from edgeslm.errors import BackendError, GrammarError
from edgeslm.types import Message, OutputSpec, SamplingParams, ToolSpec
from tests.cores import THREADS

DATA = bfcl.default_dir()

HARD = {
    "ref-defs": {"$defs": {"pt": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                                  "required": ["x", "y"]}},
                 "type": "object", "properties": {"a": {"$ref": "#/$defs/pt"}, "b": {"$ref": "#/$defs/pt"}},
                 "required": ["a", "b"]},
    "anyOf": {"type": "object", "properties": {"v": {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 5}]}},
              "required": ["v"]},
    "oneOf": {"type": "object", "properties": {"v": {"oneOf": [{"type": "boolean"}, {"type": "null"}]}}, "required": ["v"]},
    "allOf": {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                        {"type": "object", "properties": {"b": {"type": "string", "maxLength": 8}}, "required": ["b"]}]},
    "enum-const": {"type": "object", "properties": {"k": {"const": "fixed"}, "e": {"enum": ["x", 2, None, True]}},
                   "required": ["k", "e"]},
    "nested-arrays": {"type": "object", "properties": {"m": {"type": "array", "minItems": 2, "maxItems": 3, "items": {
        "type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "integer", "minimum": 0, "maximum": 9}}}},
        "required": ["m"]},
    "bounds": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 10, "maximum": 20},
                                                "f": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                                                "s": {"type": "string", "minLength": 3, "maxLength": 6}},
               "required": ["n", "f", "s"]},
    "pattern": {"type": "object", "properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}}, "required": ["zip"]},
    "formats": {"type": "object", "properties": {"d": {"type": "string", "format": "date"},
                                                 "t": {"type": "string", "format": "date-time"},
                                                 "u": {"type": "string", "format": "uuid"},
                                                 "e": {"type": "string", "format": "email"}},
                "required": ["d", "t", "u", "e"]},
    "additional-typed": {"type": "object", "properties": {"id": {"type": "integer"}},
                         "additionalProperties": {"type": "integer"}, "required": ["id"]},
    "no-properties": {"type": "object", "properties": {}},
    "unbounded-number": {"type": "object", "properties": {"days": {"type": "integer"}, "x": {"type": "number"}},
                         "required": ["days", "x"]},
    "deep": {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "object", "properties": {
        "c": {"type": "array", "maxItems": 2, "items": {"type": "string", "enum": ["p", "q"]}}}, "required": ["c"]}},
        "required": ["b"]}}, "required": ["a"]},
}
UNSUPPORTED = {
    "uniqueItems": {"type": "object", "properties": {"l": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}}},
    "not": {"type": "object", "properties": {"v": {"not": {"type": "string"}}}},
    "if": {"type": "object", "if": {"properties": {"a": {"const": 1}}}, "then": {"required": ["b"]}},
    "contains": {"type": "object", "properties": {"l": {"type": "array", "contains": {"type": "integer"}}}},
}


def bfcl_schemas(every: int):
    out = {}
    if not DATA.is_dir():  # ../shared/data is beside the checkout on CI and dev machines
        return out
    for category in ("simple_python", "multiple"):
        for item in bfcl.load(category, DATA):
            for t in bfcl.openai_tools(item):
                tool = t["function"]
                out[f"{item['id']}:{tool['name']}"] = tool["parameters"]
    names = sorted(out)
    return {n: out[n] for n in names[::every]}


@pytest.fixture(scope="module")
def worker(home):
    engine = Engine(Settings(home=home, threads=THREADS, n_ctx=4096))
    yield engine.worker("default")
    engine.close()


def call(worker, schema, name="f", max_tokens=200, adapter=None):
    spec = OutputSpec(kind="tools", tools=[ToolSpec(name, "a test function", schema)], tool_choice=name, parallel=False)
    return worker.run([Message("user", "Call the function with example values.")], spec,
                      SamplingParams(max_tokens=max_tokens, temperature=0), adapter=adapter)


@pytest.mark.parametrize("name", list(HARD))
def test_hard_cases_decode_and_validate(worker, name):
    g = call(worker, HARD[name])
    assert g.finish_reason in ("tool_calls", "length")
    if g.finish_reason == "tool_calls":
        jsonschema.validate(json.loads(g.tool_calls[0].arguments), HARD[name], format_checker=jsonschema.FormatChecker())
    else:
        assert g.truncated


def test_unbounded_numbers_stay_within_the_digit_bound(worker):
    g = call(worker, HARD["unbounded-number"])
    args = json.loads(g.tool_calls[0].arguments)
    assert abs(args["days"]) < 10**9 and isinstance(args["x"], (int, float))


def _digit_mask_allows(c: Constraint, text: str) -> bool:
    """Feed `text` token by token through the constraint; False as soon as its mask forbids one."""
    tokens = c.vocab.ll.tokenize_str(text)
    for t in tokens:
        m = c.mask()
        if m is not None and not (int(m[t // 32]) >> (t % 32)) & 1:
            return False
        c.consume(t)
    return True


FREE = Bounds(numbers_in_schema=False)  # numbers bounded by the digit mask alone, as the engine does


def test_digit_bound_masks_long_runs_but_keeps_exponents(worker):
    grammar = grammar_for(OutputSpec("json", schema={"type": "number"}), worker.envelope, FREE, 1)
    limits = (4, 3, 2)
    assert _digit_mask_allows(Constraint(worker.tokenizer, grammar, limits), "8.854e-12")
    assert _digit_mask_allows(Constraint(worker.tokenizer, grammar, limits), "1234.567")
    assert not _digit_mask_allows(Constraint(worker.tokenizer, grammar, limits), "12345")
    assert not _digit_mask_allows(Constraint(worker.tokenizer, grammar, limits), "1.2345")
    assert not _digit_mask_allows(Constraint(worker.tokenizer, grammar, limits), "1e123")
    string = grammar_for(OutputSpec("json", schema={"type": "string"}), worker.envelope, FREE, 1)
    assert _digit_mask_allows(Constraint(worker.tokenizer, string, limits), '"1234567890"')  # strings are free


def test_schema_numbers_raise_the_digit_bound():
    schema = {"type": "object", "properties": {"a": {"type": "integer", "maximum": 10**12},
                                               "b": {"enum": [0.123456789, 1e-200]}, "minimum": {"type": "string"}}}
    assert digit_limits([schema], Bounds(int_digits=9, fraction_digits=6)) == (13, 9, 3)
    assert digit_limits([{"type": "number"}], Bounds(int_digits=5, fraction_digits=2)) == (5, 2, 3)


@pytest.mark.parametrize("keyword", list(UNSUPPORTED))
def test_unsupported_keywords_are_named(worker, keyword):
    with pytest.raises(GrammarError) as e:
        call(worker, UNSUPPORTED[keyword])
    assert keyword in e.value.message


@pytest.mark.skipif(not DATA.is_dir(), reason=f"BFCL data not found at {DATA}")
def test_every_bfcl_function_compiles(worker):
    schemas = bfcl_schemas(every=1)
    assert len(schemas) > 600
    for name, schema in schemas.items():
        spec = OutputSpec(kind="tools", tools=[ToolSpec("f", "", schema)], tool_choice="f", parallel=False)
        worker.prepare([Message("user", "x")], spec, SamplingParams(max_tokens=8), lambda ev: None)


@pytest.mark.parametrize("name,schema", list(bfcl_schemas(every=25).items()))
def test_bfcl_sample_outputs_validate(worker, name, schema):
    g = call(worker, schema)
    if g.finish_reason == "tool_calls":
        jsonschema.validate(json.loads(g.tool_calls[0].arguments), schema)
    else:
        assert g.finish_reason == "length" and g.truncated


def test_json_answers_validate(worker):
    schema = HARD["formats"]
    g = worker.run([Message("user", "Give an example.")], OutputSpec(kind="json", schema=schema),
                   SamplingParams(max_tokens=300, temperature=0))
    assert g.finish_reason == "stop"
    jsonschema.validate(json.loads(g.content), schema, format_checker=jsonschema.FormatChecker())


def test_gbnf_engine_produces_the_same_kind_of_valid_calls(home):
    # llama.cpp's GBNF sampler stays available (--constraint-engine gbnf) to compare engines.
    engine = Engine(Settings(home=home, threads=THREADS, n_ctx=4096, constraint_engine="gbnf"))
    try:
        w = engine.worker("default")
        for name in ("ref-defs", "enum-const", "nested-arrays"):
            # the bare base: GBNF ignores number bounds, and under the tools adapter the model writes a
            # -1 below a minimum of 0 here (validation catches it, as the "bounds" case below shows)
            g = call(w, HARD[name], adapter="none")
            assert g.finish_reason == "tool_calls", (name, g)
            assert g.timings["forced_tokens"] == 0  # GBNF cannot fast-forward
            jsonschema.validate(json.loads(g.tool_calls[0].arguments), HARD[name])
        g = w.run([Message("user", "Give an example.")], OutputSpec(kind="json", schema=HARD["enum-const"]),
                  SamplingParams(max_tokens=100, temperature=0))
        jsonschema.validate(json.loads(g.content), HARD["enum-const"])
        # llama-cpp-python's schema converter lets raw control characters into strings and ignores
        # number bounds; validation after decoding catches that instead of returning it as valid.
        try:
            g = call(w, HARD["bounds"])
            jsonschema.validate(json.loads(g.tool_calls[0].arguments), HARD["bounds"])
        except BackendError as e:
            assert "fail their schema" in e.message
    finally:
        engine.close()
