"""JSON Schemas of tools and structured output, walked once each: nesting and size (the guard's limits),
validity (a 400 naming the field), the digits its numbers need, and the bounded copy each grammar engine
compiles. The facts of one distinct schema are cached by its compact JSON (properties in their order), so the guard, translation,
grammar building and preparation of a request (and of every later request with the same tools: agents
send the same ones every time) reuse one walk.

Owns what a grammar adds to a schema that leaves it open (`Bounds`, `bounded`). Knows nothing of
requests: callers raise their own errors from the facts."""

from __future__ import annotations

import copy
import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from edgeslm.errors import GrammarError

# the longest sane rendering of a format ("2026-11-23T20:55:39.123456+01:00"; e-mail and host names: 100)
_FORMAT_CHARS = {"date": 10, "time": 21, "date-time": 32, "uuid": 36, "email": 100, "hostname": 100}
_NUMERIC_KEYS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "const", "enum", "default")
CACHED = 512  # distinct schemas kept


@dataclass(frozen=True)
class Bounds:
    """What a grammar adds to schemas that leave it open (see `bounded`)."""

    max_chars: int = 1024
    int_digits: int = 9
    fraction_digits: int = 6
    # llguidance bounds digits per token as it decodes (constraints.DigitLimit), which keeps exponents
    # (8.854e-12) writable; GBNF can only bound them in the schema, by minimum/maximum/multipleOf
    numbers_in_schema: bool = True


@dataclass
class Facts:
    """One schema, walked once. `digits`: the most digits a number the schema names (a minimum, an enum
    value...) has in its integer part, decimals and exponent. `invalid`: why it is not a valid JSON Schema
    (None when it is), checked on first use. The bounded copies are made on first use per Bounds and
    are read-only."""

    schema: Any
    depth: int
    size: int
    digits: tuple[int, int, int]
    _invalid: str | None = ""  # "": not checked yet (the guard reads depth and size before any validator runs)
    _bounded: dict = field(default_factory=dict)

    @property
    def invalid(self) -> str | None:
        if self._invalid == "":
            self._invalid = _why_invalid(self.schema)
        return self._invalid

    def bounded(self, bounds: Bounds) -> dict:
        got = self._bounded.get(bounds)
        if got is None:
            got = self._bounded[bounds] = _bound(self.schema, bounds)
        return got


_cache: OrderedDict[str, Facts] = OrderedDict()
_lock = threading.Lock()
stats = {"walks": 0, "hits": 0}


def facts(schema: Any) -> Facts:
    """The facts of `schema`: from the cache when this exact schema was seen, else from one walk."""
    try:
        # the key keeps the order of properties: the grammar writes keys in the schema's order
        key = json.dumps(schema, ensure_ascii=False, separators=(",", ":"))
    except RecursionError:  # nested past what the JSON encoder follows: far past any depth limit
        return Facts(schema, 1 << 30, -1, (0, 0, 0), "nests too deep")
    with _lock:
        got = _cache.get(key)
        if got is not None:
            _cache.move_to_end(key)
            stats["hits"] += 1
            return got
    stats["walks"] += 1
    depth, digits = _walk(schema)
    f = Facts(schema, depth, len(json.dumps(schema)), digits)  # size as the limit counts it
    with _lock:
        _cache[key] = f
        while len(_cache) > CACHED:
            _cache.popitem(last=False)
    return f


def _walk(schema: Any) -> tuple[int, tuple[int, int, int]]:
    """Nesting depth and the digits of the numbers the schema names, in one pass with an explicit stack
    (a hostile schema nested deep must not recurse)."""
    depth, stack, lim = 0, [(schema, 1, False)], [0, 0, 0]
    while stack:
        node, d, numeric = stack.pop()
        depth = max(depth, d)
        if isinstance(node, dict):
            stack.extend((v, d + 1, k in _NUMERIC_KEYS) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, d + 1, numeric) for v in node)
        elif numeric and isinstance(node, (int, float)) and not isinstance(node, bool):
            m = re.fullmatch(r"-?(\d*)\.?(\d*)(?:[eE][-+]?(\d+))?", json.dumps(node))
            if m:
                for i, part in enumerate(m.groups()):
                    lim[i] = max(lim[i], len(part or ""))
    return depth, (lim[0], lim[1], lim[2])


def _why_invalid(schema: Any) -> str | None:
    if not isinstance(schema, dict):
        return f"must be a JSON Schema object, got {type(schema).__name__}"
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as e:
        where = "/".join(str(p) for p in e.absolute_path)
        return f"is not a valid JSON Schema: {e.message} (at '{where}')"
    return None


def check_schema(schema: Any, param: str) -> None:
    """Reject what is not a valid JSON Schema, naming the request field."""
    why = facts(schema).invalid
    if why:
        raise GrammarError(f"{param} {why}", param=param)


def bounded(schema: dict, bounds: Bounds) -> dict:
    """The bounded copy of `schema` (read-only; see _bound), from its cached facts."""
    return facts(schema).bounded(bounds)


def digit_limits(schemas: list, bounds: Bounds) -> tuple[int, int, int]:
    """Most digits in a row for a number's integer part, decimals and exponent: the bounds, raised
    where a number the schemas name (a minimum, an enum value...) needs more."""
    lim = [bounds.int_digits, bounds.fraction_digits, 3]
    for s in schemas:
        for i, n in enumerate(facts(s).digits):
            lim[i] = max(lim[i], n)
    return lim[0], lim[1], lim[2]


def _bound(schema: dict, bounds: Bounds) -> dict:
    """A copy of `schema` that only admits a subset of what it admitted, with every output finite:
    strings without a bound get maxLength, integers and numbers without minimum/maximum stay within
    `int_digits` digits (small models run digits on: "days": 3000000000000000), numbers keep at most
    `fraction_digits` decimals, and objects without `additionalProperties` admit no undeclared keys
    (so a small model cannot invent parameters)."""
    schema = copy.deepcopy(schema)
    limit = 10**bounds.int_digits - 1

    def walk(node: Any, close: bool = True) -> None:
        if isinstance(node, list):
            for x in node:
                walk(x, close)
            return
        if not isinstance(node, dict):
            return
        types = node.get("type")
        types = types if isinstance(types, list) else [types]
        if "string" in types and not {"maxLength", "enum", "const"} & node.keys():
            node["maxLength"] = min(bounds.max_chars, _FORMAT_CHARS.get(str(node.get("format")), bounds.max_chars))
        if bounds.numbers_in_schema and {"integer", "number"} & set(types) and not {"enum", "const"} & node.keys():
            if "minimum" not in node and "exclusiveMinimum" not in node:
                node["minimum"] = -limit
            if "maximum" not in node and "exclusiveMaximum" not in node:
                node["maximum"] = limit
            if "number" in types and "multipleOf" not in node:
                node["multipleOf"] = 10.0**-bounds.fraction_digits
        # allOf members each see only part of the properties: closing them would make them unsatisfiable
        if close and "properties" in node and "additionalProperties" not in node and "allOf" not in node:
            node["additionalProperties"] = False
        for key in ("properties", "$defs", "definitions", "patternProperties"):
            if isinstance(node.get(key), dict):
                walk(list(node[key].values()))
        for key in ("items", "additionalProperties", "not", "if", "then", "else", "contains"):
            walk(node.get(key))
        for key in ("anyOf", "oneOf", "prefixItems"):
            walk(node.get(key))
        walk(node.get("allOf"), close=False)

    walk(schema)
    return schema
