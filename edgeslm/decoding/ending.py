"""Where a call's arguments, and the response, end: the leans that go on to another argument or call, or close.

Biases on the logits, each off at 0 (docs/serve.md has their measurements):

- `more_bias`: once a call's arguments have closed, where the response may end, the tokens that go on to another call get +more_bias
  times the share of the request's values no call has used yet (`said.values`), or NAMED_SHARE where the request says a word of an
  offered tool's name that no other tool's name holds and that tool is not called yet: small models stop after the first call of a
  request that asks for several.
- `arg_bias`: where a call's arguments may close after a value, the tokens that go on to another argument get +arg_bias while a
  parameter not written yet shares a word (of its name, description or enum) with what the request says beyond the tool's own name and
  description and the values written ("in miles"), or with the unit of a number the request states that no call holds ("for next three
  days": amounts.units), ENUM_SAID times that while one of its enum values is said whole ("cheap tickets");
  after a string value only where it ends a phrase of the request (said.phrase_end).
- `close_bias`: going on gets -close_bias when no unwritten parameter shares a word with the request and every value it states is written.
- `left_bias`: where the arguments may close after a value (in a string, where it ends a phrase), going on gets +left_bias (not
  -close_bias) while a parameter is unwritten and an e-mail address, time, quote or label's value ("Memo: ...") of the request is in
  no call in any form (said.typed), or an unwritten parameter's enum value is said whole ("En grados Celsius"). With a student's
  record, the hold too while its e-mail address, time or date is left (asks.Kept.left) and the model would close.
- `keys`: while a top-level key is written, the pieces toward an unwritten parameter whose enum value is said whole get the larger of
  left_bias and arg_bias x ENUM_SAID: the grammar writes keys in the schema's order, and a student wrote "days" first for "seven
  day outlook please, in Fahrenheit" (the two keys tied), which left no place for "unit".

Owns what it reads of the request and the tools for these leans. Reads the calls written so far from argstream.Calls, which the
request lean (copying.Copier) feeds; that lean applies `more_args` after a value it leans on, generation.Run the rest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

import numpy as np

from edgeslm.decoding import amounts, asks, clock, described, said
from edgeslm.decoding.argstream import Calls
from edgeslm.decoding.said import held, param_words, span, typed, values, words

NAMED_SHARE = 1.0  # the more lean's share for a tool the request names that no call has used yet
ENUM_SAID = 3.0  # arg_bias times this while an unwritten parameter's enum value is said whole in the request


class Ending:
    """One request's leans at the ends of values and calls, over what `calls` has written. `text(token)`: a token's piece
    (None for part of a character); `commas`: the pieces that open with "," or close a string first (constraints.comma_tokens)."""

    def __init__(self, source: str, leans, calls: Calls, text: Callable[[int], str | None], tools: Iterable | None = None,
                 commas: np.ndarray | None = None, numbers: frozenset[str] = frozenset(), copied: str | None = None,
                 kept: asks.Kept | None = None, hold: float = 0.0):
        # `copied`: what the request lean copies from (the request and its times' forms), where values stand whole
        self.source, self.calls, self.text, self.numbers = source if copied is None else copied, calls, text, numbers
        self.more_bias, self.arg_bias, self.close_bias, self.left_bias = leans.more, leans.arg, leans.close, leans.left
        # tool name -> (the words of its name and description, each parameter's words), for arg_bias
        self.params = {t.name: (words(t.name + " " + (t.description or "")), param_words(t.parameters))
                       for t in tools or ()} if self.arg_bias or self.close_bias or self.left_bias else {}
        # tool -> parameter -> its enum's values (one may close: `may_close`); those the request says whole, for arg_bias
        self.enums = {t.name: said.enums(t.parameters) for t in tools or ()} if self.params else {}
        # tool -> parameter -> its enum values, or its description's quoted ones, that the request says whole, and those its
        # description glosses by a word the request says ("'asc' for ascending order")
        self.enum_said = said.said_enums(source, {t.name: self.enums[t.name] | described.examples(t.parameters) for t in tools or ()}
                                         ) if self.arg_bias or self.left_bias else {}
        for t in tools or () if self.arg_bias or self.left_bias else ():
            for p, vs in described.glossed(source, t.parameters).items():
                self.enum_said.setdefault(t.name, {}).setdefault(p, set()).update(vs)
        self.typed = typed(source) if self.left_bias else []  # for left_bias
        # the request's numbers and the words of their units, for arg_bias
        self.units = [(forms, words(u)) for forms, u in amounts.units(source)] if self.arg_bias else []
        self.said = words(source) if self.arg_bias or self.close_bias or self.more_bias else set()
        self.asked = clock.dated(source, values(source)) if self.more_bias or self.close_bias else []
        # tool name -> the words of its name that no other offered tool's name holds, for more_bias
        names = {t.name: words(t.name) for t in tools or ()} if self.more_bias else {}
        df = Counter(w for ws in names.values() for w in ws)
        self.named = {n: {w for w in ws if df[w] == 1} for n, ws in names.items()} if len(names) > 1 else {}
        self.commas = commas if commas is not None else np.empty(0, dtype=np.int64)
        self._kinds: np.ndarray | None = None  # per token of `commas`: (closes a string first, goes on)
        self.kept, self.hold = kept, hold  # a student's parameters of addresses, times or dates, and the copy lean's hold on them

    def short_of(self, n: str) -> bool:
        """The digits `n` are part way into a stated number and are none: 2 or more ("10600"), or 1 of a number no call holds ("1" of
        "eleven tennis balls", which small models close on)."""
        return n not in self.numbers and any(f.startswith(n) and (len(n) >= 2 or not self.calls.wrote(f)) for f in self.numbers)

    @property
    def may_close(self) -> bool:
        """The arguments' object has a value just written at its top level, or a string value being written
        there (its closing quote and what follows come as one token: `",` or `"}`): it may close or go on."""
        a = self.calls.args
        if not (self.arg_bias or self.close_bias or self.left_bias) or a.stack != ["{"]:
            return False
        if not a.in_str:  # not part way into a number the request states ("200" of "2k")
            n = (a.number or "").lstrip("+")
            return a.last not in ("", ":", "{", ",") and not self.short_of(n)
        v = a.value or ""  # a whole span of the request (copied to its end), a typed form (19:30), an enum value
        return a.is_value and bool(v) and (span(self.source, v, True) or any(v.lower() in f for f in self.typed)
                                           or v in self.enums.get(self.calls.name, {}).get(a.key, ()))

    def _go_on(self) -> tuple[np.ndarray, np.ndarray]:
        """(the tokens that go on to another argument, those that close the arguments) here: inside a
        string value the ones that close it first (`",`, `"}`), else the ones that open with "," or "}"."""
        if self._kinds is None:
            kinds = []
            for t in self.commas:
                q = (self.text(int(t)) or "").lstrip(" \t\r\n")
                quoted = q.startswith('"')
                kinds.append((quoted, (q[1:].lstrip(" \t\r\n") if quoted else q)[:1] == ","))
            self._kinds = np.array(kinds, dtype=bool).reshape(-1, 2)
        here = self._kinds[:, 0] == self.calls.args.in_str
        return self.commas[here & self._kinds[:, 1]], self.commas[here & ~self._kinds[:, 1]]

    def more_args(self, allowed: np.ndarray | None, logits: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """Where the arguments may close: the lean on the allowed tokens that go on to another argument
        (their piece opens with ","): +arg_bias while an unwritten parameter matches what the request says
        beyond the tool's own words and the values written, +left_bias while a parameter is unwritten and a
        typed value of the request is left; else -close_bias while every value the request states is
        written; or None. With `logits`, where the model would close the arguments (its best allowed token does), going on gets
        the copy lean's hold while a student's e-mail address, time or date is left (asks.Kept.left); inside a postal address, going on
        would cut it instead ("Bahnhofstrasse 3" of "Bahnhofstrasse 3, 8001 Zürich")."""
        if not self.may_close or allowed is None or self.calls.name not in self.params:
            return None
        a = self.calls.args
        own, params = self.params[self.calls.name]
        rest = self.said - own - words(self.calls.written)
        unsaid = self.unsaid()
        wanted = bool(unsaid) or bool(rest) and any(ws & rest for p, ws in params.items() if p not in a.keys) or any(
            # or a number no call holds
            u & ws for forms, u in self.units if not any(map(self.calls.wrote, forms))  # whose unit is a parameter's word
            for p, ws in params.items() if p not in a.keys)
        left = bool(self.left_bias) and (bool(unsaid) or any(p not in a.keys for p in params)  # or a typed value in no call
                                         and any(not held(forms, self.calls.written) for forms in self.typed))
        on, close = self._go_on()
        on, close = on[allowed[on]], close[allowed[close]]
        # the vocabulary's best allowed token only where a student's record can make it count (not on every default request)
        best = int(np.argmax(np.where(allowed, logits, -np.inf))) if self.kept and logits is not None and len(close) else -1
        due = best in close and bool(self.kept and self.kept.left(self.calls.name, a, self.calls.written))
        if wanted or left or due:  # in a string, only where the value ends a phrase of the request (not "king" of "king size")
            ends = not a.in_str or said.phrase_end(self.source, v := a.value or "")
            cut = not ends and next(said.found(self.source, v), None) is not None  # not an enum value it does not hold ("USD")
            wanted, left, due = wanted and ends, left and not cut, due and not cut
            gain = ENUM_SAID if unsaid else 1.0
            amount = (self.arg_bias * gain if wanted else 0.0) + (self.left_bias if left else 0.0) + (self.hold if due else 0.0)
            return (on, np.full(len(on), amount)) if len(on) and amount else None
        if not self.close_bias or self.unused() or not len(close):  # closing not allowed: going on is forced, not pushed
            return None
        # away from going on and toward closing: only away, a value could run on past its end instead
        ids = np.concatenate([on, close])
        amounts = np.concatenate([np.full(len(on), -self.close_bias), np.full(len(close), self.close_bias)])
        return (ids, amounts) if len(ids) else None

    def unsaid(self) -> list[str]:
        """The unwritten parameters of the call an enum value of which the request says whole, not only inside a value written
        ("history" of "Natural History Museum")."""
        low, keys = self.calls.written.lower(), self.calls.args.keys
        return [p for p, vs in self.enum_said.get(self.calls.name, {}).items()
                if p not in keys and any(v.lower().replace("_", " ") not in low for v in vs)]

    @property
    def keying(self) -> bool:
        """A top-level key is being written, and the request says an enum value of a parameter of the tool whole."""
        a = self.calls.args
        return bool(self.enum_said.get(self.calls.name)) and a.in_str and not a.is_value and a.stack == ["{"] and a.value is not None

    def keys(self, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
        """While a top-level key is written (the grammar allowing more than one), the lean on the tokens toward an unwritten
        parameter one of whose enum values the request says whole (`unsaid`), or None."""
        a = self.calls.args
        amount = max(self.left_bias, self.arg_bias * ENUM_SAID)
        if allowed is None or not amount or not self.keying or not (due := self.unsaid()):
            return None
        ids = np.flatnonzero(allowed)
        if len(ids) > 256:  # a key is written under the grammar, which allows only the pieces of the tool's keys
            return None
        v = a.value or ""
        toward = [int(t) for t in ids if (p := self.text(int(t))) is not None
                  and any(k.startswith(v + p) or '"' in p and k == v + p.split('"')[0] for k in due)]
        return (np.array(toward), np.full(len(toward), amount)) if toward and len(toward) < len(ids) else None

    def unused(self) -> float:
        """The share of the request's values that no call written so far holds (0 when it states none)."""
        return sum(not self.calls.wrote(v) for v in self.asked) / len(self.asked) if self.asked else 0.0

    def unnamed(self) -> dict[str, float]:
        """The offered tools no call has used yet that have a word of their own name in the request, beyond
        what the calls wrote ("... and in his career": `most_points_career`), at relevance 1 and the others at 0;
        {} where there is none."""
        rest = self.said - words(self.calls.written) if self.named else set()
        out = {n: float(n not in self.calls.called and bool(ws & rest)) for n, ws in self.named.items()}
        return out if any(out.values()) else {}

    def more(self, allowed: np.ndarray | None, ends: Iterable[int]) -> tuple[np.ndarray, np.ndarray] | None:
        """Between calls (the last one's arguments closed), where the response may end (an `ends` token
        is allowed): the lean on the allowed tokens that go on to another call (the grammar allows
        nothing else there: the separator, or the next call's opening), or None."""
        if not (self.more_bias and self.calls.n and self.calls.args.closed) or allowed is None:
            return None
        ends = [t for t in ends if t < len(allowed) and allowed[t]]
        if not ends:
            return None
        keep = allowed.copy()
        keep[ends] = False
        ids = np.flatnonzero(keep)
        amount = self.more_bias * max(self.unused(), NAMED_SHARE if self.unnamed() else 0.0)
        return (ids, np.full(len(ids), amount)) if len(ids) and amount > 0 else None
