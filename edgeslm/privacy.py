"""Personal data, below both halves (S2 curates with it; `serve` redacts routed requests with it).

The detectors: structured personal data and secrets in text, each replaced by a typed placeholder
(`<EMAIL_1>`) or, with `surrogates`, a realistic fake of the same kind (edgeslm.surrogates), the same for
the same value throughout one conversation.

Owns the patterns and their validators (Luhn for cards, ISO 13616 mod-97 for IBANs, ipaddress for IP
addresses, the SSA's rules for US SSNs). Covered: e-mail, phone numbers (international form, or with
separators), credit cards, IBANs, US SSNs, IPv4/IPv6, API keys and secrets (OpenAI, AWS, GitHub,
Slack, Google, bearer tokens, key=value secrets), URLs with credentials, and US-style street
addresses; and, where a caller passes a names finder (edgeslm.names: a model, so curation passes it and
serve's per-request redaction does not), person names.
"""

from __future__ import annotations

import bisect
import ipaddress
import json
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from edgeslm.surrogates import CONTEXT, fake


def luhn(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    s = text.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _card(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    return 13 <= len(digits) <= 19 and digits[0] in "3456" and luhn(digits)


def _ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _phone(text: str) -> bool:
    return 9 <= len(re.sub(r"\D", "", text)) <= 15


@dataclass(frozen=True)
class Detector:
    kind: str
    pattern: re.Pattern
    valid: Callable[[str], bool] | None = None
    group: int = 0  # the part of the match that is the value
    trim: bool = False  # on a failed check, retry without the last space/dash-separated group (a number after it)


# In priority order: where two matches overlap, the earlier detector wins.
DETECTORS = [
    Detector("URL_CREDENTIALS", re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@]+:[^\s/@]+@[^\s\"'<>]+")),
    Detector("API_KEY", re.compile(
        r"\b(?:sk-(?:proj-)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|xox[baprs]-[A-Za-z0-9-]{10,}"
        r"|AIza[0-9A-Za-z_-]{35}|sk_live_[0-9A-Za-z]{20,})")),
    Detector("SECRET", re.compile(
        r"(?i)\b(?:bearer\s+|(?:password|passwd|secret|token|api[_-]?key)\s*[=:]\s*)([A-Za-z0-9_\-./+]{8,})"), group=1),
    Detector("EMAIL", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")),
    Detector("IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)\b"),
             iban_ok, trim=True),
    Detector("CREDIT_CARD", re.compile(r"\b(?:\d{4}([ -]?)\d{4}\1\d{4}\1\d{1,4}|\d{4}([ -]?)\d{6}\2\d{5})\b"), _card),
    Detector("SSN", re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")),
    Detector("IP_ADDRESS", re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b|(?<![\w:])(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}\b"),
             _ip),
    Detector("PHONE", re.compile(
        r"(?<![\w+])(?:\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){1,4}"
        r"|\(\d{2,4}\)[\s.-]?\d{3,4}[\s.-]?\d{3,4}|\b\d{3}[.-]\d{3}[.-]\d{4})\b"), _phone),
    Detector("STREET_ADDRESS", re.compile(
        r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s+){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr"
        r"|Court|Ct|Way|Place|Pl|Terrace|Parkway|Pkwy)\b\.?")),
]
KINDS = [d.kind for d in DETECTORS]
NAME = "PERSON_NAME"  # found by a model (edgeslm.names), where one is passed; the patterns win an overlap
Names = Callable[[str], list[tuple[int, int]]]


def find(text: str, names: Names | None = None) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, kind) spans of personal data in `text`, in order; person names too
    where `names` (an edgeslm.names.Finder) is given."""
    spans = []
    for rank, d in enumerate(DETECTORS):
        for m in d.pattern.finditer(text):
            start, end = m.span(d.group)
            for _ in range(3):
                if d.valid is None or d.valid(text[start:end]):
                    spans.append((start, end, rank, d.kind))
                    break
                cut = max(text.rfind(" ", start, end), text.rfind("-", start, end))
                if not d.trim or cut <= start:
                    break
                end = cut
    if names is not None:
        spans += [(start, end, len(DETECTORS), NAME) for start, end in names(text)]
    spans.sort(key=lambda s: (s[2], s[0]))
    taken: list[tuple[int, int, str]] = []  # kept sorted by start; they never overlap, so neither do ends
    for start, end, _, kind in spans:
        i = bisect.bisect_left(taken, (start,))
        if (i == len(taken) or end <= taken[i][0]) and (i == 0 or taken[i - 1][1] <= start):
            taken.insert(i, (start, end, kind))
    return taken


def with_known(names: Names, known: Iterable[str]) -> Names:
    """`names` and, wherever one stands whole, each name of `known` (full names found elsewhere in the same
    store: a name found in one call names the same person in the next, where the model may miss it)."""
    alts = sorted(set(known), key=len, reverse=True)
    # whole: not inside a longer word or a hyphenated or apostrophed name ("Marie-Jean Luc", "O'Neill"),
    # where quotes around it ("'Ana Lopez'") and a possessive after it ("Ana Lopez's") are not
    pattern = re.compile(r"(?<![\w-])(?<!\w['’])(?:" + "|".join(map(re.escape, alts)) + r")(?![\w-]|['’](?!s\b)\w)") \
        if alts else None

    def find_names(text: str) -> list[tuple[int, int]]:
        spans = list(names(text))
        for m in pattern.finditer(text) if pattern is not None else ():
            inside = [(a, b) for a, b in spans if a < m.end() and m.start() < b]
            if all(m.start() <= a and b <= m.end() for a, b in inside):  # the model found a part of it, or none
                spans = [s for s in spans if s not in inside] + [m.span()]
        return sorted(spans)

    return find_names


@dataclass
class Redactor:
    """Stand-ins for one conversation: the same value always gets the same `<KIND_n>`, or with
    `surrogates` the same realistic fake, drawn from `seed` (curation derives it from the call under a
    secret salt, so it is repeatable and tells nothing of the values)."""

    surrogates: bool = False
    seed: int | None = None
    names: Names | None = None  # person names' finder (edgeslm.names); None: names are left as they are
    seen: dict[tuple[str, str], str] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)  # detections by kind
    distinct: Counter = field(default_factory=Counter)  # distinct values by kind (the placeholders' numbers)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._fakes: set[str] = set()

    def _stand_in(self, kind: str, value: str) -> str:
        placeholder = f"<{kind}_{self.distinct[kind]}>"
        if not self.surrogates:
            return placeholder
        s = fake(kind, value, self._rng, self._fakes, find) or placeholder
        self._fakes.add(s)
        return s

    def _spans(self, text: str, sentences: bool = True) -> list[tuple[int, int, str, str]]:
        """(start, end, kind, value) of what `find` finds, and of every name this conversation had found
        before wherever it stands again, as written or JSON-escaped (`Bego\\u00f1a`): the model that finds
        names reads sentences, and a name it found in the request must be replaced in the call's JSON
        arguments too, or the example would teach a student to write a name nobody gave."""
        spans = [(a, b, k, text[a:b]) for a, b, k in find(text, self.names if sentences else None)]
        for value in sorted((v for k, v in self.seen if k == NAME), key=len, reverse=True):
            for form in {value, json.dumps(value)[1:-1]}:
                for m in re.finditer(rf"(?<!\w){re.escape(form)}(?!\w)", text):
                    if all(m.end() <= a or b <= m.start() for a, b, *_ in spans):
                        spans.append((m.start(), m.end(), NAME, value))
        return sorted(spans)

    def __call__(self, text: str, sentences: bool = True) -> str:
        """`text` with its personal data replaced; `sentences` False (JSON arguments) looks for the names
        found before, not with the model, which reads sentences."""
        out, last = [], 0
        for start, end, kind, value in self._spans(text, sentences):
            key = (kind, value)
            if key not in self.seen:
                self.distinct[kind] += 1
                self.seen[key] = self._stand_in(kind, value)
            self.counts[kind] += 1
            out += [text[last:start], self.seen[key]]
            last = end
        return "".join(out) + text[last:]


_PLACEHOLDER = re.compile(r"<[A-Z_]+_\d+>")


class Restorer:
    """Puts back the values a Redactor replaced, in a model's answer: plain text as is, tool-call
    arguments JSON-escaped. Placeholders are found by their pattern, surrogates by the detectors that
    found the originals (each fake passes its kind's), so either way the cost is linear in the answer.
    Streamed fragments are held back while they might end inside a stand-in."""

    def __init__(self, redactor: Redactor):
        self.values = {p: v for (_, v), p in redactor.seen.items()}
        self.surrogates = redactor.surrogates
        # fakes the detectors find only after their context words (a secret after `password=`): a model may
        # write them without it (`{"password": "…"}`), so they are looked for as they are, and so are the
        # names' fakes (a model finds names, not `find`); a conversation has few
        self.literal = [p for (k, _), p in redactor.seen.items() if redactor.surrogates and (k in CONTEXT or k == NAME)]
        self.buffers: dict = {}
        self._prefixes: set[str] | None = None
        self._longest = max(map(len, self.values), default=0)

    def _put(self, stand_in: str, in_json: bool) -> str:
        v = self.values.get(stand_in)
        return stand_in if v is None else json.dumps(v)[1:-1] if in_json else v

    def __call__(self, text: str, in_json: bool = False) -> str:
        if not self.values:
            return text
        text = _PLACEHOLDER.sub(lambda m: self._put(m.group(0), in_json), text)
        if not self.surrogates:
            return text
        out, last = [], 0
        for start, end, _ in find(text):
            out += [text[last:start], self._put(text[start:end], in_json)]
            last = end
        text = "".join(out) + text[last:]
        for p in self.literal:
            text = text.replace(p, self._put(p, in_json))
        return text

    def _held(self, buf: str) -> int:
        """Where the tail of `buf` that may be the start of a stand-in begins (len(buf): none)."""
        cut = buf.rfind("<")
        hold = cut if cut >= 0 and ">" not in buf[cut:] and len(buf) - cut < 48 else len(buf)
        if self.surrogates and self.values:
            if self._prefixes is None:
                self._prefixes = {s[:k] for s in self.values for k in range(1, len(s))}
            # never cut inside a whole fake already there (its tail may begin another one: "…8311" and "198.…")
            inside = {i for a, b, _ in find(buf) if buf[a:b] in self.values for i in range(a + 1, b)}
            for start in range(max(0, len(buf) - self._longest), min(hold, len(buf))):
                if start not in inside and buf[start:] in self._prefixes:
                    return start
        return hold

    def completion(self, body: dict) -> None:
        """A chat completion's answer with the values put back, in place: its text and its calls' arguments."""
        msg = body["choices"][0]["message"]
        if isinstance(msg.get("content"), str) and msg["content"]:
            msg["content"] = self(msg["content"])
        for c in msg.get("tool_calls") or []:
            c["function"]["arguments"] = self(c["function"]["arguments"], in_json=True)

    def feed(self, key, fragment: str, in_json: bool = False) -> str:
        buf = self.buffers.get(key, "") + fragment
        cut = self._held(buf)
        self.buffers[key], buf = buf[cut:], buf[:cut]
        return self(buf, in_json)

    def flush(self, key, in_json: bool = False) -> str:
        return self(self.buffers.pop(key, ""), in_json)


def redact_message(m: dict, redact: Redactor) -> dict:
    """One OpenAI message (a dict) with its personal data replaced: text, text parts and tool-call
    arguments. S2 curates with it, and `serve` redacts routed requests with it, so an adapter sees at
    serve time what it was trained on."""
    m = dict(m)
    content = m.get("content")
    if isinstance(content, str):
        m["content"] = redact(content)
    elif isinstance(content, list):
        m["content"] = [{**p, "text": redact(p["text"])} if isinstance(p, dict) and isinstance(p.get("text"), str)
                        else p for p in content]
    if m.get("tool_calls"):
        m["tool_calls"] = [{**c, "function": {**c.get("function", {}),
                                               "arguments": redact(str(c.get("function", {}).get("arguments", "")),
                                                                   sentences=False)}}
                           for c in m["tool_calls"]]
    return m
