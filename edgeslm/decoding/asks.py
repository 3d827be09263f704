"""What a student was trained to ask for, and when a request leaves nothing to ask: the kind of value a parameter takes
(an e-mail address, a name, a code, a number), read off the values its captured calls gave it, and whether a request
states a value of that kind. S5 writes each asked parameter's kind and questions into the student's training record
(pipeline/widen.asks); the server leans away from those questions while the request states a value of the kind
(preparation.Preparer._shun). Pure functions of text.

Why: When2Call's examples (a required value cut from the request, answered with a question for it) taught the
conversion pipeline's students to ask "what is the city?" of "Do I need an umbrella in Reykjavík ...?" and "what is
the sender?" of "refund request from a.moreau@laposte.fr, please triage": 4 of seed 0's 19 misses on the hand-written
calls, 3 of the e-mail student's 4 on its dev requests (session 39)."""

from __future__ import annotations

import re
from collections.abc import Callable

from edgeslm.decoding import clock, said
from edgeslm.decoding.said import EMAIL, NUMBER

ISO = re.compile(r"(?<![\w-])\d{4}-(?:0\d|1[0-2])-(?:[0-2]\d|3[01])(?![\w-])")

# a value of each kind as it stands in a request; a parameter's kind is the first that fits every captured value
_KIND = {
    "email": EMAIL,
    # ORD-2027-00931, or in groups after a first of letters and digits ("LI21 0881 0000 2324 013A A", as IBANs are written)
    "code": re.compile(r"(?<![\w-])#?(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[A-Za-z0-9][\w-]{2,}(?:[ ][A-Z0-9]{1,4}(?![\w-]))*(?![\w-])"),
    "clock": re.compile(r"(?<![\d:])(?:[01]\d|2[0-3]):[0-5]\d(?![\d:])"),  # 18:30, as a call writes it
    # 2027-01-22, as a call writes it; in a request also "22nd of January 2027", "Jan 22, 2027" (clock.DATES)
    "date": re.compile(rf"{ISO.pattern}|{clock.DATES.pattern}", re.IGNORECASE | re.ASCII),
    "number": NUMBER,
    # capitalized words not opening a sentence ("... in Reykjavík", "for New Delhi"): a sentence's first word is no name
    "name": re.compile(r"(?<=[^\s.!?:\"'“‘])[ \t]+[^\W\d_a-z][^\W\d_]+"),  # not "I"
}

# a place with its town: a part with a number, then a comma and more ("742 Evergreen Terrace, Springfield"); no kind a request is
# read for (`states`), but a value of it is not closed before its town (Kept.short)
ADDRESS = re.compile(r"(?=[^,\n]*\d)[^,\n]+(?:,[ \t]*[^,\n]+)+")
_TOWN = re.compile(r",[ \t]*[^\W\d_]")
# the kinds whose values the copy lean holds a student's parameter on, and keeps its other parameters off (Kept)
HELD = ("email", "clock", "date")
# what may stand between a value and the next (Kept.before): a comma, and at most two joining words ("on the", "el", "a las")
_JOINING = re.compile(r"[ \t]*,?[ \t]+(?:(?:on|at|the|for|by|from|el|la|las|le|les|am|um|de|du|del|a)[ \t]+){0,2}", re.IGNORECASE)
_WORDS = re.compile(r"[^\W\d_]+(?:[ '’.-]+[^\W\d_]+)*\.?")


def kind(values: list) -> str | None:
    """The kind every one of a parameter's captured values is, whole ("email", "code", "number", "name"), or None
    (free text, or no values): a question for a value of no kind is never leaned away from."""
    texts = [str(v) for v in values if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
    if not texts:
        return None
    for k, pattern in _KIND.items():
        if k == "name":  # capitalized words, letters only ("São Paulo", not an IBAN)
            if all(v[:1].isupper() and _WORDS.fullmatch(v) for v in texts):
                return k
        elif all((ISO if k == "date" else pattern).fullmatch(v.strip()) for v in texts):
            return k
    return "address" if all(ADDRESS.fullmatch(v.strip()) for v in texts) else None


def states(text: str, of_kind: object) -> bool:
    """Whether `text` states a value of this kind (a manifest's word for it: anything else is no kind)."""
    pattern = _KIND.get(of_kind) if isinstance(of_kind, str) else None
    return bool(pattern and pattern.search(text))


def codes(text: str) -> list[tuple[int, int]]:
    """(start, end) of each code `text` states: a value is not cut inside one ("LI21 0881 0000 2324 013A" of "... 013A A")."""
    return [m.span() for m in _KIND["code"].finditer(text)]


def recorded(manifest: dict) -> list[dict]:
    """The asks an adapter's training record holds, the well-formed ones (an imported adapter's record is any JSON)."""
    training = manifest.get("training")
    said = training.get("asks") if isinstance(training, dict) else None
    return [a for a in said if isinstance(a, dict)] if isinstance(said, list) else []


def kinds(manifest: dict) -> dict[str, dict[str, str]]:
    """tool -> parameter -> the kind of every value its captured calls gave it, from an adapter's training record (`kinds`,
    pipeline/widen.kinds), the well-formed entries. The copy lean keeps a parameter of addresses, times or dates on the request's (Kept)."""
    training = manifest.get("training")
    said = training.get("kinds") if isinstance(training, dict) else None
    return {t: {p: k for p, k in ps.items() if isinstance(k, str) and (k in _KIND or k == "address")} for t, ps in said.items()
            if isinstance(t, str) and isinstance(ps, dict)} if isinstance(said, dict) else {}


class Kept:
    """The copy lean's hold on a student's parameters of e-mail addresses, clock times or dates (`kinds`): such a value is
    kept on the request's addresses, or its times and dates in the form its calls wrote them ("at 9:15" 09:15, "half past
    seven in the evening" 19:30: clock.times; "Aug 19, 2027" 2027-08-19), that no call held when it began; and its other
    parameters are kept off them (`off`). Seed 0's students wrote "Lena Hoffmann" of "Lena
    Hoffmann, lena.hoffmann@...", "loop in d.ferreira@..." and "my sister" (6 of their 29 misses on the dev requests,
    session 41), and "half past seven" or 19:15 of "at 9:15" for a time."""

    def __init__(self, source: str, kinds: dict[str, dict[str, str]], tokenize: Callable[[str], list[int]]):
        self.kinds, self.tokenize, self.source = kinds, tokenize, source
        # kind -> (start, end) of each of the request's values as written, with the forms a call holds it in
        self.spans: dict[str, list[tuple[int, int, frozenset[str]]]] = {
            "email": [(*m.span(), frozenset({m.group()})) for m in EMAIL.finditer(source)],
            "clock": [(*m.span(), frozenset({m.group()}) | _hhmm(clock.times(m.group()))) for m in clock.CLOCK.finditer(source)],
            "date": [(*m.span(), frozenset({m.group(), *clock.forms(m.group())})) for m in _KIND["date"].finditer(source)]}
        self.stated = {"email": said.emails(source), "clock": tuple(sorted(_hhmm(clock.times(source)))),
                       "date": tuple(sorted({f for *_, fs in self.spans["date"] for f in fs if ISO.fullmatch(f)}))}
        self._due: dict[tuple[int, str], tuple[str, ...]] = {}  # (call, parameter) -> its values
        self._next: dict[str, int | None] = {}  # the rest of a value -> the first token of its own split

    def due(self, tool: str, call: int, args, written: str) -> tuple[str, ...]:
        """The values the one being written (`args`, an argstream.ArgStream) begins, where it is a top-level value of
        addresses, times or dates; () elsewhere. `written`: the calls so far, lower-cased."""
        key, v = args.key or "", args.value or ""
        stated = self.stated.get(self.kinds.get(tool, {}).get(key, ""), ())
        if not (stated and args.stack == ["{"]):
            return ()
        due = self._due.setdefault((call, key), tuple(e for e in stated if not said.held({e.lower()}, written)))
        return tuple(e for e in due if e.startswith(v))

    def off(self, tool: str, args, written: str) -> Callable[[str], bool] | None:
        """While a top-level value is written and another parameter of the tool, of addresses, times or dates and not written
        yet, is due to hold the request's values of its kind that no call holds: whether a value begun so ("20" of "2027-01-22
        221 Baker Street", "04" of it) leads into one of those (or into the form a call writes it in) and into no other of the
        request's words, else None. Seed 0's delivery student wrote the date as the address in 3 of its 35 dev and hand-written
        requests (session 42)."""
        if args.stack != ["{"] or not args.is_value or not (spans := self.left(tool, args, written)):
            return None

        def leads(value: str) -> bool:  # where the request holds it from a word's start, only inside those; else into a form of one
            if '"' in value or not value.strip():
                return False
            if at := [i for i in said.found(self.source, value) if said.starts_word(self.source, i)]:
                return all(any(a <= i < b for a, b, _ in spans) for i in at)
            return any(f.startswith(value) for *_, fs in spans for f in fs)  # "2027-08" of "Aug 19, 2027"
        return leads

    def before(self, tool: str, args, written: str, value: str) -> bool:
        """`value`, a top-level value begun at a word, stands whole only right before one of the request's values that `left`
        holds due, at most two joining words between ("Cena con Lucía" of "... llamado Cena con Lucía el 21 de mayo de 2027"):
        going on runs it into another parameter's date, time or address. Seed 0's calendar student wrote that title as "Cena con
        Lucía el 21 de mayo de 2027" (session 44)."""
        if args.stack != ["{"] or not args.is_value or len(value.strip()) < 3 or not (spans := self.left(tool, args, written)):
            return False
        at, starts = [i for i in said.found(self.source, value) if said.starts_word(self.source, i)], {a for a, _, _ in spans}
        return bool(at) and all((m := _JOINING.match(self.source, i + len(value))) is not None and m.end() in starts for i in at)

    def left(self, tool: str, args, written: str) -> list[tuple[int, int, frozenset[str]]]:
        """The request's addresses, times and dates (start, end, forms) that no call holds, of the kind of a parameter of the tool
        not written yet, nor of the kind of the one being written: seed 1's calendar student closed its arguments after the date
        of "Piano recital, 2027-02-14, 18:45", 12.7 logits above going on (5 of its 8 misses on 20 dev requests, session 43)."""
        own = self.kinds.get(tool, {})
        return [s for p, k in own.items() if k in HELD and k != own.get(args.key) and p not in args.keys
                for s in self.spans[k] if not said.held({f.lower() for f in s[2]}, written)]

    def short(self, tool: str, args, value: str) -> bool:
        """A top-level value of a parameter of addresses closed at `value`, with no comma yet, where the request goes on after it
        with a comma and a word, would cut the address before its town: seed 1's delivery student closed 4 of 20 dev addresses
        so ("10 Downing Street" of "10 Downing Street, London", session 42)."""
        if self.kinds.get(tool, {}).get(args.key) != "address" or args.stack != ["{"] or "," in value or not value.strip():
            return False
        return any(_TOWN.match(self.source, i + len(value)) for i in said.found(self.source, value) if said.starts_word(self.source, i))

    def next(self, value: str, due: tuple[str, ...]) -> set[int]:
        """The token each of the `due` values goes on with after `value`, as the tokenizer splits the rest of it (the split's
        first piece: "alerts", not "a", whose way on lies 15 logits down a student's "a support team")."""
        for rest in (e[len(value):] for e in due if len(e) > len(value)):
            if rest not in self._next:
                ids = self.tokenize(rest)
                self._next[rest] = ids[0] if ids else None
        return {t for e in due if len(e) > len(value) and (t := self._next[e[len(value):]]) is not None}


def _hhmm(times: list[frozenset[str]]) -> set[str]:
    """The HH:MM forms of clock.times' times: as a student's calls write a time."""
    return {f for t in times for f in t if re.fullmatch(r"\d\d:\d\d", f)}


def closes_on(value: str, piece: str, due: tuple[str, ...]) -> bool:
    """`piece`, written after `value` in a string, closes it (a quote) on one of the `due` values (Kept.due) whole."""
    q = piece.find('"')
    return q >= 0 and "\\" not in piece and value + piece[:q] in due


def texts(ask: dict) -> list[str]:
    """An ask's questions (a training record's `asks` entry), the well-formed ones."""
    said = ask.get("texts")
    return [q for q in said if isinstance(q, str) and q.strip()] if isinstance(said, list) else []
