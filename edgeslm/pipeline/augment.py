"""Training-example augmentations for the "tools" recipe, the ones that work for small models (Hammer):

- `mask`: function and parameter names become random identifiers, consistently in the tools, the
  earlier turns' calls, `tool_choice` and the answer, so the model must read the descriptions. Only
  names that carry a description are masked (an undescribed name is all the model has).
- `drop_gold`: an irrelevance example made by removing the answer's tools from the offer; the answer
  becomes a short text that says no tool fits. Only single-turn examples whose other tools remain.
- `shuffled`: the tool list in another order (the position of the right tool teaches nothing).

The conversion pipeline's widening of a task's captured calls is pipeline/widen.py. Each takes and
returns examples in the recipe's form ({"messages", "tools", "tool_choice"?, "answer", "kind", ...});
seeded by the caller's Random. Knows nothing of models or data sources.
"""

from __future__ import annotations

import copy
import json
import random
import string


def _ident(rng: random.Random, taken: set[str]) -> str:
    while True:
        name = rng.choice(string.ascii_lowercase) + "".join(
            rng.choice(string.ascii_lowercase + string.digits) for _ in range(rng.randint(4, 9)))
        if name not in taken:
            taken.add(name)
            return name


def _rename_call(fn: dict, names: dict[str, str], params: dict[str, dict[str, str]]) -> None:
    """A call's {"name", "arguments": JSON text} renamed in place."""
    old = fn["name"]
    try:
        args = json.loads(fn.get("arguments") or "{}")
    except ValueError:
        args = None
    if isinstance(args, dict) and old in params:
        fn["arguments"] = json.dumps({params[old].get(k, k): v for k, v in args.items()}, ensure_ascii=False)
    fn["name"] = names.get(old, old)


def mask(example: dict, rng: random.Random) -> dict:
    """The example with described function names and described parameter names replaced by random
    identifiers everywhere they occur (nested properties keep their names)."""
    ex = copy.deepcopy(example)
    taken: set[str] = set()
    names: dict[str, str] = {}
    params: dict[str, dict[str, str]] = {}
    for t in ex.get("tools") or []:
        fn = t["function"]
        old = fn["name"]
        props = (fn.get("parameters") or {}).get("properties") or {}
        pmap = {k: _ident(rng, taken) for k, p in props.items() if isinstance(p, dict) and p.get("description")}
        if pmap:
            fn["parameters"]["properties"] = {pmap.get(k, k): p for k, p in props.items()}
            if "required" in fn["parameters"]:
                fn["parameters"]["required"] = [pmap.get(k, k) for k in fn["parameters"]["required"]]
            params[old] = pmap
        if fn.get("description"):
            names[old] = fn["name"] = _ident(rng, taken)
    if not names and not params:
        return example
    for m in ex["messages"]:
        for c in m.get("tool_calls") or []:
            _rename_call(c["function"], names, params)
    for c in ex["answer"].get("tool_calls") or []:
        _rename_call(c["function"], names, params)
    choice = ex.get("tool_choice")
    if isinstance(choice, dict) and "function" in choice:
        choice["function"]["name"] = names.get(choice["function"]["name"], choice["function"]["name"])
    ex["masked"] = True
    return ex


def first_turn_calls(example: dict) -> bool:
    """Whether `example` is a request before any call or result (a system prompt allowed), with no
    tool_choice, answered with calls."""
    return (bool(example["answer"].get("tool_calls")) and not example.get("tool_choice")
            and not any(m["role"] in ("assistant", "tool") for m in example["messages"]))


def drop_gold(example: dict, refusal: str) -> dict | None:
    """The example as an irrelevance example: its answer's tools removed from the offer, answered with
    `refusal`. None if it is not a single-turn call with other tools left to offer."""
    if not first_turn_calls(example):
        return None
    gold = {c["function"]["name"] for c in example["answer"]["tool_calls"]}
    rest = [t for t in example.get("tools") or [] if t["function"]["name"] not in gold]
    if not rest:
        return None
    return {**example, "tools": rest, "answer": {"content": refusal}, "kind": example.get("kind", "") + ":no_gold",
            "id": f"{example.get('id', '')}:no_gold"}


def shuffled(example: dict, rng: random.Random) -> dict:
    tools = list(example.get("tools") or [])
    if len(tools) < 2:
        return example
    rng.shuffle(tools)
    return {**example, "tools": tools}
