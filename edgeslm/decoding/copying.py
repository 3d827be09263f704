"""Request lean: a tool call leans toward the request's own words, in its tool and in its values.

Small models misspell the values they should copy (`Lisbondo` for Lisbon, `Heathfield` for Heathrow) and pick a tool by its place in
the list more than by what it does; the right token is usually among the top few, a little behind. Biases on the logits, each off at 0
(docs/serve.md has each one's measurements):

- `copy_bias`: inside a string value, each allowed token within copy_bias of the best (at most `TOP`) whose piece extends the value
  to a span of the user's and tools' text (from a word's start), or closes it on a whole one, gets +copy_bias; not a piece that a
  longer one on the tokenizer's own split of the span begins with (canon.Splits: "alon", not "a", after "Thess" of The|ss|alon|iki).
  MID_NAME times that part way into a name or a word cut short (said.mid_name), MID_NAME x SLOT on the split's next piece there and to
  close a code the request ends on or an e-mail address whole (said.ends_code); SLOT times at a value's first token for a span the
  request ties to the parameter (said.slots) or a quote no call holds and no other parameter is tied to; no close inside a run of
  capitalized words ("Salt Lake" of "Salt Lake City"), a quote or a compound unit ("fluid ounces"); numbers: amounts.numbers. A
  student's e-mail addresses, times or dates stay on the request's (asks.Kept).
- `tool_bias`: while a call's name is written, each allowed token gets +tool_bias times the best relevance of the tools it leads to (1
  for the most relevant tool; ranking.ToolRanker measures it with a sentence embedding, `said.relevance` by shared words where none is
  installed), and by 1 + SURE times how far the best tool stands from the next. The first call by the whole request; each later one by
  the first clause of it none of whose own values a call has written (`due`): small models call the first clause's tool again ("news"
  twice for "..., news about X, and air quality in Beijing").
- `call_bias`: with tools offered and the choice left to the model (`auto`), the first token of the response, where it begins a call,
  gets +call_bias times how well the request fits the best offered tool: clip((cos - FIT_CENTER) / FIT_WIDTH, -1, 1) of the sentence
  embeddings' cosine, so a request far from every tool leans to an answer in text instead (ranking.ToolRanker; none by words).
- `more_bias`, `arg_bias`, `close_bias`, `left_bias`: where a call's arguments or the response may end, on or close (ending.Ending).

The grammar still decides what is allowed; the biases tip near-ties. Owns the choice of tokens and what the calls have written
(argstream.Calls: what they wrote, as it streams); the sampler adds the bias (decoding/sampler.py), generation.Run wires both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np

from edgeslm.decoding import amounts, asks, clock, said
from edgeslm.decoding.argstream import ArgStream, Calls
from edgeslm.decoding.canon import Splits
from edgeslm.decoding.ending import Ending
from edgeslm.decoding.said import Ranking, found, held, quotes, slots, span

TOP = 16  # at most this many tokens lean toward a span: the bias tips near-ties, it invents nothing
# inside a name being copied, MID_NAME times copy_bias: how this project's models misspelt values (Lisbondo aside)
MID_NAME = 3.0
# MiniLM's cosine of a request and its best tool's "name: description" on BFCL's training part: median
# about 0.55 where a tool answers (10th percentile 0.35-0.41 by category), 0.20 where none does. The centre
# leaves 81% of irrelevance below it; read with the request's values left out too (ranking.ToolRanker), that
# share is kept at 0.36 (4.3% of the requests a tool answers fall below it, 6.9% before)
FIT_CENTER, FIT_WIDTH = 0.36, 0.15
# at a string value's first token, a span the request ties to the parameter (said.slots: "the session
# 'S1'", `JDBC_session`) leans SLOT times copy_bias: small models put a request's values in the wrong slots
SLOT = 3.0
TIED_TOP = 2048  # how far down a tied span's first token is looked for
WHOLE = 0.5  # more for a lifted piece that ends a word where a shorter one does not ("aja", "ajas": 35.5 each)
# the tool lean grows by SURE times how far the best tool stands from the next (1 - the second's relevance):
# where MiniLM's best tool leads by 0.1 of cosine or more, it is a gold tool in 131 of 131 `multiple` requests
# of BFCL's training part, and a model's habit ("get_" tools) can outweigh a lean of 3. SURE_ONE where the
# request is one clause (one call, as those 131): 6 lost to an 8.8-logit lead of "get" over "lookup"
SURE, SURE_ONE = 1.0, 2.0


class Leans(NamedTuple):
    """How hard each lean pulls (the sampling fields `copy_bias` ... `left_bias`; 0: off)."""

    copy: float = 0.0
    tool: float = 0.0
    call: float = 0.0
    more: float = 0.0
    arg: float = 0.0
    close: float = 0.0
    left: float = 0.0

    @classmethod
    def of(cls, p) -> Leans:
        """A request's resolved sampling parameters' leans (None: off)."""
        return cls(*(getattr(p, f"{f}_bias") or 0.0 for f in cls._fields))


class Copier:
    """One request's lean. `begin()` at each call's name, `feed(fragment)` with its arguments' JSON as it streams, and
    `boost(logits, allowed, naming)` before each sample: the token ids to lift and by how much (or None)."""

    def __init__(self, source: str, piece: Callable[[int], bytes], leans: Leans, ranking: Ranking | None = None,
                 tools: Iterable | None = None, openers: np.ndarray | None = None, commas: np.ndarray | None = None,
                 tokenize: Callable[[str], list[int]] | None = None, kinds: dict[str, dict[str, str]] | None = None):
        (copy_bias, tool_bias, call_bias), self.leans = (leans.copy, leans.tool, leans.call), leans
        relevance, fit, self.parts = ranking or Ranking({})
        self.one = tool_bias > 0 and len(said.clauses(source)) <= 1  # a request of one clause: SURE_ONE
        tools = list(tools or ())
        self.props = {t.name: p for t in tools if isinstance(p := (t.parameters or {}).get("properties"), dict)} if copy_bias else {}
        # tool -> parameter -> the layout its description asks dates in (clock.layout: "in the format mm-dd-yyyy")
        self.layouts = {n: {k: lay for k, p in ps.items() if (lay := clock.layout(p))} for n, ps in self.props.items()}
        self.dates = {lay: clock.dates(source, lay) for ps in self.layouts.values() for lay in ps.values()}  # layout -> its dates
        # what values are copied from: the request, and its times and dates in the forms calls write (clock.forms)
        self.source = source + "".join("\n" + f for f in clock.forms(source, {lay for ps in self.layouts.values() for lay in ps.values()})
                                       ) if copy_bias and source else source
        self.piece, self.copy_bias = piece, copy_bias
        self.splits = Splits(self.source, tokenize, piece) if tokenize and copy_bias and source else None
        self.w = Calls()  # the calls written so far
        self.begin, self.feed = self.w.begin, self.w.feed  # at each call's name; with its arguments' JSON as it streams
        self.relevance = relevance or {}  # tool name -> relevance, 1 for the best (ranking.ToolRanker)
        self.tool_bias = self._sure(tool_bias, self.relevance)
        # the tokens that begin a call (decoding/constraints.call_openers) and the lean on them
        self.openers = openers if openers is not None else np.empty(0, dtype=np.int64)
        self.opening = (call_bias * max(-1.0, min(1.0, (fit - FIT_CENTER) / FIT_WIDTH))
                        if call_bias and fit is not None and len(self.openers) else 0.0)
        self._pieces: dict[int, str | None] = {}
        # (start, end) of what the source puts in quotes or after a label: a value is not cut inside them (`cuts`)
        self.quoted = quotes(source) + said.labelled(source) if copy_bias else []
        self.numbers = amounts.numbers(source) if copy_bias else frozenset()  # for `counting`
        self.stated = amounts.stated(source) if copy_bias else []  # the same, a set of forms per number (`_sign`)
        self._tied: dict[str, set[int]] = {}  # parameter -> where the source ties a value to it (said.slots)
        self._tails: dict[tuple[str, str], list[tuple[int, int]]] = {}  # (tool, parameter) -> the spans no value is cut inside
        self._regions: dict[tuple[str, str], bool] = {}  # (tool, parameter) -> _regional()
        self.kept = asks.Kept(source, kinds, tokenize) if kinds and copy_bias and tokenize else None  # addresses, times
        self.ending = Ending(source, leans, self.w, self._text, tools, commas, self.numbers, self.source, self.kept,
                             copy_bias * MID_NAME * SLOT)  # another argument or call

    def _sure(self, tool_bias: float, relevance: dict[str, float]) -> float:
        """The tool lean over these relevances: 0 without a choice, else grown by how far the best leads."""
        return tool_bias * (1.0 + (SURE_ONE if self.one else SURE) * (1.0 - sorted(relevance.values())[-2])) if (
            tool_bias and len(relevance) > 1 and any(relevance.values())) else 0.0

    @property
    def args(self) -> ArgStream:
        """The arguments of the call being written, as they stream."""
        return self.w.args

    @property
    def copying(self) -> bool:
        """A string value of the arguments is being written, and can be compared with the request."""
        a = self.args
        return self.copy_bias > 0 and a.in_str and a.is_value and a.value is not None and bool(self.source)

    def _text(self, token: int) -> str | None:
        if token not in self._pieces:
            try:
                self._pieces[token] = self.piece(token).decode("utf-8")
            except UnicodeDecodeError:  # part of a character: no span to compare
                self._pieces[token] = None
        return self._pieces[token]

    def lifts(self, token: int) -> bool:
        """Whether this token, written next, keeps the value a span of the source or closes it on one."""
        text, value = self._text(token), self.args.value or ""
        if not text or "\\" in text:
            return False
        q = text.find('"')
        return span(self.source, value + text, False) if q < 0 else bool(value + text[:q]) and span(self.source, value + text[:q], True)

    def leads_to(self, token: int, prefix: str, relevance: dict[str, float]) -> float:
        """The best of these relevances among the tools whose name `prefix` + this token's piece begins (or is, if it closes it)."""
        if (text := self._text(token)) is None:
            return 0.0
        q = text.find('"')
        name = prefix + (text if q < 0 else text[:q])
        return max((r for n, r in relevance.items() if (n.startswith(name) if q < 0 else n == name)), default=0.0)

    def due(self) -> dict[str, float]:
        """For a later call: the tools' relevance to the first clause none of whose own values a call has written (said.own_values),
        or {} where every clause has one."""
        return next((relevance for own, relevance in self.parts if not any(map(self.w.wrote, own))), {})

    def _slots(self) -> set[int]:
        """Where the source ties a value to this parameter (said.slots), else where a quote no call holds
        yet opens: what a user puts in quotes is a value ("put 'Abo Fitness Jänner' as the reference")."""
        if tied := self._tie(self.args.key or ""):
            return tied
        src = self.source
        # not one that another parameter of the tool is tied to ("with the reference 'Deposit – Flat 12, Leeds'" is no `iban`)
        others = set().union(*(self._tie(k) for k in self.props.get(self.w.name, {}) if k != self.args.key))
        return {a for a, b in self.quoted if not held({src[a:b].lower()}, self.w.written) and a not in others}

    def _tie(self, key: str) -> set[int]:
        return self._tied[key] if key in self._tied else self._tied.setdefault(key, slots(self.source, key))

    def _at(self, token: int, starts: set[int]) -> bool:
        """This token, as a value's first, begins a span of the source at one of `starts`."""
        text = (self._text(token) or "").split('"')[0]
        return bool(text) and any(i in starts for i in found(self.source, text))

    def mid_name(self) -> bool:
        """The value so far stops inside a capitalized word of the source and is nowhere a whole span (said.mid_name): the name is
        being copied, and a token that leaves it there misspells it ("Padding Station", "Heathfield", "Ljubav", "Krak")."""
        return said.mid_name(self.source, self.args.value or "")

    def cuts(self, v: str) -> bool:
        """A value closed at `v` would cut a name, the user's quotes (said.cut: "Salt Lake" of "Salt Lake City", "Deposit – Flat 12"
        of 'Deposit – Flat 12, Leeds') or a student's address before its town (asks.Kept.short)."""
        kept = bool(self.kept and self.kept.short(self.w.name, self.args, v))
        return kept or said.cut(self.source, v, self.delimited(), not self._regional())

    def _regional(self) -> bool:
        """The call's tool has another top-level parameter for a place's region (said.REGIONAL: "country", "state")."""
        if (key := (self.w.name, self.args.key or "")) not in self._regions:
            self._regions[key] = any(k != key[1] and said.REGIONAL.search(k.replace("_", " ") + " " + str(p.get("description") or ""))
                                     for k, p in self.props.get(key[0], {}).items() if isinstance(p, dict))
        return self._regions[key]

    def delimited(self) -> list[tuple[int, int]]:
        """What the source puts in quotes or after a label, its codes (asks.codes), what follows a word of this parameter opening its
        last clause (said.tail), and a place with its region (said.regions) unless the tool asks for the region apart."""
        if (key := (self.w.name, self.args.key or "")) not in self._tails:
            self._tails[key] = self.quoted + said.tail(self.source, key[1]) + asks.codes(self.source) + amounts.compounds(self.source) + (
                [] if self._regional() else said.regions(self.source))
        return self._tails[key]

    def _within(self, v: str) -> bool:
        """`v` stands in the source inside one of the spans no value is cut inside (`delimited`), to its end at most."""
        return any(a <= i and i + len(v) <= b for i in found(self.source, v) for a, b in self.delimited())

    def _closes_cut(self, token: int) -> bool:
        text = self._text(token) or ""
        return '"' in text and self.cuts((self.args.value or "") + text[:text.find('"')])

    def _contenders(self, logits: np.ndarray, allowed: np.ndarray | None, beta: float, top_n: int = TOP) -> list[int]:
        """The allowed tokens within beta of the best allowed one, at most `top_n`, best first. Looks near the unmasked best first: all
        262k logits are masked (a copy) only when nothing allowed is near it."""
        top = float(logits.max())
        near = np.flatnonzero(logits >= top - beta)
        if allowed is not None:
            near = near[allowed[near]]
            if not len(near):
                scores = np.where(allowed, logits, -np.inf)
                top = float(scores.max())
                near = np.flatnonzero(scores >= top - beta) if np.isfinite(top) else near
            elif float(logits[near].max()) < top:  # the best is masked: look again below the best allowed
                near = np.flatnonzero(logits >= float(logits[near].max()) - beta)
                near = near[allowed[near]]
        return [int(t) for t in near[np.argsort(-logits[near], kind="stable")][:top_n]]

    def open(self, due: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
        """At the response's first token (auto mode): the lean on the tokens that begin a call, all of call_bias where one is `due`."""
        amount = self.leans.call if due else self.opening
        return (self.openers, np.full(len(self.openers), amount)) if amount and len(self.openers) else None

    def boost(self, logits: np.ndarray, allowed: np.ndarray | None,
              naming: str | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """(ids, amounts) to add to their logits, or None. `allowed`: a bool per token (None: all); `naming`: the call's name written
        so far while a name is being written, else None."""
        if naming is not None:
            # the first call by the whole request, each later one by the clause still due (parallel calls
            # of one tool: no choice, no lean)
            relevance = (self.due() or self.ending.unnamed()) if self.w.n else self.relevance
            lean = self._sure(self.leans.tool, relevance) if self.w.n else self.tool_bias
            if not lean or allowed is None:
                return None
            ids = np.flatnonzero(allowed)  # the grammar allows only what begins an offered name
            amounts = np.array([lean * self.leads_to(int(t), naming, relevance) for t in ids])
            keep = amounts > 0
            return (ids[keep], amounts[keep]) if keep.any() else None
        if keyed := self.ending.keys(allowed):
            return keyed
        if not (self.copying or self.counting or self.signing):
            return None
        run = self.copying and self.cuts(self.args.value or "")
        lift = self._copy(logits, allowed, run) if self.copying else self._count(logits, allowed) if self.counting else self._sign(
            logits, allowed)
        ends = None if run else self.ending.more_args(allowed, logits)  # close the value and go on, or not
        for t, amount in zip(*ends, strict=True) if ends else ():
            lift[int(t)] = lift.get(int(t), 0.0) + float(amount)
        return (np.fromiter(lift, dtype=np.int64, count=len(lift)),
                np.fromiter(lift.values(), dtype=float, count=len(lift))) if lift else None

    def _copy(self, logits: np.ndarray, allowed: np.ndarray | None, run: bool) -> dict[int, float]:
        """While a string value is written: the tokens that keep it a span of the source or close it on one."""
        v, hold = self.args.value or "", self.copy_bias * MID_NAME * SLOT
        if self.kept and (to := self.kept.due(self.w.name, self.w.n, self.args, self.w.written)):  # over any other span
            ends = {t for t in self._contenders(logits, allowed, hold, TIED_TOP) if asks.closes_on(v, self._text(t) or "", to)
                    } if v in to else set()
            if lift := {t: hold for t in self.kept.next(v, to) | ends if allowed is None or allowed[t]}:
                return lift
        off = self.kept.off(self.w.name, self.args, self.w.written) if self.kept else None  # another parameter's date or address
        shut = run and said.inside(self.source, v, self.delimited())  # closed here, it cuts the user's quote, label or last clause
        stop = bool(self.kept and self.kept.before(self.w.name, self.args, self.w.written, v))  # going on runs into another's date
        dates = self._dates()  # the request's dates in the layout this parameter asks for: one is not closed part way ("1915")
        early = v != "" and v.lower() not in dates and any(f.startswith(v.lower()) for f in dates)
        closes = shut or early
        if shun := [t for t in self._contenders(logits, allowed, hold, TIED_TOP) if (off and off(v + (self._text(t) or '"'))) or (
                closes and '"' in (self._text(t) or "")) or (stop and '"' not in (self._text(t) or '"'))] if off or closes or stop else []:
            allowed = np.ones(len(logits), dtype=bool) if allowed is None else allowed.copy()  # the lean reads from the rest's best
            allowed[shun] = False
        beta = self.copy_bias * (MID_NAME if (mid := self.mid_name()) or run else 1.0)
        wide = beta * (SLOT if (ties := self._slots() if v == "" and self.args.stack == ["{"] and self.args.key else set()) else 1.0)
        lift = {t: (wide if ties and self._at(t, ties) else beta) for t in self._contenders(logits, allowed, wide)
                if self.lifts(t) and not self._closes_cut(t)}
        pieces = {t: self._text(t) or '"' for t in lift}
        for t, p in pieces.items():  # of two lifted pieces, one the other's start, the one that ends a word: "ajas"
            if '"' not in p and any(q != p and p.startswith(q) for q in pieces.values()) and span(self.source, v + p, True):
                lift[t] += WHOLE
        if ties:  # a tied span's first token may sit below TOP junk tokens where the logits are flat
            lift.update({t: wide for t in self._contenders(logits, allowed, wide, TIED_TOP)
                         if t not in lift and self._at(t, ties) and self.lifts(t)})
        for t, b, a in self._respaced(logits, allowed, wide) if v == "" else ():
            lift[b], shun = max(lift.get(b, 0.0), a), shun + [t]
        # nor a piece a longer one on it begins, or off it ("pret"); inside what is not cut (`shut`), on along the split at the hold
        # while the piece stays inside it ("+'" of 'Guardian Sword+' runs past the quote: at beta, as elsewhere)
        on = self._on_split(logits, allowed, hold if mid else beta, lift)
        if shut and not mid:
            on |= {t: a for t, a in self._on_split(logits, allowed, hold, lift).items() if self._within(v + (self._text(t) or ""))}
        if on:
            lift = {t: a for t, a in lift.items() if t in on or '"' in (p := self._text(t) or '"') or span(self.source, v + p, True)
                    or not any((self._text(u) or "").startswith(p) for u in on) and bool(self.splits and self.splits.next(v + p))} | {
                t: max(lift.get(t, beta), on[t]) for t in on}
        if due := [f for f in dates if f.startswith(v.lower()) and f != v.lower()]:
            # the request's first date no call holds begun in the parameter's layout, or a date part way written on in it, toward such
            due = [f for f in due if not self.w.wrote(f)][:1] or due
            lift.update({t: hold for t in self._contenders(logits, allowed, hold, TIED_TOP) if (p := (self._text(t) or '"').split('"')[0])
                         and '"' not in (self._text(t) or '"') and any(f.startswith((v + p).lower()) for f in due)})
        # the one currency the request names, where the parameter's enum holds it; or the one value of its enum or its description's
        # quotes that the request says whole ("state" of "Find state law cases", judicial_system "(e.g. 'federal', 'state')"); or
        # the compound unit, or the quote or label tied to the parameter, a later word of which the best begins, from its start
        # ("nautical miles", not "miles"; "Rechnung 2027-044 Tischlerei Huber", not "Tischlerei Huber": amounts.compound_of)
        if v == "" and (code := self._currency() or self._said_value() or amounts.compound_of(self.source, self._best(
                logits, allowed), [s for s in self.quoted if s[0] in ties])):
            begins = [t for t in self._contenders(logits, allowed, hold, TIED_TOP) if code.startswith(self._text(t) or '"')]
            split = self.splits.bare(code) if self.splits else set()  # the first token of the request's own split, where one begins it
            lift.update({t: hold for t in [t for t in begins if t in split] or begins})
        said_v = bool(v) and v == self._said_value()  # closes, as a code whole where the request ends or prose goes on ("1290387|78779")
        if said.ends_code(self.source, v) or said_v:
            lift.update({t: max(lift.get(t, 0.0), hold) for t in self._contenders(logits, allowed, hold, TIED_TOP)
                         if '"' in (self._text(t) or "") and (said_v or self.lifts(t))})
        return lift | {t: -hold for t in shun}

    def _best(self, logits: np.ndarray, allowed: np.ndarray | None) -> str:
        return (self._text(best[0]) or '"').split('"')[0] if (best := self._contenders(logits, allowed, 0.0, 1)) else ""

    def _dates(self) -> list[str]:
        """The request's dates, lower-cased, in the layout this top-level parameter's description asks for (clock.layout), else []."""
        lay = self.layouts.get(self.w.name, {}).get(self.args.key or "") if self.dates and self.args.stack == ["{"] else None
        return [clock.written(d, lay).lower() for d in self.dates[lay]] if lay else []

    def _currency(self) -> str | None:
        """The code of the one currency the request names ("quid" GBP: said.currency) where this top-level parameter's enum holds it."""
        code = said.currency(self.source) if self.args.stack == ["{"] else None
        return code if code and code in self.ending.enums.get(self.w.name, {}).get(self.args.key or "", ()) else None

    def _said_value(self) -> str | None:
        """The one value its description quotes or glosses that the request says whole, for a top-level parameter with no enum (the
        model weighs an enum's values: "Inbox item from ... it's a payment reminder", "billing" 1.3 above "inbox")."""
        said_here = self.ending.enum_said.get(self.w.name, {}).get(k := self.args.key or "", ()) if self.args.stack == ["{"] else ()
        return next(iter(said_here)) if len(said_here) == 1 and not self.ending.enums.get(self.w.name, {}).get(k) else None

    def _respaced(self, logits: np.ndarray, allowed: np.ndarray | None, beta: float) -> list[tuple[int, int, float]]:
        """At a value's first token: (t, b, lift) for each contender t within beta of the best that is a word of the source with the
        space before it, as the request's own tokens write it (" teaspoons" of "into teaspoons"), and b, the first token of that word's
        own split ("te" of te|as|poons), lifted to t's logit and beta more: a value begins at the word, not at the space before it."""
        out: list[tuple[int, int, float]] = []
        if (splits := self.splits) is None:
            return out
        for t in self._contenders(logits, allowed, beta):
            w = (p := self._text(t) or "")[1:]
            if p[:1] == " " and w[:1].isalnum() and '"' not in w and span(self.source, w, False):
                out += [(t, b, float(logits[t] - logits[b]) + beta) for b in splits.bare(w) if allowed is None or allowed[b]]
        return out

    def _on_split(self, logits: np.ndarray, allowed: np.ndarray | None, beta: float, lift: dict[int, float]) -> dict[int, float]:
        """The tokens that copy the value on along the tokenizer's own split of the source (canon.Splits) and their lift: at its start the
        lifted ones that begin a word's split, then the split's next within beta of the best (part way into a name, the hold); no quote."""
        v, text = self.args.value or "", lambda t: self._text(t) or '"'
        if self.splits is None or not v:
            return {t: lift[t] for t in lift if '"' not in text(t) and self.splits.first(t, text(t))} if self.splits else {}
        best = self._contenders(logits, allowed, 0.0, 1)
        return {t: beta for t in self.splits.next(v) if best and logits[t] >= logits[best[0]] - beta and '"' not in text(t)
                and (allowed is None or allowed[t]) and self.lifts(t) and not self._closes_cut(t)}

    @property
    def counting(self) -> bool:
        """A number value is being written (its first digit chosen), and the request states numbers."""
        return bool(self.numbers and (self.args.number or "").lstrip("-+"))

    def _count(self, logits: np.ndarray, allowed: np.ndarray | None) -> dict[int, float]:
        """While a number is written: +copy_bias on the tokens that go on toward a number the request states,
        in a form a call writes ("2k": 2000, "$12,400": 12400; amounts.numbers), or close it on one."""
        so_far = (self.args.number or "").lstrip("+")  # MID_NAME part way into one, or whole where none goes on ("75|000")
        whole = so_far in self.numbers and not any(f != so_far and f.startswith(so_far) for f in self.numbers)
        short = self.ending.short_of(so_far)  # 3 digits or more of one: the hold (a student closed "34000" of "¥340,000", 22 behind)
        beta = self.copy_bias * (MID_NAME * SLOT if short and len(so_far.lstrip("-")) >= 3 else MID_NAME if whole or short else 1.0)
        return {t: beta for t in self._contenders(logits, allowed, beta) if amounts.counts(self.numbers, so_far, self._text(t) or "")}

    @property
    def signing(self) -> bool:
        """A value may begin here (no key, no string, no number yet) and the request states a number."""
        return (a := self.args).number is None and not a.in_str and not a.expect_key and a.last in (":", "[", ",") and bool(
            a.stack and self.numbers)

    def _sign(self, logits: np.ndarray, allowed: np.ndarray | None) -> dict[int, float]:
        """At a value's first token, where the model's best begins digits of no stated number: if they begin a stated negative one no
        call holds, the tokens that begin it with its sign get the hold (two seeds' students wrote 40 of "-40 celsius"); else, where one
        stated number alone is in no call, those that begin it get copy_bias (5, "Default is 5", for "the top three")."""
        due = [forms for forms in self.stated if not any(map(self.w.wrote, forms))]  # a number is written in any of its forms
        if not (len(due) == 1 or any(f[:1] == "-" for f in self.numbers)) or not (digits := self._best(logits, allowed))[:1].isdigit(
                ) or any(f.startswith(digits) for f in self.numbers):  # neither can apply (no scan of the vocabulary), or the model's own
            return {}
        if any(f.startswith("-" + digits) and not self.w.wrote(f) for f in self.numbers):
            hold = self.copy_bias * MID_NAME * SLOT
            return {t: hold for t in self._contenders(logits, allowed, hold, TIED_TOP)
                    if (p := self._text(t) or "")[:1] == "-" and any(f.startswith(p) for f in self.numbers)}
        return {t: self.copy_bias for t in self._contenders(logits, allowed, self.copy_bias) if (p := self._text(t) or "")[:1].isdigit()
                and any(f.startswith(p) for f in due[0])} if len(due) == 1 else {}
