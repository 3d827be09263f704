"""What a tool's parameter descriptions say its values are, for the leans (decoding/ending.py, copying.py): the values a description
quotes as examples (`examples`: "e.g. 'federal', 'state'") and the values it glosses by a word (`glossed`: "'asc' for ascending
order"). Pure functions of a tool's JSON schema and a request's text; no model."""

from __future__ import annotations

import re

from edgeslm.decoding.said import QUOTED, span

# a cue that a description's quote is a value it takes ("e.g. 'federal'", "Default is 'major'"), not a name ("the 'department' field")
_EXAMPLE = re.compile(r"(?:e\.?g\.?|i\.e\.|such as|for example|for instance|like|either|one of|include\w*|values?|options?|should be|"
                      r"default\w*(?:\s+(?:is|to|as|of|value(?:\s+of)?))?|or|and|,|:|\()[\s:(\['\"]*$", re.IGNORECASE)
# a quoted value and the word it stands for: "'asc' for ascending order", "'C' = Celsius"; "Celsius ('C')"
_Q = r"(?<!\w)[\"“‘']([^\"”’'\n]{1,40})[\"”’'](?!\w)"  # one letter too ('C')
_GLOSS = re.compile(_Q + r"\s*(?:for|=|stands for|->)\s+(?:an?\s+|the\s+)?([^\W\d_][\w-]*)")
_GLOSSED = re.compile(r"([^\W\d_][\w-]*)\s*\(\s*" + _Q + r"\s*\)")


def _descriptions(schema: dict | None, enum: bool = True) -> dict[str, str]:
    props = ((schema or {}).get("properties") or {}).items()
    return {p: str(d.get("description") or "") for p, d in props if isinstance(d, dict) and (enum or "enum" not in d)}


def examples(schema: dict | None) -> dict[str, set[str]]:
    """Each top-level parameter's values its description quotes after a cue (_EXAMPLE), where it has no enum: on BFCL's training
    part, of 148 calls whose request says one whole, 82 need the parameter and none leaves it out."""
    cued = lambda t, m: _EXAMPLE.search(t[max(0, m.start() - 40):m.start()])  # noqa: E731
    return {p: vs for p, t in _descriptions(schema, enum=False).items()
            if (vs := {v for m in QUOTED.finditer(t) if len(v := m.group(1) or m.group(2)) <= 40 and cued(t, m)})}


def glossed(text: str, schema: dict | None) -> dict[str, set[str]]:
    """Each top-level parameter's values that its description glosses by a word `text` says whole, where `text` does not say the
    value itself ("Sort this list in ascending order" and "'asc' for ascending order, or 'desc' ...": {"order": {"asc"}}; a small
    model wrote "ascending", val multiple_46)."""
    low, out = text.lower(), {}
    for p, t in _descriptions(schema).items():
        pairs = [(m.group(1), m.group(2)) for m in _GLOSS.finditer(t)] + [(m.group(2), m.group(1)) for m in _GLOSSED.finditer(t)]
        if vs := {v for v, w in pairs if v.lower() != w.lower() and span(low, w.lower(), True) and not span(low, v.lower(), True)}:
            out[p] = vs
    return out
