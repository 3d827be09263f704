"""Call syntaxes that are not JSON: how LFM2 and FunctionGemma write a call's arguments.

- `python` (LFM2, LFM2.5): `get_weather(city="Paris", days=2)`, a Python call with keyword arguments,
  several calls as one list: `<|tool_call_start|>[f(a=1), g(b="x")]<|tool_call_end|>`.
- `functiongemma`: `call:get_weather{city:<escape>Paris<escape>,days:2}`, keys bare, strings between
  `<escape>` tokens, each call in its own `<start_function_call>…<end_function_call>`.

For each: the arguments as the model writes them from the JSON the API carries (`render`), a lark
grammar from the tool's JSON Schema so the decoded arguments always parse and validate (`rule`), and
the arguments back as JSON (`to_json`). Owns nothing else: envelopes (decoding/tools.py) say where the
arguments go, constraints.py builds the whole grammar.
"""

from __future__ import annotations

import ast
import json
from typing import Any

ESCAPE = "<escape>"


# ---- writing ---------------------------------------------------------------------------------------

def _py(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return repr(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {_py(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_py(x) for x in v) + "]"
    return json.dumps(v, ensure_ascii=False)  # a JSON string or number is a Python literal too


def _fg(v: Any) -> str:
    if isinstance(v, str):
        return ESCAPE + v + ESCAPE
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}:{_fg(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(_fg(x) for x in v) + "]"
    return json.dumps(v)


def render(syntax: str, name: str, arguments: str) -> str:
    """One call as the syntax writes it (no envelope markers): `name(k=v)` or `call:name{k:v}`."""
    args = json.loads(arguments or "{}")
    if syntax == "python":
        return f"{name}(" + ", ".join(f"{k}={_py(v)}" for k, v in args.items()) + ")"
    return f"call:{name}" + _fg(args)


def fg_declaration(name: str, description: str, parameters: dict) -> str:
    """A tool as FunctionGemma's template declares it: keys in alphabetical order, types in capitals."""
    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (v.upper() if k == "type" and isinstance(v, str) else walk(v)) for k, v in sorted(node.items())
                    if k not in ("additionalProperties", "$schema", "title")}
        if isinstance(node, list):
            return [walk(x) for x in node]
        return node

    body = {"description": description, "parameters": walk(parameters)}
    return f"<start_function_declaration>declaration:{name}{_fg(body)}<end_function_declaration>"


# ---- reading ---------------------------------------------------------------------------------------

def to_json(syntax: str, text: str) -> tuple[str, str]:
    """(name, JSON arguments) of one call's text; ValueError when it is not one."""
    if syntax == "python":
        node = ast.parse(text.strip(), mode="eval").body
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or node.args:
            raise ValueError(f"not a call with keyword arguments: {text!r}")
        args = {k.arg: _literal(k.value) for k in node.keywords if k.arg}
        return node.func.id, json.dumps(args, ensure_ascii=False, separators=(", ", ": "))
    if not text.startswith("call:") or "{" not in text:
        raise ValueError(f"not a FunctionGemma call: {text!r}")
    name, _, rest = text[5:].partition("{")
    value, end = _fg_value("{" + rest, 0)
    if end != len(rest) + 1 or not isinstance(value, dict):
        raise ValueError(f"not a FunctionGemma call: {text!r}")
    return name, json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


_NAMES = {"True": True, "False": False, "None": None, "true": True, "false": False, "null": None}


def _literal(node: ast.AST) -> Any:
    if isinstance(node, ast.Name) and node.id in _NAMES:
        return _NAMES[node.id]
    if isinstance(node, ast.Dict):
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values, strict=True) if k is not None}
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(x) for x in node.elts]
    return ast.literal_eval(node)


def _fg_value(s: str, i: int) -> tuple[Any, int]:
    if s.startswith(ESCAPE, i):
        end = s.find(ESCAPE, i + len(ESCAPE))
        if end < 0:
            raise ValueError("an <escape> string is not closed")
        return s[i + len(ESCAPE):end], end + len(ESCAPE)
    if s.startswith("{", i):
        out, i = {}, i + 1
        while not s.startswith("}", i):
            colon = s.index(":", i)
            key, (value, i) = s[i:colon], _fg_value(s, colon + 1)
            out[key] = value
            i += 1 if s.startswith(",", i) else 0
        return out, i + 1
    if s.startswith("[", i):
        items, i = [], i + 1
        while not s.startswith("]", i):
            value, i = _fg_value(s, i)
            items.append(value)
            i += 1 if s.startswith(",", i) else 0
        return items, i + 1
    end = i
    while end < len(s) and s[end] not in ",}]":
        end += 1
    word = s[i:end]
    if word in _NAMES:
        return _NAMES[word], end
    return json.loads(word), end


def call_end(syntax: str, text: str, start: int) -> int:
    """Where the call that begins at text[start] ends (just past its closing bracket), or -1 while it
    is still open. Strings are skipped: a bracket inside one does not count."""
    if syntax == "python":
        depth, quote, esc, i = 0, "", False, start
        while i < len(text):
            c = text[i]
            if quote:
                esc, quote = (False, quote) if esc else (c == "\\", "" if c == quote else quote)
            elif c in "\"'":
                quote = c
            elif c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        return -1
    depth, i = 0, start
    while i < len(text):
        if text.startswith(ESCAPE, i):
            end = text.find(ESCAPE, i + len(ESCAPE))
            if end < 0:
                return -1
            i = end + len(ESCAPE)
            continue
        if text[i] in "{[":
            depth += 1
        elif text[i] in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


# ---- grammars --------------------------------------------------------------------------------------

class Rules:
    """Lark rules for values of a JSON Schema in one syntax; `value(schema)` returns a rule's name.
    JSON-shaped parts of the python syntax (strings, numbers, objects without booleans) use llguidance's
    %json, so they keep its string and number handling."""

    def __init__(self, syntax: str, json_rule, escape: str = json.dumps(ESCAPE)):
        """`json_rule(schema)`: llguidance's %json rule body; `escape`: the grammar's `<escape>` (the
        model's special token where it is one)."""
        self.syntax, self.json_rule, self.escape = syntax, json_rule, escape
        self.lines: list[str] = []
        self.n = 0
        self._any_rule: str | None = None

    def _new(self, body: str) -> str:
        self.n += 1
        name = f"v{self.n}"
        self.lines.append(f"{name}: {body}")
        return name

    def _lit(self, v: Any) -> str:
        if self.syntax == "python":
            return json.dumps(_py(v), ensure_ascii=False)
        text = _fg(v)
        if isinstance(v, str):
            return f"{self.escape} {json.dumps(v, ensure_ascii=False)} {self.escape}"
        return json.dumps(text, ensure_ascii=False)

    def value(self, schema: Any) -> str:
        if not isinstance(schema, dict) or not schema:
            return self._any()
        if "const" in schema:
            return self._new(self._lit(schema["const"]))
        if "enum" in schema:
            return self._new(" | ".join(self._lit(v) for v in schema["enum"]))
        alts = schema.get("anyOf") or schema.get("oneOf")
        if alts:
            return self._new(" | ".join(self.value(a) for a in alts))
        types = schema.get("type")
        if isinstance(types, list):
            return self._new(" | ".join(self.value({**schema, "type": t}) for t in types))
        if types is None and "properties" in schema:
            types = "object"
        if types == "boolean":
            return self._new('"True" | "False"' if self.syntax == "python" else '"true" | "false"')
        if types == "null":
            return self._new('"None"' if self.syntax == "python" else '"null"')
        if types == "string":
            if self.syntax == "python":
                return self._new(self.json_rule(schema))
            return self._fg_string(schema)
        if types in ("integer", "number"):
            return self._new(self.json_rule(schema))
        if types == "array":
            item = self.value(schema.get("items", {}))
            sep = '", "' if self.syntax == "python" else '","'
            return self._new(f'"[" ({item} ({sep} {item})*)? "]"')
        if types == "object":
            if self.syntax == "python" and not _has_bool_or_null(schema):
                return self._new(self.json_rule(schema))
            return self._object(schema)
        return self._any()

    def _fg_string(self, schema: dict) -> str:
        limit = int(schema.get("maxLength", 1024))
        lexeme = f"FGSTR{limit}"
        if not any(line.startswith(lexeme + ":") for line in self.lines):
            self.lines.append(f"{lexeme}: /(?s:.{{0,{limit}}})/ & ~/(?s:.*<escape>.*)/")
        return self._new(f"{self.escape} {lexeme} {self.escape}")

    def _object(self, schema: dict, kwargs: bool = False) -> str:
        """Properties in the schema's order, each optional one may be left out; `kwargs`: the python
        call's own arguments (k=v, no braces)."""
        props = list((schema.get("properties") or {}).items())
        required = set(schema.get("required") or [])
        if self.syntax == "python":
            sep, key = '", "', (lambda k: json.dumps(f"{k}=") if kwargs else json.dumps(json.dumps(k) + ": "))
        else:
            sep, key = '","', (lambda k: json.dumps(f"{k}:"))
        items = [(f"{key(k)} {self.value(s)}", k in required) for k, s in props]

        def rest(i: int, started: bool) -> str:  # the properties from i on
            if i == len(items):
                return '""'
            body, needed = items[i]
            lead = f"{sep} " if started else ""
            take = self._new(f"{lead}{body} {rest(i + 1, True)}")
            return take if needed else self._new(f"{take} | {rest(i + 1, started)}")

        inner = rest(0, False)
        return inner if kwargs else self._new(f'"{{" {inner} "}}"')

    def arguments(self, schema: dict) -> str:
        """The rule of a call's arguments: `k=v, …` (python) or `{k:v,…}` (functiongemma)."""
        return self._object(schema, kwargs=self.syntax == "python")

    def _any(self) -> str:
        if self._any_rule is not None:
            return self._any_rule
        name = self._any_rule = f"any{self.n + 1}"
        self.n += 1
        scalar = self.value({"type": "string"}) + " | " + self.json_rule({"type": "number"})
        booleans = '"True" | "False" | "None"' if self.syntax == "python" else '"true" | "false" | "null"'
        sep, colon = ('", "', '": "') if self.syntax == "python" else ('","', '":"')
        key = self.json_rule({"type": "string", "maxLength": 64}) if self.syntax == "python" else "/[A-Za-z0-9_]{1,64}/"
        self.lines.append(f'{name}: {scalar} | {booleans} | "[" ({name} ({sep} {name})*)? "]" '
                          f'| "{{" ({key} {colon} {name} ({sep} {key} {colon} {name})*)? "}}"')
        return name


def _has_bool_or_null(schema: Any) -> bool:
    """Whether a value under `schema` may hold true, false or null (written True/False/None in Python),
    or is left open (any value)."""
    if isinstance(schema, dict):
        t = schema.get("type")
        ts = t if isinstance(t, list) else [t]
        if "boolean" in ts or "null" in ts or (t is None and not {"properties", "enum", "const", "anyOf", "oneOf"} & schema.keys()):
            return True
        if any(isinstance(v, bool) or v is None for v in schema.get("enum", [])):
            return True
        return any(_has_bool_or_null(v) for k, v in schema.items() if k in ("properties", "items", "anyOf", "oneOf")
                   for v in (v.values() if isinstance(v, dict) and k == "properties" else [v]))
    if isinstance(schema, list):
        return any(_has_bool_or_null(x) for x in schema)
    return False
