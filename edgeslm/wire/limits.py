"""Request limits: everything a request can make grow is bounded by a setting, and a request over
one gets a 400 that names the field (`param`) and the limit (`code`), before any work is done.

Owns the checks that need no model: sizes and counts, JSON depth, JSON Schema depth and size, stop
strings, and text that cannot be encoded (a lone UTF-16 surrogate such as "\\ud800" parses as JSON but
is not Unicode text). The body size limit is the HTTP layer's (middleware.py); `max_tokens` against
the context needs the model's tokens (engine.prepare). Every walk here is iterative and linear.
"""

from __future__ import annotations

from edgeslm.config import Settings
from edgeslm.decoding.schemas import facts
from edgeslm.errors import InvalidRequest


def _where(path: list) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def _surrogate(s: str) -> bool:
    try:
        s.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def walk_json(value, max_depth: int, max_chars: int | None = None) -> None:
    """Depth, text and size check of a whole request body (iterative: no recursion limit to hit). A
    node's path is built only when it is reported: the walk stays linear in the body."""
    stack: list[tuple] = [(value, None, 1)]
    chars = 0

    def where(link) -> str:
        parts = []
        while link is not None:
            link, key = link
            parts.append(key)
        return _where(parts[::-1])

    while stack:
        node, link, depth = stack.pop()
        if depth > max_depth:
            raise InvalidRequest(f"{where(link)} nests JSON {depth} levels deep; the limit is {max_depth} "
                                 "(max_json_depth)", param=where(link), code="json_too_deep")
        if isinstance(node, str):
            chars += len(node)
            if _surrogate(node):
                raise InvalidRequest(f"{where(link)} holds a lone UTF-16 surrogate (such as \\ud800), which is not "
                                     "text; send valid Unicode", param=where(link), code="invalid_unicode")
        elif isinstance(node, dict):
            for k, v in node.items():
                chars += len(k) if isinstance(k, str) else 0
                if isinstance(k, str) and _surrogate(k):
                    raise InvalidRequest(f"a key in {where(link)} holds a lone UTF-16 surrogate; send valid Unicode",
                                         param=where(link), code="invalid_unicode")
                stack.append((v, (link, k), depth + 1))
        elif isinstance(node, list):
            stack.extend((v, (link, i), depth + 1) for i, v in enumerate(node))
        if max_chars is not None and chars > max_chars:
            raise InvalidRequest(f"the request holds over {max_chars} characters of text (max_text_chars)",
                                 param=where(link) if link is not None else None, code="text_too_long")


def check_schema_size(schema, param: str, st: Settings) -> None:
    """A JSON Schema's nesting and serialized size, before any validator or grammar recurses into it
    (decoding/schemas.facts: measured in the one walk of this schema, kept for the rest of the request)."""
    f = facts(schema)
    if f.depth > st.max_schema_depth:
        raise InvalidRequest(f"{param} nests more than {st.max_schema_depth} levels deep (max_schema_depth)",
                             param=param, code="schema_too_deep")
    if f.size > st.max_schema_bytes:
        raise InvalidRequest(f"{param} is {f.size} bytes as JSON; the limit is {st.max_schema_bytes} (max_schema_bytes)",
                             param=param, code="schema_too_large")


def check(body: dict, st: Settings) -> None:
    """All limits of one request, given as the parsed JSON body: chat completions, Responses (`input`
    items, flat function tools, `text.format`) or Messages (`input_schema`). The counts come first: each
    costs a length, so a body of 100,000 parts is refused before anything walks it."""
    items = body.get("input")  # Responses input items (objects); embeddings' inputs are strings or token ids
    key = "input" if "messages" not in body and isinstance(items, list) and items and isinstance(items[0], dict) else "messages"
    messages, tools = body.get(key) or [], body.get("tools") or []
    messages = messages if isinstance(messages, list) else []
    tools = tools if isinstance(tools, list) else []
    if len(messages) > st.max_messages:
        raise InvalidRequest(f"{key} holds {len(messages)} messages; the limit is {st.max_messages} (max_messages)",
                             param=key, code="too_many_messages")
    if len(tools) > st.max_tools:
        raise InvalidRequest(f"tools holds {len(tools)} tools; the limit is {st.max_tools} (max_tools)",
                             param="tools", code="too_many_tools")
    for i, m in enumerate(messages if isinstance(messages, list) else []):
        parts = m.get("content") if isinstance(m, dict) else None
        if isinstance(parts, list) and len(parts) > st.max_content_parts:
            raise InvalidRequest(f"{key}[{i}].content holds {len(parts)} parts; the limit is {st.max_content_parts} "
                                 "(max_content_parts)", param=f"{key}[{i}].content", code="too_many_content_parts")
    for i, t in enumerate(tools):
        if not isinstance(t, dict):
            continue
        for where, params in ((f"tools[{i}].function.parameters", (t.get("function") or {}).get("parameters")
                               if isinstance(t.get("function"), dict) else None),
                              (f"tools[{i}].parameters", t.get("parameters")), (f"tools[{i}].input_schema", t.get("input_schema"))):
            if params is not None:
                check_schema_size(params, where, st)
    fmt, text = body.get("response_format"), body.get("text")
    schema = ((fmt.get("json_schema") or {}).get("schema")) if isinstance(fmt, dict) and isinstance(fmt.get("json_schema"), dict) else None
    if schema is not None:
        check_schema_size(schema, "response_format.json_schema.schema", st)
    config = body.get("output_config")
    text = text if isinstance(text, dict) else config if isinstance(config, dict) else None
    text_fmt = text.get("format") if isinstance(text, dict) else None
    if isinstance(text_fmt, dict) and text_fmt.get("schema") is not None:
        check_schema_size(text_fmt["schema"], "text.format.schema" if "text" in body else "output_config.format.schema", st)
    walk_json(body, st.max_json_depth, st.max_text_chars)
    stop = body.get("stop", body.get("stop_sequences"))
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    total = sum(len(s) for s in stops if isinstance(s, str))
    if total > st.max_stop_chars:
        raise InvalidRequest(f"the stop strings hold {total} characters; the limit is {st.max_stop_chars} "
                             "(max_stop_chars)", param="stop", code="stop_too_long")
