"""Whether a JSON Schema admits any finite JSON value, decided before a grammar is built.

A schema can recurse with no way out: an object whose required property refers back to the object
itself (`"required": ["next"]`, `"next": {"$ref": "#/$defs/node"}`) admits only infinite values. A grammar
engine then accepts tokens forever and fails somewhere in the middle of decoding. Here the question is
answered on the schema alone, as a least fixed point over its local `$ref`s: a `$ref` target is finite
once some branch of it can close with targets already known to be finite. A recursion with a finite
branch (an `anyOf` with one option that does not refer back, an optional property, an array that may be
empty) is finite. Knows nothing about grammars or tokens; what it cannot judge (remote `$ref`s, keywords
it does not know) it treats as satisfiable and leaves to the grammar engine.
"""

from __future__ import annotations

from typing import Any

_SCALARS = {"string", "number", "integer", "boolean", "null"}


def _pointer(root: Any, ref: str) -> tuple[Any, bool]:
    """The node a local `$ref` names, and whether it was found."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        return None, False
    node = root
    for part in [p for p in ref[1:].split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None, False
    return node, True


class _Finite:
    def __init__(self, root: Any):
        self.root = root
        self.known: dict[str, bool] = {}  # $ref -> admits a finite value (False until shown otherwise)

    def refs(self) -> set[str]:
        found, stack = set(), [self.root]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if isinstance(node.get("$ref"), str):
                    found.add(node["$ref"])
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        return found

    def solve(self) -> None:
        refs = self.refs()
        self.known = dict.fromkeys(refs, False)
        changed = True
        while changed:  # monotone: each pass can only turn a False into True, so at most len(refs) passes
            changed = False
            for ref in refs:
                if not self.known[ref]:
                    target, ok = _pointer(self.root, ref)
                    if not ok or self.ok(target):
                        self.known[ref] = changed = True

    def ok(self, node: Any) -> bool:
        """Does `node` admit a finite value, given what is known of the $refs?"""
        return self.cause(node) is None

    def cause(self, node: Any) -> tuple[str, Any] | None:
        """None when `node` admits a finite value; else (the key that rules it out, the sub-node)."""
        if node is False:
            return ("false", None)
        if not isinstance(node, dict):
            return None
        ref = node.get("$ref")
        if isinstance(ref, str) and not self.known.get(ref, True):
            return ("$ref", ref)
        for i, sub in enumerate(node.get("allOf") or []):
            if not self.ok(sub):
                return (f"allOf[{i}]", sub)
        for key in ("anyOf", "oneOf"):
            subs = node.get(key)
            if isinstance(subs, list) and subs and not any(self.ok(s) for s in subs):
                return (f"{key}[0]", subs[0])
        if "const" in node or isinstance(node.get("enum"), list) and node["enum"]:
            return None
        types = node.get("type")
        types = types if isinstance(types, list) else [types] if isinstance(types, str) else None
        if types is None:  # no type: a scalar will do unless the schema says more about objects only
            return None if not node.get("required") else self._object(node)
        first = None
        for t in types:
            why = None if t in _SCALARS else self._object(node) if t == "object" else (
                self._array(node) if t == "array" else None)
            if why is None:
                return None
            first = first or why
        return first

    def _object(self, node: dict) -> tuple[str, Any] | None:
        props: dict = node["properties"] if isinstance(node.get("properties"), dict) else {}
        for name in node.get("required") or []:
            if name in props:
                sub = props[name]
            else:
                sub = node.get("additionalProperties", True)
            if not self.ok(sub):
                return (f"properties.{name}" if name in props else "additionalProperties", sub)
        return None

    def _array(self, node: dict) -> tuple[str, Any] | None:
        need = node.get("minItems") or 0
        prefix: list = node["prefixItems"] if isinstance(node.get("prefixItems"), list) else []
        for i in range(min(need, len(prefix))):
            if not self.ok(prefix[i]):
                return (f"prefixItems[{i}]", prefix[i])
        if need > len(prefix) and not self.ok(node.get("items", True)):
            return ("items", node.get("items"))
        return None


def infinite_path(schema: Any, where: str) -> str | None:
    """None when `schema` admits a finite JSON value; else a message naming the schema path (starting at
    `where`, the request field) that can only recurse, for a 400 before any decoding."""
    f = _Finite(schema)
    f.solve()
    path, node, seen = where, schema, set()
    while True:
        why = f.cause(node)
        if why is None:
            return None
        key, sub = why
        if key == "false":
            return f"{path} is `false`: no value is allowed there"
        if key == "$ref":
            if sub in seen:
                return (f"{path} refers to {sub} with no way to end: every value of it must contain itself again "
                        "(make the recursive property optional, or add a non-recursive anyOf branch)")
            seen.add(sub)
            node, _ = _pointer(schema, sub)
            path = where + (sub[1:].replace("/", ".") if sub != "#" else "")
            continue
        path, node = f"{path}.{key}", sub
