"""The GBNF fallback engine (llama.cpp's own grammar sampler), kept to compare engines: GBNF for JSON
output and for required or named tool calls in JSON envelopes, and the constraint that samples with it.

Owns nothing but the translation to GBNF (through llama-cpp-python's schema converter); llguidance
(constraints.py) is the default and the only engine for auto, none and the non-JSON call syntaxes.
"""

from __future__ import annotations

from edgeslm.decoding.schemas import Bounds, bounded
from edgeslm.decoding.tools import Envelope
from edgeslm.types import OutputSpec

_ENUM_RANGE = 256


def _small_int_ranges(node):
    """llama-cpp-python's SchemaConverter ignores minimum/maximum (its TODO), so an integer range of up to
    256 values becomes the enum of its values, which it does enforce ("days" 1..7 decoded as 70 failed
    the schema after decoding). Wider ranges stay as they are and are checked after decoding."""
    if isinstance(node, list):
        return [_small_int_ranges(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _small_int_ranges(v) for k, v in node.items()}
    if out.get("type") == "integer" and not {"enum", "const"} & out.keys():
        lo = out.get("minimum", out["exclusiveMinimum"] + 1 if isinstance(out.get("exclusiveMinimum"), int) else None)
        hi = out.get("maximum", out["exclusiveMaximum"] - 1 if isinstance(out.get("exclusiveMaximum"), int) else None)
        step = out.get("multipleOf", 1)
        if isinstance(lo, int) and isinstance(hi, int) and isinstance(step, int) and step > 0 and 0 <= hi - lo < _ENUM_RANGE * step:
            first = lo + (-lo) % step
            return {"enum": list(range(first, hi + 1, step))}
    return out


def gbnf_for(spec: OutputSpec, env: Envelope, bounds: Bounds, max_calls: int) -> str | None:
    """GBNF for JSON output and for required/named tool calls; None where GBNF cannot say it
    (auto and none need "text that does not open a call"): those always use llguidance."""
    from llama_cpp.llama_grammar import SchemaConverter

    conv = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    if spec.kind == "json":
        schema = _small_int_ranges(bounded(spec.schema or {"type": "object"}, bounds))
        conv.visit(conv.resolve_refs(schema, "request"), "")
        return conv.format_grammar()
    if spec.kind != "tools" or spec.tool_choice in ("auto", "none") or env.syntax != "json":
        return None  # (GBNF writes JSON arguments only: the other syntaxes use llguidance)
    tools = [t for t in spec.tools if spec.tool_choice == "required" or t.name == spec.tool_choice]
    calls = []
    for i, t in enumerate(tools):
        rule = conv.visit(conv.resolve_refs(_small_int_ranges(bounded(t.parameters, bounds)), f"tool{i}"), f"tool{i}-args")
        calls.append(f"{conv._format_literal(env.head(t.name))} {rule} {conv._format_literal(env.tail())}")
    n = max_calls if spec.parallel and env.parallel else 1
    sep = conv._format_literal(env.sep)
    root = f"root ::= call ({sep} call){{0,{n - 1}}}\ncall ::= " + " | ".join(f"( {c} )" for c in calls)
    return root + "\n" + conv.format_grammar()


class GbnfConstraint:
    """llama.cpp's own grammar sampler: it masks and samples in one chain, with no forced tokens."""

    samples = True

    def __init__(self, backend, grammar: str, temperature: float | None, top_p: float | None, seed: int | None):
        # None: not given by the request; generation.Run sets the resolved defaults before sampling
        self.backend, self.grammar = backend, grammar
        self.params = (temperature, top_p, seed)
        self.chain = None

    def sample(self, seq: int = 0) -> int:
        if self.chain is None:  # built in the worker thread, right before decoding
            self.chain = self.backend.new_sampler(*self.params, grammar=self.grammar)
        return self.backend.sample(self.chain, seq)

    def consume(self, token: int) -> None:
        pass  # llama_sampler_sample already advanced the grammar

    def forced(self, limit: int) -> list[int]:
        return []

    finished = False  # llama.cpp allows only end-of-generation once the grammar is complete

    def close(self) -> None:
        if self.chain is not None:
            self.backend.free_sampler(self.chain)
            self.chain = None
