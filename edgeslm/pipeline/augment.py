"""Training-example augmentations for the "tools" recipe, the ones that work for small models (Hammer):

- `mask`: function and parameter names become random identifiers, consistently in the tools, the
  earlier turns' calls, `tool_choice` and the answer, so the model must read the descriptions. Only
  names that carry a description are masked (an undescribed name is all the model has).
- `drop_gold`: an irrelevance example made by removing the answer's tools from the offer; the answer
  becomes a short text that says no tool fits. Only single-turn examples whose other tools remain.
- `shuffled`: the tool list in another order (the position of the right tool teaches nothing).
- `swap_values`: for the conversion pipeline, whose users have no generator: a captured call again with
  the values the request states (a city, a title, a number) swapped for values other captured calls of
  the task gave the same parameter, in the request and in the call alike, so a student learns to copy
  the value, not to remember it.

Each takes and returns examples in the recipe's form ({"messages", "tools", "tool_choice"?, "answer",
"kind", ...}); seeded by the caller's Random. Knows nothing of models or data sources.
"""

from __future__ import annotations

import copy
import json
import random
import re
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


def drop_gold(example: dict, refusal: str) -> dict | None:
    """The example as an irrelevance example: its answer's tools removed from the offer, answered with
    `refusal`. None if it is not a single-turn call with other tools left to offer."""
    calls = example["answer"].get("tool_calls")
    if not calls or example.get("tool_choice") or any(m["role"] in ("assistant", "tool") for m in example["messages"]):
        return None
    gold = {c["function"]["name"] for c in calls}
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


def _stated(example: dict) -> list[tuple[str, str, object]]:
    """(tool, parameter, value) of the answer's calls whose value the last user message states as written:
    a string of 3+ characters, or an integer standing as a number of its own."""
    users = [m for m in example["messages"] if m.get("role") == "user" and isinstance(m.get("content"), str)]
    if not users:
        return []
    text = users[-1]["content"]
    out: list[tuple[str, str, object]] = []
    for c in example["answer"].get("tool_calls") or []:
        try:
            args = json.loads(c["function"]["arguments"] or "{}")
        except (TypeError, ValueError):
            continue
        for k, v in args.items() if isinstance(args, dict) else ():
            if isinstance(v, str) and len(v) >= 3 and v in text:
                out.append((c["function"]["name"], k, v))
            elif isinstance(v, int) and not isinstance(v, bool) and re.search(rf"(?<![\d.]){v}(?![\d.])", text):
                out.append((c["function"]["name"], k, v))
    return out


def value_pool(examples: list[dict]) -> dict[tuple[str, str], list]:
    """Every value the examples' requests state, by (tool, parameter), each once, in order."""
    pool: dict[tuple[str, str], list] = {}
    for e in examples:
        for tool, param, v in _stated(e):
            if v not in pool.setdefault((tool, param), []):
                pool[(tool, param)].append(v)
    return pool


def _in_text(text: str, swaps: dict) -> str:
    """Every swapped value in `text` at once (so Lisbon -> Porto and Porto -> Faro do not chain)."""
    words = sorted((o for o in swaps if isinstance(o, str)), key=len, reverse=True)
    nums = [str(o) for o in swaps if not isinstance(o, str)]
    parts = [re.escape(w) for w in words] + [rf"(?<![\d.]){n}(?![\d.])" for n in nums]
    if not parts:
        return text
    by_text = {str(o): str(n) for o, n in swaps.items()}
    return re.sub("|".join(parts), lambda m: by_text[m.group(0)], text)


def _swapped(v, swaps: dict):
    if isinstance(v, str):  # wherever it holds a swapped string ("Trip to Lisbon" with the city)
        return _in_text(v, {o: n for o, n in swaps.items() if isinstance(o, str)})
    if isinstance(v, int) and not isinstance(v, bool):
        return swaps.get(v, v)
    return v


def swap_values(example: dict, pool: dict[tuple[str, str], list], rng: random.Random) -> dict | None:
    """`example` with each value its request states swapped for another the pool holds for that parameter,
    in every user message and in the call; None when no value has another to swap with. A number is
    swapped only as a whole number in the text; enum values are never in the pool's way (a request that
    states `celsius` still gets `celsius`: only the value's own parameter's values are drawn)."""
    swaps: dict = {}
    for tool, param, v in _stated(example):
        others = [o for o in pool.get((tool, param), []) if o != v and type(o) is type(v)]
        if others and v not in swaps:
            swaps[v] = rng.choice(others)
    if not swaps:
        return None
    e = copy.deepcopy(example)

    for m in e["messages"]:
        if m.get("role") == "user" and isinstance(m.get("content"), str):
            m["content"] = _in_text(m["content"], swaps)
    for c in e["answer"].get("tool_calls") or []:
        args = json.loads(c["function"]["arguments"] or "{}")
        c["function"]["arguments"] = json.dumps({k: _swapped(v, swaps) for k, v in args.items()}, ensure_ascii=False)
    return e


def widened(fit: list[dict], copies: int, seed: int) -> tuple[list[dict], int]:
    """(`fit` plus `copies` value-swapped copies of each of its calls, how many were added): the values
    are drawn from `fit` alone (never a dev or held-out call's), seeded."""
    rng, pool = random.Random(seed), value_pool(fit)
    extra = [x for _ in range(copies) for x in (swap_values(e, pool, rng) for e in fit) if x]
    return fit + extra, len(extra)
