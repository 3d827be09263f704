"""The conversion pipeline's widening of a task's captured calls (S5's data), from the capture alone:
real users have no generator, so the pipeline widens what it trains on by rule.

- `swap_values`: a captured call again with the values the request states (a city, a title, a number)
  swapped for values other captured calls of the task gave the same parameter, in the request and in the
  call alike, so a student learns to copy the value, not to remember it; open sets' values are widened by
  rule first (`opened`: several words, letters outside ASCII, words crossed, codes' digits drawn again);
- `state_enum`: a captured call again with an enum value stated in the request and taken by the call;
- `drop_optional` and `ask_missing`: a captured call whose request states an optional value again without
  it (the call leaves it out), and one whose request lacks a required value, answered with a question
  for it (When2Call: ask, do not invent), only for a value every captured request states (`always_stated`:
  a value users leave to be inferred is none to ask for). `cut` takes a value and its preposition out of
  a request (the tools recipe's Seal-Tools asks use it too);
- `reword` (pipeline/rephrase.py): a captured call again with its request worded otherwise, by the teacher
  when an upstream is configured, else by rule, every value the call takes kept as written;
- `bare_end`: a copy again with no full stop after the value that ends its request.

`widened` puts them together, seeded. Examples in the recipe's form, as pipeline/augment.py's.
"""

from __future__ import annotations

import copy
import functools
import json
import random
import re
from collections.abc import Sequence

from edgeslm.decoding.asks import kind
from edgeslm.pipeline import rephrase


def stated(example: dict) -> list[tuple[str, str, object]]:
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
        for tool, param, v in stated(e):
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
    for tool, param, v in stated(example):
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


_ACCENTS = {"a": "áàâä", "e": "éèêë", "i": "íìîï", "o": "óòôö", "u": "úùûü", "n": "ñ", "c": "ç", "s": "ş", "z": "ž"}


def _accented(v: str, rng: random.Random) -> str | None:
    spots = [i for i, ch in enumerate(v) if ch in _ACCENTS]
    if not spots:
        return None
    i = rng.choice(spots)
    return v[:i] + rng.choice(_ACCENTS[v[i]]) + v[i + 1:]


def _redrawn(v: str, rng: random.Random) -> str | None:
    """`v` with each digit drawn again, where it holds letters as well ("Miete #4471" -> "Miete #0938"): a
    code of the same shape that no captured call holds. Values of digits and marks alone (dates, times,
    phone numbers) are left alone: redrawn, they would be dates no one writes."""
    if not (any(ch.isdigit() for ch in v) and any(ch.isalpha() for ch in v)):
        return None
    return re.sub(r"\d", lambda _: str(rng.randint(0, 9)), v)


def _crossed(a: str, b: str, rng: random.Random) -> str | None:
    """The first words of `a` before the last words of `b` ("Faktura März" x "Invoice Q3 2026" ->
    "Faktura Q3 2026"): free text recombined from captured words; None when neither has two words."""
    wa, wb = a.split(), b.split()
    if len(wa) < 2 or len(wb) < 2:
        return None
    return " ".join(wa[:rng.randint(1, len(wa) - 1)] + wb[rng.randint(1, len(wb) - 1):])


def opened(pool: dict[tuple[str, str], list], rng: random.Random,
           keys: set[tuple[str, str]] | None = None, avoid: frozenset = frozenset()) -> dict[tuple[str, str], list]:
    """`pool` with, for each parameter in `keys` (all: None), up to half as many again made from its string
    values by rule. Names (letters and spaces): two joined ("Quito Perth": a value of several words) or one
    with a letter accented ("Quitó": a value outside ASCII). Other free text: words of two values crossed
    ("Faktura Q3 2026") or, in a code of letters and digits, the digits drawn again ("Miete #0938").
    None need be real: a student trained on them copies a value whole, as written, instead of stopping where
    the words of its captured values stop (measured: a weather student trained on one-word ASCII cities wrote
    "Salt Lake" for Salt Lake City and "Krak" for Kraków) or leaving out a value it never saw (a transfer
    student left out 12 of 41 stated references, most of them new combinations of captured words).
    `widened` passes only the open sets (`open_sets`), and the values of held-out calls as `avoid`: made by
    chance, one would be a value the gate's split keeps out of training."""
    out = {}
    for key, values in pool.items():
        out[key] = list(values)
        texts = [v for v in values if isinstance(v, str)]
        if len(texts) < 2 or 2 * len(texts) < len(values) or (keys is not None and key not in keys):
            continue  # too few to draw from, not text, or not an open set
        for _ in range(len(texts) // 2):
            a, b = rng.sample(texts, 2)
            if f"{a}{b}".replace(" ", "").isalpha():  # names: letters and spaces
                made = f"{a} {b}" if rng.random() < 0.5 else _accented(a, rng)
            else:
                ways = [m for m in (_crossed(a, b, rng), _redrawn(a, rng)) if m]
                made = rng.choice(ways) if ways else None
            if made and made not in out[key] and made not in avoid:
                out[key].append(made)
    return out


def open_sets(fit: list[dict]) -> set[tuple[str, str]]:
    """The (tool, parameter)s whose stated values come from an open set: no `enum` in the tool's schema,
    and more than half of the distinct values stated once only. Values that recur (units, time windows,
    products off a short list) are a closed vocabulary, where made values would be nonsense ("kelvin
    hectares"); the share does not depend on how many calls there are, as a count per value would."""
    closed = {(t["function"]["name"], k) for e in fit for t in e.get("tools") or [] if isinstance(t, dict) and "function" in t
              for k, p in ((t["function"].get("parameters") or {}).get("properties") or {}).items()
              if isinstance(p, dict) and p.get("enum")}
    seen: dict[tuple[str, str], dict] = {}
    for e in fit:
        for tool, param, v in stated(e):
            counts = seen.setdefault((tool, param), {})
            counts[v] = counts.get(v, 0) + 1
    return {k for k, counts in seen.items() if k not in closed and 2 * sum(n == 1 for n in counts.values()) > len(counts)}


_STATE = ("{text} {V} {p}.", "{text} ({p}: {v})", "{text} Set the {p} to {v}.", "{text} The {p} is {v}.",
          "{V} {p}. {text}")


def state_enum(example: dict, rng: random.Random) -> dict | None:
    """A one-call example again with one enum parameter's value stated in the request by rule ("... Low
    priority.") and taken by the call, whatever the rest of the request implies: what the user says wins.
    Calls whose enum values only follow from the request's kind (an "invoice" goes to billing) teach a
    student the mapping and to ignore a stated value (measured: the e-mail student answered "high" to
    "normal priority, just leave it in the inbox"). None when no enum value is left unstated."""
    one = _one_call(example)
    if one is None:
        return None
    call, args, schema, text = one
    props = schema.get("properties") or {}
    free = [k for k in sorted(args) if isinstance(props.get(k), dict) and len(props[k].get("enum") or []) > 1
            and all(isinstance(x, str) for x in props[k]["enum"])
            and all(props[k]["enum"]) and not any(re.search(rf"(?<!\w){re.escape(x)}(?!\w)", text, re.I) for x in props[k]["enum"])]
    if not free:
        return None
    k = rng.choice(free)
    v = rng.choice(props[k]["enum"])
    p = k.replace("_", " ")
    said = rng.choice(_STATE).format(text=text.rstrip(), V=v[:1].upper() + v[1:], v=v, p=p)
    fn = {**call["function"], "arguments": json.dumps({**args, k: v}, ensure_ascii=False)}
    return _with_request(example, said, {**example["answer"], "tool_calls": [{**call, "function": fn}]})


PREPS = (" with the ID ", " with ID ", " with the id ", " named ", " called ", " titled ", " for ", " in ", " of ",
         " at ", " about ", " to ", " from ", " on ")
_CAPTURED_PREPS = PREPS + (" with ", " into ")  # the pipeline's own requests ("invite ... with jane@...")


def cut(text: str, value: str, preps: tuple[str, ...] = PREPS) -> str | None:
    """`text` without `value` and the preposition that leads it ("weather in Oslo in celsius" without
    "celsius" -> "weather in Oslo"), quoted or not; None when the value is not led by one of PREPS, occurs
    more than once, or would still be in the text."""
    if not value or text.count(value) != 1:
        return None
    for prep in preps:
        for quoted in (f'"{value}"', f"'{value}'", value):
            if prep + quoted in text:
                out = text.replace(prep + quoted, "", 1)
                return None if value.lower() in out.lower() else out
    return None


def _one_call(example: dict) -> tuple[dict, dict, dict, str] | None:
    """(call, its arguments, the tool's schema, the last user text) of a one-call example, else None."""
    calls = example["answer"].get("tool_calls") or []
    users = [m for m in example["messages"] if m.get("role") == "user" and isinstance(m.get("content"), str)]
    if len(calls) != 1 or not users or users[-1] is not example["messages"][-1]:
        return None
    try:
        args = json.loads(calls[0]["function"]["arguments"] or "{}")
    except (TypeError, ValueError):
        return None
    name = calls[0]["function"]["name"]
    tool = next((t["function"] for t in example.get("tools") or [] if t.get("function", {}).get("name") == name), None)
    if tool is None or not isinstance(args, dict):
        return None
    return calls[0], args, tool.get("parameters") or {}, users[-1]["content"]


def _with_request(example: dict, text: str, answer: dict) -> dict:
    e = copy.deepcopy(example)
    e["messages"][-1]["content"] = text
    e["answer"] = answer
    return e


def drop_optional(example: dict, rng: random.Random) -> dict | None:
    """A one-call example again with one optional value the request states cut out of the request and
    out of the call (a student learns to leave out what was not said); None when none can be cut."""
    one = _one_call(example)
    if one is None:
        return None
    call, args, schema, text = one
    required = set(schema.get("required") or [])
    for k in rng.sample(sorted(args), len(args)):
        v = args[k]
        if k in required or not isinstance(v, (str, int)) or isinstance(v, bool):
            continue
        shorter = cut(text, str(v), _CAPTURED_PREPS)
        if shorter is not None:
            fn = {**call["function"], "arguments": json.dumps({a: x for a, x in args.items() if a != k}, ensure_ascii=False)}
            return _with_request(example, shorter, {**example["answer"], "tool_calls": [{**call, "function": fn}]})
    return None


def bare_end(example: dict, rng: random.Random) -> dict | None:
    """The example again with the full stop (or "?", "!") after its request's last value left out, where a
    stated value ends the request: people type "status check: order 1290387" too, and a student that only
    met a value followed by something runs on past one that ends the message ("1290387entire"). The call
    stays as it is; None where no stated value ends the request."""
    users = [m for m in example["messages"] if m.get("role") == "user" and isinstance(m.get("content"), str)]
    if not users:
        return None
    text = users[-1]["content"]
    body = text.rstrip().rstrip(".?!").rstrip()
    if body == text or not any(body.endswith(str(v)) for _, _, v in stated(example)):
        return None
    e = copy.deepcopy(example)
    [m for m in e["messages"] if m.get("role") == "user" and isinstance(m.get("content"), str)][-1]["content"] = body
    return e


def ask_for(param: str, prop: dict, rng: random.Random) -> str:
    """A question for a parameter's value, in the words of its description when that reads as a noun
    ("The city name" -> "Could you tell me the city name?"), else of its name."""
    return rng.choice(ask_texts(param, prop))


def ask_texts(param: str, prop: dict) -> list[str]:
    desc = str(prop.get("description", "")).split(" (e.g.")[0].rstrip(". ")
    what = (desc[0].lower() + desc[1:]) if desc.lower().startswith("the ") else f"the {param.replace('_', ' ')}"
    return [f"Could you tell me {what}?", f"Sure. What is {what}?", f"I need one more detail first: what is {what}?"]


def asks(fit: list[dict]) -> list[dict]:
    """What a student trained on `fit` widened with `ask_missing` may ask: for each required parameter it asks for
    (always_stated), its questions and the kind of value its captured calls gave it (decoding/asks.kind), for its
    training record; the server leans away from those questions while a request states a value of the kind."""
    pool, out = value_pool(fit), []
    for tool, param in sorted(always_stated(fit)):
        schema = next((t["function"].get("parameters") or {} for e in fit for t in e.get("tools") or []
                       if t.get("function", {}).get("name") == tool), {})
        if param in (schema.get("required") or []):
            prop = (schema.get("properties") or {}).get(param) or {}
            out.append({"tool": tool, "param": param, "kind": kind(pool.get((tool, param), [])), "texts": ask_texts(param, prop)})
    return out


def kinds(fit: list[dict]) -> dict[str, dict[str, str]]:
    """tool -> parameter -> the kind every value the captured requests state for it is (decoding/asks.kind: an e-mail
    address, a code, a clock time, a date, a number, a name), for the student's training record: the server keeps a value
    of e-mail addresses, times or dates on the request's own, and its other values off them (asks.Kept)."""
    out: dict[str, dict[str, str]] = {}
    for (tool, param), vs in sorted(value_pool(fit).items()):
        if k := kind(vs):
            out.setdefault(tool, {})[param] = k
    return out


def always_stated(fit: list[dict]) -> set[tuple[str, str]]:
    """(tool, parameter) pairs whose string value every captured one-call request states: a value users
    leave to be inferred (a folder implied by the kind of e-mail) is no value to ask for."""
    seen: dict[tuple[str, str], bool] = {}
    for e in fit:
        one = _one_call(e)
        if one is None:
            continue
        call, args, _, text = one
        for k, v in args.items():
            if isinstance(v, str):
                key = (call["function"]["name"], k)
                seen[key] = seen.get(key, True) and v.lower() in text.lower()
    return {k for k, ok in seen.items() if ok}


def ask_missing(example: dict, rng: random.Random, stated: set[tuple[str, str]] | None = None) -> dict | None:
    """When2Call: a one-call example with a required string value cut out of the request, answered with a
    question for that value and no call (a student asks rather than invents); None when none can be cut.
    With `stated` (always_stated), only those parameters' values are cut."""
    one = _one_call(example)
    if one is None:
        return None
    call, args, schema, text = one
    for k in schema.get("required") or []:
        if stated is not None and (call["function"]["name"], k) not in stated:
            continue
        v = args.get(k)
        if not isinstance(v, str) or len(v) < 2 or (shorter := cut(text, v, _CAPTURED_PREPS)) is None:
            continue
        question = ask_for(k, (schema.get("properties") or {}).get(k) or {}, rng)
        return _with_request(example, shorter, {"role": "assistant", "content": question, "tool_calls": None})
    return None


def widened(fit: list[dict], copies: int, seed: int, drop: float = 0.0, ask: float = 0.0,
            enums: float = 0.0, reword: float = 0.0, teacher: dict | None = None,
            held: Sequence[dict] = (), bare: float = 0.0) -> tuple[list[dict], int]:
    """(`fit` plus `copies` value-swapped copies of each of its calls, plus for a `drop` share of them a
    copy with an optional value left out, for an `ask` share one that asks for a missing required value,
    for an `enums` share one with an enum value stated and for a `bare` share of those copies one that
    ends on its last value (`bare_end`); how many were added). Only values every captured
    request states are asked for (always_stated). Values are drawn from `fit`
    alone (never a dev or held-out call's) and widened by rule (`opened`), seeded; no value made is one that
    a `held` (held-out) example's request states."""
    rng = random.Random(seed)
    avoid = frozenset(v for e in held for _, _, v in stated(e))
    pool = opened(value_pool(fit), rng, open_sets(fit), avoid)
    extra = [x for _ in range(copies) for x in (swap_values(e, pool, rng) for e in fit) if x]
    asks = functools.partial(ask_missing, stated=always_stated(fit))
    words = lambda e, r: rephrase.reworded(e, rephrase.taken(e), r, teacher)  # noqa: E731
    for share, make in ((drop, drop_optional), (ask, asks), (enums, state_enum), (reword, words)):
        if share:
            extra += [x for e in fit if rng.random() < share and (x := make(e, rng))]
    if bare:  # drawn after the others, so a share of 0 leaves what they draw as it was
        extra += [x for e in list(extra) if rng.random() < bare and (x := bare_end(e, rng))]
    return fit + extra, len(extra)
