"""Other wordings of a captured request, for the conversion pipeline's students (issue 24, item 3).

Users have no generator: a task's captured calls are worded as its own users happened to word them, and
a student trained on them learns those wordings. The pipeline widens them from the capture alone:
- `by_teacher`: when an upstream is configured, the teacher rewords each request, asked to keep every
  value as written;
- `by_rule`: otherwise, by rule: the request's opening (a politeness, a question form), its first verb
  (generic synonyms: find / look up, send / shoot off), its ending, its case.
Either way a rewording counts only when every value the call takes from the request is still in it as
written (`keeps`): the call stays the answer, unchanged. Owns those rules and the teacher's prompt.
"""

from __future__ import annotations

import json
import os
import random
import re

import httpx

# openings people put before a request, stripped before another is put on
_LEAD = re.compile(r"^(?:(?:hey|hi|ok|okay|so|please|pls)\b[,!.]?\s*|(?:can|could|would|will) you(?: please)?\s+|"
                   r"i(?:'d| would) like (?:you )?to\s+|i (?:need|want) (?:you )?to\s+)+", re.I)
_QUESTION = re.compile(r"^(?:what|what's|whats|how|when|where|which|who|whom|whose|why|is|are|was|were|do|does|did|"
                       r"will|would|should|has|have|any)\b", re.I)
_END = re.compile(r"[\s,]*(?:please|thanks|thank you|thx|ty)?[\s.!?]*$", re.I)
# generic verbs an imperative opens with, and other ways people say them (not any task's own words)
VERBS = {
    "find": ["look up", "search for", "locate"], "get": ["fetch", "show me", "give me"],
    "show": ["display", "give me", "pull up"], "send": ["shoot off", "deliver"],
    "create": ["make", "set up", "add"], "make": ["create", "set up"], "book": ["reserve", "arrange"],
    "check": ["look up", "see", "look at"], "convert": ["change", "turn"], "tell": ["let me know"],
    "schedule": ["set up", "arrange", "book"], "add": ["put"], "track": ["check on", "follow"],
    "cancel": ["call off", "drop"], "look": ["check"], "transfer": ["move", "send"],
    "order": ["get", "buy"], "buy": ["order", "get"], "set": ["put"], "give": ["get"], "search": ["look"],
}
# other verbs a request may open with (for the openers that need a verb after them)
IMPERATIVE = set(VERBS) | set("play remind email call text open start stop turn pay list translate calculate compute "
                              "move delete remove update change reply forward share ship deliver return plan note save "
                              "write draft ask pull reserve post upload lookup look".split())
OPENERS = {"command": ["", "Please ", "Can you ", "Could you please ", "I'd like you to ", "Hey, can you ",
                       "I need you to "],
           "question": ["", "Hey, ", "Quick question: ", "Can you tell me ", "Do you know "],
           "other": ["", "Hey, ", "Quick one: "]}
ENDINGS = ["", ".", "?", " please", ", thanks", " - thanks!", "!"]


_ENGLISH = frozenset("the an to for in on my me what is please and of at from with how when can".split())


def english(text: str) -> bool:
    """Whether `text` reads as English, the only language the rules word (a rule's opener on a Spanish
    request would teach a mixed one)."""
    return "¿" not in text and "¡" not in text and bool(_ENGLISH & set(re.findall(r"[a-z]+", text.lower())))


def keeps(text: str, values: list) -> bool:
    """Whether every value (a string as written, a number standing on its own) is still in `text`."""
    for v in values:
        if isinstance(v, str):
            if v not in text:
                return False
        elif not re.search(rf"(?<![\d.]){re.escape(str(v))}(?![\d.])", text):
            return False
    return True


def _protected(text: str, values: list) -> list[tuple[int, int]]:
    spans = []
    for v in values:
        for m in re.finditer(re.escape(str(v)), text):
            spans.append(m.span())
    return spans


def by_rule(text: str, values: list, rng: random.Random) -> str | None:
    """One other wording of `text` by rule, keeping `values` as written; None when none differs or the
    request is not English."""
    if not english(text):
        return None
    spans = _protected(text, values)
    lead = _LEAD.match(text)
    start = lead.end() if lead and not any(a < lead.end() for a, _ in spans) else 0
    body = text[start:]
    end = _END.search(body)
    tail = end.start() if end and not any(a >= start + end.start() for a, _ in spans) else len(body)
    core = body[:tail].strip()
    if not core:
        return None
    first = re.match(r"[A-Za-z']+", core)
    verb = first.group().lower() if first and not any(a <= text.find(core) < b for a, b in spans) else ""
    kind = "question" if _QUESTION.match(core) else "command" if verb in IMPERATIVE else "other"
    if verb in VERBS and rng.random() < 0.6:
        core = rng.choice(VERBS[verb]) + core[len(verb):]
    opener = rng.choice(OPENERS[kind])
    asks = kind == "question" or opener.strip().endswith("you")
    ending = rng.choice(["?", "", " please?"]) if asks else rng.choice(ENDINGS)
    # after an opener the request's first word goes lower-case, unless it is an acronym or a value
    if opener and kind != "other" and not (len(core.split()[0]) > 1 and core.split()[0].isupper()):
        core = core[:1].lower() + core[1:]
    out = (opener + core).strip()
    out = out[:1].upper() + out[1:] + ending
    if rng.random() < 0.2:  # typed in a hurry: all lower case but the values
        low = out.lower()
        for a, b in _protected(out, values):
            low = low[:a] + out[a:b] + low[b:]
        out = low
    return out if out != text and keeps(out, values) else None


PROMPT = ("Rewrite the user's request {n} different ways, as different people would type it to an assistant: "
          "other words, other order, other tone. Keep every name, number, date, address, amount and quoted "
          "text exactly as written, and do not add any detail. One rewrite per line, nothing else.")


def by_teacher(text: str, values: list, n: int, upstream: str, model: str | None = None,
               key_env: str | None = None, timeout: float = 60.0) -> list[str]:
    """Up to `n` rewordings of `text` by the teacher at `upstream` (an OpenAI-compatible base URL), each
    keeping `values` as written; [] when the teacher cannot be reached or answers otherwise (the
    pipeline then words by rule)."""
    key = os.environ.get(key_env) if key_env else None
    body = {"model": model or "teacher", "temperature": 1.0,
            "messages": [{"role": "system", "content": PROMPT.format(n=n)}, {"role": "user", "content": text}]}
    try:
        r = httpx.post(upstream.rstrip("/") + "/chat/completions", json=body, timeout=timeout,
                       headers={"Authorization": f"Bearer {key}"} if key else {})
        r.raise_for_status()
        content = r.json()["choices"][0]["message"]["content"] or ""
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
        return []
    out: list[str] = []
    for line in content.splitlines():
        line = re.sub(r"^\s*(?:\d+[.)]|[-*•])\s*", "", line).strip().strip('"')
        if line and line != text and line not in out and keeps(line, values):
            out.append(line)
    return out[:n]


def taken(example: dict) -> list:
    """Every value of the answer's calls that the last user message holds as written (rephrase keeps them)."""
    text = next((m["content"] for m in reversed(example["messages"]) if m.get("role") == "user"), "")
    out: list = []
    for c in example["answer"].get("tool_calls") or []:
        try:
            args = json.loads(c["function"]["arguments"] or "{}")
        except (TypeError, ValueError):
            continue
        stack = list(args.values()) if isinstance(args, dict) else []
        while stack:
            v = stack.pop()
            stack += v if isinstance(v, list) else list(v.values()) if isinstance(v, dict) else []
            if isinstance(v, (str, int, float)) and not isinstance(v, bool) and str(v) in str(text):
                out.append(v)
    return out


def teacher(settings) -> dict | None:
    """Where the teacher is (`reworded`'s `teacher`), from the settings' upstream; None without one."""
    return ({"upstream": settings.upstream, "model": settings.upstream_model, "key_env": settings.upstream_api_key_env}
            if settings.upstream else None)


def reworded(example: dict, values: list, rng: random.Random, teacher: dict | None = None) -> dict | None:
    """`example` again with its last user message reworded (by the teacher when `teacher` holds its
    `upstream`, `model` and `key_env`, else by rule), the answer unchanged; None when no wording kept
    every value."""
    msgs = example.get("messages") or []
    if not msgs or msgs[-1].get("role") != "user" or not isinstance(msgs[-1].get("content"), str):
        return None
    text = msgs[-1]["content"]
    options = by_teacher(text, values, 3, **teacher) if teacher and teacher.get("upstream") else []
    new = rng.choice(options) if options else by_rule(text, values, rng)
    if new is None:
        return None
    out = json.loads(json.dumps(example))
    out["messages"][-1]["content"] = new
    return out
