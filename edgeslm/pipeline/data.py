"""Curated examples as the later stages use them: the request they were (messages, tools, output
spec, exactly as `serve` reads it), the teacher's tool calls, a deterministic train / held-out split
per cluster, and how two tool calls are compared (exact, and AST-style as BFCL scores them).

Knows nothing of models or training; finetune, evaluate, select and the router all build on it.
"""

from __future__ import annotations

import hashlib
import json
import re

from edgeslm.config import Settings
from edgeslm.types import Message, OutputSpec, SamplingParams
from edgeslm.wire import translate
from edgeslm.wire.protocol import ChatCompletionRequest

HELD_OUT = 0.2  # share of each cluster kept out of training, for select, the gate and the benchmark


def request(example: dict, settings: Settings, max_tokens: int = 256) -> tuple[list[Message], OutputSpec, SamplingParams]:
    """The example's request as the server would run it, at temperature 0."""
    body = {"model": "edgeslm", "messages": example["messages"], "tools": example.get("tools") or None,
            "temperature": 0, "max_tokens": max_tokens}
    if example.get("tool_choice") is not None:
        body["tool_choice"] = example["tool_choice"]
    return translate.to_internal(ChatCompletionRequest.model_validate(body), settings)


def teacher_calls(example: dict) -> list[dict]:
    """[{"name", "arguments": dict}] of the teacher's answer (curation kept only parseable ones)."""
    return [{"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"] or "{}")}
            for c in example["answer"].get("tool_calls") or []]


def result_facts(example: dict) -> list[str]:
    """What a text answer after a tool's result must state: the values of the results that came back
    since the last user message (strings and numbers, any depth) that the teacher's answer states.
    Empty for a call, or for text that uses no result."""
    text = (example["answer"].get("content") or "").lower()
    msgs = example["messages"]
    last_user = max((i for i, m in enumerate(msgs) if m.get("role") == "user"), default=-1)
    facts: list[str] = []

    def walk(v) -> None:
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, (str, int, float)) and not isinstance(v, bool):
            s = str(v)
            if len(s) >= 2 and s.lower() in text and s not in facts:
                facts.append(s)
    if text and not example["answer"].get("tool_calls"):
        for m in msgs[last_user + 1:]:
            if m.get("role") == "tool" and isinstance(m.get("content"), str):
                try:
                    walk(json.loads(m["content"]))
                except ValueError:
                    walk(m["content"])
    return facts


def states(text: str | None, facts: list[str]) -> bool:
    """Whether a text answer states every fact (case-insensitive)."""
    low = (text or "").lower()
    return bool(text) and all(f.lower() in low for f in facts)


def digest(example: dict) -> str:
    return hashlib.sha256(json.dumps(example, sort_keys=True).encode()).hexdigest()


def split(indices: list[int], examples: list[dict], held_out: float = HELD_OUT) -> tuple[list[int], list[int]]:
    """(train, held-out) of one cluster: ordered by content hash, so a call keeps its side when others
    are added; at least one of each when the cluster has two or more."""
    order = sorted(indices, key=lambda i: digest(examples[i]))
    n_held = min(max(1, round(len(order) * held_out)), len(order) - 1) if len(order) > 1 else 0
    return sorted(order[n_held:]), sorted(order[:n_held])


def free_values(example: dict) -> set[str]:
    """The free-text values of the teacher's calls (strings whose parameter lists no `enum`), normalized as
    BFCL compares strings; values under three characters are left out (they recur in any data)."""
    schemas = {t["function"]["name"]: (t["function"].get("parameters") or {}).get("properties") or {}
               for t in example.get("tools") or [] if isinstance(t, dict) and "function" in t}
    out = set()
    for c in teacher_calls(example):
        props = schemas.get(c["name"], {})
        for k, v in (c["arguments"] or {}).items():
            if isinstance(v, str) and not (props.get(k) or {}).get("enum"):
                norm = _STRIP.sub("", v.lower())
                if len(norm) >= 3:
                    out.add(norm)
    return out


def gate_split(indices: list[int], examples: list[dict], held_out: float = HELD_OUT) -> tuple[list[int], list[int]]:
    """(train, held-out) for the gate. Held-out *values* are chosen rather than held-out calls: the task's
    free-text values, in hash order, join the held-out set until the calls that use one reach `held_out`
    of the calls that have values (a value whose calls would take the set past 1.5 times that is skipped),
    and those calls are held out. No training call uses a held-out value, so each of those held-out calls
    asks for at least one value the student never saw in training, and a student that memorized its
    generator's lists (a city list) fails the gate instead of passing by it.
    Picking calls first and dropping every training call that shares a value with them left the tasks
    whose calls share a small vocabulary with nothing to learn from (measured: units kept 5 calls of 240,
    cart 20). Calls without free-text values split by content hash as `split` does; so does the whole task
    when its values cannot fill half the held-out share (a few values shared by most calls)."""
    values = {i: free_values(examples[i]) for i in indices}
    plain = [i for i in indices if not values[i]]
    train, held = split(plain, examples, held_out) if plain else ([], [])
    with_values = [i for i in indices if values[i]]
    want = round(len(with_values) * held_out)
    users: dict[str, set[int]] = {}
    for i in with_values:
        for v in values[i]:
            users.setdefault(v, set()).add(i)
    out: set[int] = set()
    for v in sorted(users, key=lambda v: hashlib.sha256(v.encode()).hexdigest()):
        if len(out) >= want:
            break
        grown = out | users[v]
        if len(grown) <= max(want * 1.5, want + 1) and len(grown) < len(with_values):
            out = grown
    if len(out) < max(1, want // 2):  # a few common values (statuses, say): no value-disjoint test to make
        return split(indices, examples, held_out)
    return sorted(train + [i for i in with_values if i not in out]), sorted(held + list(out))


def training_hash(examples: list[dict]) -> str:
    """One hash of a training set (recorded with the adapter it trained)."""
    h = hashlib.sha256()
    for d in sorted(digest(e) for e in examples):
        h.update(d.encode())
    return h.hexdigest()


# ---- comparing calls ------------------------------------------------------------------------------

def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=False))
    return a == b


_STRIP = re.compile(r"[ ,./\-_*^]")


def _loose(v):
    """BFCL's normalization: strings lower-cased without spaces and ,./-_*^ ; containers recursively."""
    if isinstance(v, str):
        return _STRIP.sub("", v.lower())
    if isinstance(v, dict):
        return {k: _loose(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_loose(x) for x in v]
    return v


def exact(got: list[dict], want: list[dict]) -> bool:
    """Same calls in the same order, same names, same argument values (numbers compared as numbers)."""
    return len(got) == len(want) and all(g["name"] == w["name"] and _same(g["arguments"], w["arguments"])
                                         for g, w in zip(got, want, strict=False))


def ast_match(got: list[dict], want: list[dict]) -> bool:
    """As `exact`, with strings compared after BFCL's normalization."""
    return len(got) == len(want) and all(g["name"] == w["name"] and _same(_loose(g["arguments"]), _loose(w["arguments"]))
                                         for g, w in zip(got, want, strict=False))
