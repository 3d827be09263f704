"""What a request says, for the request lean (decoding/copying.py): its content words, the values it states, the text values may be
copied from, and the tools' relevance by shared words (where no sentence embedding ranks them). Pure functions of text; no model."""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from edgeslm.decoding import clock

_WORD = re.compile(r"[a-z0-9]+")
NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?!\w)")
QUOTED = re.compile(r"[\"“‘]([^\"”’\n]{2,80})[\"”’]|(?<!\w)'([^'\n]{2,80})'(?!\w)")
NAME = re.compile(r"\b[A-Z][\w\-]*(?:[ \t]+[A-Z][\w\-]*)*")
_STOP = frozenset("a an the of to in for on and or is are be by with from at as it this that what which how "
                  "get me my i you your can could would please do does give tell about into than its".split())


def source_text(messages: Iterable) -> str:
    """The text values may be copied from: what the user and the tools said (not the system prompt,
    whose examples are not this request's values), one message per line."""
    return "\n".join(m.content for m in messages if m.role in ("user", "tool") and isinstance(m.content, str))


def values(text: str) -> list[str]:
    """The values a request states, lower-cased, each once: numbers (thousands separators dropped),
    quoted strings, and runs of capitalized words that do not open a sentence (nor "I")."""
    quoted = list(QUOTED.finditer(text))
    out = [m.group().replace(",", "") for m in NUMBER.finditer(text)] + [(m.group(1) or m.group(2)).strip() for m in quoted]
    for m in NAME.finditer(text):
        if any(q.start() < m.start() < q.end() for q in quoted):
            continue
        before = text[:m.start()].rstrip()
        parts = m.group().split()
        if not before or before[-1] in ".!?:\n\"'“":  # a sentence's first word is capitalized anyway
            parts = parts[1:]
        if parts and parts != ["I"] and not parts[0].startswith("I'"):
            out.append(" ".join(parts))
    return list(dict.fromkeys(v.lower().strip() for v in out if v.strip()))


# a letter TLD: no "lodash@4.17.21"; starting where a run of address characters starts (linear, not quadratic)
EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}\b")
# a label (a word or two and a colon) opening a message's last sentence or clause ("... ? Memo: Q2 fees", "— Ref: X", ", payment
# reference: X"; `labelled`); an "@"
LABEL = re.compile(r"(?<=[.?!,;\u2013\u2014])[ \t]++[A-Za-z][a-z]{1,15}(?:[ \t][a-z]{2,15})?:[ \t]++([^\s:?][^\n:?]{1,59}?)"
                   r"[ \t]*+(?:[.!][ \t]*+)?$")
_AT = re.compile(r"[\w.+-]@")
_NOTED = re.compile(r"\b(?:(?:with|and)[ \t]+(?:the|a)[ \t]+(?:note|memo|reference|comment|description|message|subject|title)|(?:and|,)"
                    r"[ \t]+(?:label|title|name|tag|mark)[ \t]+it|(?:con|com|avec|mit)[ \t]+(?:(?:el|la|a|le|dem|der)[ \t]+)?(?:concepto|"
                    r"refer[eéê]ncia|nota|causale|descripci[óo]n|descri[çc][ãa]o|r[ée]f[ée]rence|libell[ée]|motif|mention|"
                    r"Verwendungszweck|Referenz|Betreff|Vermerk))[ \t]+([^\W\d_][^\n\"':?!.,;]{1,59}?)[ \t]*+[.!]?[ \t]*+$", re.IGNORECASE)


def labelled(text: str) -> list[tuple[int, int]]:
    """(start, end) of what follows a label that opens a request's last sentence, or its last clause after one of MIN_CLAUSE words
    or more ("Hi, task: book a flight" is the request) and holds no list ("namely: Paris, Rome"), or a label in words that ends
    the request with a capital (_NOTED: "with the note Pizza night split", "and label it Car service June", and in the workload's
    second languages and their neighbours, "con el concepto X", "mit dem Verwendungszweck X"): a value of its own, as a quote is."""
    return [m.span(1) for m in LABEL.finditer(text) if text[m.start() - 1] in ".?!" or ", " not in m.group(1) and len(
        re.split(r"[.?!;,\n]", text[:m.start() - 1])[-1].split()) >= MIN_CLAUSE] + [
        m.span(1) for m in _NOTED.finditer(text) if m.group(1)[0].isupper()]  # a value, not words about it ("a description of ...")


@functools.lru_cache(maxsize=32)
def emails(text: str) -> tuple[str, ...]:
    """The e-mail addresses `text` states (read once per request: mid_name asks at every token)."""
    return tuple(m.group() for m in EMAIL.finditer(text))


def quotes(text: str) -> list[tuple[int, int]]:
    """(start, end) of what `text` puts in quotes."""
    return [m.span(1) if m.group(1) else m.span(2) for m in QUOTED.finditer(text)]


def held(forms: Iterable[str], written: str) -> bool:
    """Whether the calls' text holds one of a typed value's forms whole ("19:30" also in
    "2026-12-19t19:30:00"; an address not inside a longer one)."""
    return any(re.search(rf"(?:(?<![\w.+:-])|(?<=\dt)){re.escape(f)}(?![\w@-]|\.\w)", written) for f in forms)


def typed(text: str) -> list[frozenset[str]]:
    """The values of a kind no other text is mistaken for that a request states (e-mail addresses, clock times, what it puts in quotes
    or labels: "Memo: Q2 fees"), each as the forms a call may rightly hold it in, lower-cased: an address, a quote or a label's value
    as written; a time in 24 hours ("7:30 PM": 19:30) or in 12 as written (clock.times)."""
    out = [frozenset({m.group().lower()}) for m in EMAIL.finditer(text)]
    out += [frozenset({text[a:b].strip().lower()}) for a, b in quotes(text) + labelled(text)]
    return list(dict.fromkeys(out + clock.times(text)))


# where a request that asks for several calls goes on to the next: a sentence's end, a comma, "and", "then"
_CLAUSE = re.compile(r"(?<=[.?!;])\s+|,\s+(?:and|then|also)\s+|,\s+|\s+(?:and then|and also|and|then|also|as well as)\s+", re.I)
MIN_CLAUSE = 3  # words: a shorter piece ("CA" of "San Francisco, CA") belongs to the one before


def clauses(text: str) -> list[str]:
    """`text` cut where it goes on to another request ("the air quality in New York for 5 days, news about
    global warming for 3 days, and ..."), pieces under MIN_CLAUSE words joined to a neighbour."""
    pieces = [p for p in _CLAUSE.split(text) if p and p.strip()]
    out: list[str] = []
    for p in pieces:
        if out and len(p.split()) < MIN_CLAUSE:
            out[-1] += " " + p
        else:
            out.append(p)
    if len(out) > 1 and len(out[0].split()) < MIN_CLAUSE:
        out[:2] = [out[0] + " " + out[1]]
    return out


def own_values(text: str, parts: list[str]) -> list[frozenset[str]]:
    """Each clause's values (the `values` of the whole text it holds) that no other clause states (all of its values where each is
    stated elsewhere too): what tells that a call has served it ("5 years" may be in every clause)."""
    stated = values(text)
    said = [frozenset(v for v in stated if re.search(rf"(?<!\w){re.escape(v)}(?!\w)", p, re.IGNORECASE))
            for p in parts]
    return [(v - frozenset().union(*(said[:i] + said[i + 1:]))) or v for i, v in enumerate(said)]


def starts_word(text: str, i: int) -> bool:  # never past an address's "@" ("datavault.com" of "security@datavault.com")
    return (i == 0 or not text[i - 1].isalnum() and not (text[i - 1] == "@" and _AT.match(text, i - 2, i))) and not text[i].isspace()


_SUFFIX = re.compile(r"[#+]+(?![^\W_])")  # what a name ends with: "C#", "C++", "Guardian Sword+", "Disney+" (not "1+1")


def ends_word(text: str, end: int) -> bool:  # "Lisbon," is no whole value: a span does not end on a separator, nor "C" of "C#"
    return (end >= len(text) or not text[end].isalnum() or not text[end - 1].isalnum()) and \
        not text[end - 1].isspace() and text[end - 1] not in ",;:" and not (
            end < len(text) and (text[end - 1].isalnum() or text[end - 1] in "#+") and _SUFFIX.match(text, end))


def found(text: str, part: str) -> Iterator[int]:
    """Where `part` occurs in `text`, each start."""
    i = text.find(part)
    while i >= 0:
        yield i
        i = text.find(part, i + 1)


def span(text: str, part: str, whole: bool) -> bool:
    """`part` occurs in `text` starting at a word (and, when `whole`, ending at one)."""
    return any(starts_word(text, i) and (not whole or ends_word(text, i + len(part))) for i in found(text, part))


MID_LETTERS = 3
_ALNUM = re.compile(r"[^\W_]*")
# what may run on after a capitalized word inside a name: spaces, particles, the next word's first letter
# a place's region after it, then no more places ("Tel Aviv, Israel, fahrenheit", "St. John's, Newfoundland in"; not "Paris, London
# and Rome"): issue 23
_REGION = re.compile(r"(?:['’]s)?,[ \t]+[A-Z][\w'’.-]*(?:[ \t]+[A-Z][\w'’.-]*)*(?=[ \t]*(?:[.?!;)]|\n|$|,[ \t]+[a-z\d]|[ \t]+"
                     r"(?!(?:and|or|y|e)\b)[a-z]))")
# a parameter that holds a place's region apart from the place ("country", "state"): `cut` does not hold the region with the place
REGIONAL = re.compile(r"\b(?:countr(?:y|ies)|states?|regions?|provinces?|count(?:y|ies))\b", re.IGNORECASE)
_AT_PLACE = re.compile(r"\b(?:in|for|at|to|from|near|en|para)[ \t]+$", re.IGNORECASE)  # what a place's name follows (`cut`)
_RUN = re.compile(r"[ \t]+(?:(?:de|da|do|dos|das|del|della|la|le|van|von|der|den|di|du|al|el|bin|ibn)[ \t]+)*([^\W\d_])")


def mid_name(text: str, v: str) -> bool:
    """`v` stops MID_LETTERS or more letters into a word of `text`, inside a name ("Padd" of "Paddington") or as many before another's
    end ("tables" of "tablespoons"), or is MID_LETTERS or more into an e-mail address of it ("lol" of "lolrar75@..."), and is nowhere
    a whole span of it: a name, a word or an address part way through being copied."""
    if len(v) < MID_LETTERS or not v[-1].isalnum():
        return False
    if any(a.startswith(v) and a != v for a in emails(text)):  # "lolrar75" of "lolrar75@...": whole, not done
        return True
    if span(text, v, whole=True):
        return False
    for i in found(text, v):
        end = i + len(v)
        if starts_word(text, i) and end < len(text) and text[end].isalnum():
            start, left = end, len(_ALNUM.findall(text, end, end + 64)[0])  # not a stem: "temperature" of "temperatures"
            while start > i and text[start - 1].isalnum():
                start -= 1
            if end - start >= MID_LETTERS and (text[start].isupper() or left >= MID_LETTERS):
                return True
    return False


_PLACE = re.compile(r"\b(?:in|for|at|to|from|near|en|para)[ \t]+([A-Z][\w'’.-]*"
                    r"(?:[ \t]+(?:(?:de|da|do|del|la|le|di|al|el)[ \t]+)?[A-Z][\w'’.-]*)*)")


def regions(text: str) -> list[tuple[int, int]]:
    """(start, end) of each place a request names after "in", "for" ... with its region after it and no more places ("Tel Aviv, Israel"
    of "Forecast for Tel Aviv, Israel, fahrenheit"; `_REGION`): a value is not cut inside it (issue 23: values are copied as written)."""
    out = []
    for m in _PLACE.finditer(text):
        if r := _REGION.match(text, m.end(1)):  # not a sentence's full stop ("Brazil."), an abbreviation's ("D.C.") yes
            out.append((m.start(1), r.end() - (text[r.end() - 1] == "." and text[r.end() - 2].islower())))
    return out


def inside(text: str, v: str, spans: list[tuple[int, int]]) -> bool:
    """`v` stands in `text` (from a word's start) only inside these spans, and each runs on past it: closed there, it cuts them."""
    at = [i for i in found(text, v) if starts_word(text, i)] if v.strip() and spans else []
    return bool(at) and all(any(a <= i and i + len(v) < b for a, b in spans) for i in at)


# a request's last clause: after a comma, semicolon, "?" or "!", or a full stop before a capital ("Smith & Co. completion" is one)
_LAST = re.compile(r"[,;?!]\s+|\.\s+(?=[A-Z])")
_NAMED = re.compile(r"(?:(?:with|and|use|using|as|put)\s+)?(?:(?:the|a|an|my)\s+)?([A-Za-z]+)\s+(\S(?:.*\S)?\s\S.*?)[\s.!]*$")
# a name a word gives ("an event named Board offsite prep for ..."), to the phrase's end: a student closed "Board" (session 44)
_GIVEN = re.compile(r"\b(?:named|titled|entitled|called|llamad[oa]|titulad[oa])[ \t]+([^\W\d_][^\n,.;:?!()\"']*?)(?=[ \t]*(?:[,.;:?!)]|\n|"
                    r"$)|[ \t]+(?:to|in|on|at|for|from|with|and|or|by|el|la|para|con|y|a|de|en)\b)", re.IGNORECASE)


def tail(text: str, name: str) -> list[tuple[int, int]]:
    """(start, end) of the words of several that the request's last clause holds after a word of the parameter `name` opening it
    (", reference Concert tickets Berlin" for `reference`), to the request's end as a label's (`labelled`); and each name given (_GIVEN)."""
    given, start = [m.span(1) for m in _GIVEN.finditer(text) if " " in m.group(1)], ([m.end() for m in _LAST.finditer(text)] or [0])[-1]
    m = _NAMED.match(text, start)
    if not m or not (m.group(2)[0].isupper() or m.group(2)[0].isdigit()):  # a value, not words about it ("Order number is K-58213")
        return given
    return given + ([m.span(2)] if (ws := words(m.group(1))) and ws <= words(name) else [])


def cut(text: str, v: str, quoted: list[tuple[int, int]], region: bool = True) -> bool:
    """`v`, ending in a capitalized word, stands whole in `text` only where a name runs on after it ("Salt Lake" of "Salt Lake City",
    "Rio" of "Rio de Janeiro"; after "in", "for" ..., "Tel Aviv" of "Tel Aviv, Israel, ...": `_REGION`; "C" of "C#", "Guardian Sword"
    of "Guardian Sword+": `_SUFFIX`), or stands in it only inside
    quotes (`quoted`: their spans) that run on ("Deposit – Flat 12" of 'Deposit – Flat 12, Leeds'): a value that ends there cuts it.
    Not `region`: the tool asks for the region apart, and "London" of "in London, UK" is whole."""
    if inside(text, v, quoted):
        return True
    if not v.strip() or not v.split()[-1][:1].isupper():
        return False
    out = False
    for i in found(text, v):
        end = i + len(v)
        out = out or starts_word(text, i) and text[end - 1].isalnum() and _SUFFIX.match(text, end) is not None  # "C" of "C#"
        if starts_word(text, i) and ends_word(text, end):
            if not ((m := _RUN.match(text, end)) and m.group(1).isupper() or region and _REGION.match(text, end)
                    and _AT_PLACE.search(text, 0, i)):
                return False  # somewhere it stands whole
            out = True
    return out


# what ends a phrase after a value: punctuation then a space or the end (not "john" of "john.smith@", "Macy" of "Macy's"), or a joining word
_PHRASE_END = re.compile(r"[ \t]*(?:[,.;:?!)\]'\"]+(?:\s|$)|\n|$|(?:to|in|on|at|for|from|with|and|or|by|via|into|next|"
                         r"this|starting|about|between|during|before|after|until|per|each|please|including|except|without|"
                         r"within|using|then|now|right now|today|tonight|tomorrow|yesterday|currently)\b)", re.IGNORECASE)


# a currency as people say it, by its ISO code: "37.25 quid" is GBP (a student wrote EUR of an Irish IBAN, session 44)
_CURRENCY = {c: re.compile(rf"\b{c}\b|{p}", re.IGNORECASE) for c, p in {
    "GBP": r"£|\b(?:quid|sterling|libras?)\b", "USD": r"\$|\b(?:bucks|dollars?|dólar(?:es)?)\b",
    "EUR": r"€|\beuros?\b", "JPY": r"¥|\byen\b", "CHF": r"\bfranco?s?\b", "INR": r"₹|\brupees?\b"}.items()}


def currency(text: str) -> str | None:
    """The one currency `text` names, by its code, sign or word ("quid", "€", "francs"), or None: none, or several."""
    named = [c for c, p in _CURRENCY.items() if p.search(text)]
    return named[0] if len(named) == 1 else None


def said_enums(text: str, enums: dict[str, dict[str, set[str]]]) -> dict[str, dict[str, set[str]]]:
    """Tool -> its parameters with those of their enum values (`enums`) that `text` says whole, in any case, "_" read as a space
    ("ticket_price": "ticket price"); not a short or letterless one ("in", "us", "all", "2": every request says those)."""
    low = text.lower()  # and with a plural s: "Mornings work best"
    said = lambda v: len(v.strip()) >= 4 and any(c.isalpha() for c in v) and any(  # noqa: E731
        span(low, v.lower().replace("_", " ") + s, True) for s in ("", "s"))
    return {n: {p: found for p, vs in es.items() if (found := set(filter(said, vs)))} for n, es in enums.items()}


def phrase_end(text: str, v: str) -> bool:
    """`v` stands whole in `text` somewhere a phrase ends after it ("New York" of "New York to Boston";
    not "king" of "king size bed", where the arguments going on would cut it)."""
    return bool(v.strip()) and any(starts_word(text, i) and ends_word(text, i + len(v)) and _PHRASE_END.match(text, i + len(v))
                                   for i in found(text, v))


_TAIL = re.compile(r"[ \t.?!]*(?:\n|$)")
_PROSE = re.compile(r"[ \t]+[a-z]")
CODE = 6


def ends_code(text: str, v: str) -> bool:
    """`v` holds a digit and stands whole in `text` where a message ends (nothing but ".?!" after it), or, with no space in it and
    CODE characters or more, where prose goes on (a lowercase word after it), and nowhere runs on into a longer span ("2023" of a form
    "2023-06-20"): a code the request ends on ("... order K-58213"), where small models, trained on requests that go on or end on a
    full stop, run a code on into junk ("K-582138213eded"), or that a sentence goes on after ("GB33BUKB20201555555555 for the house":
    a student wrote 5s to the token limit, session 42); or `v` is an e-mail address of `text` whole, which the sentence's full stop
    after it does not go on ("promo@win-big.biz.biz")."""
    if "@" in v and v in emails(text):
        return True
    at = [i for i in found(text, v) if starts_word(text, i)] if any(c.isdigit() for c in v) else []
    prose = len(v) >= CODE and not any(c.isspace() for c in v)
    return any(_TAIL.match(text, i + len(v)) or prose and _PROSE.match(text, i + len(v)) for i in at) and all(
        ends_word(text, i + len(v)) and (_TAIL.match(text, i + len(v)) or text[i + len(v)] in " \t,;?!") for i in at)


def unvalued(text: str) -> str:
    """`text` without the values it states (`values`): what it asks, not of what ("What time is Dune showing in Gothenburg?" -> "What
    time is showing in?"). A sentence embedding knows no film or town by name, and a name it does not know pulls a request away from
    the tool that answers it."""
    for v in sorted(values(text), key=len, reverse=True):
        text = re.sub(re.escape(v), " ", text, flags=re.IGNORECASE)
    return re.sub(r"\s+", " ", text).strip()


def param_words(schema: dict | None) -> dict[str, set[str]]:
    """Each top-level parameter's words: its name, description and enum values (or its list items')."""
    props = (schema or {}).get("properties") or {}
    values = enums(schema)
    return {p: words(" ".join([p.replace("_", " "), str(d.get("description") or ""), " ".join(values.get(p, ()))]))
            for p, d in props.items() if isinstance(d, dict)}


def enums(schema: dict | None) -> dict[str, set[str]]:
    """Each top-level parameter's enum values, or its list items' ("features": ["timings", "exhibitions"]), that no longer value
    begins with ("USD" beside "USDT" is not one: a value written so far as "USD" may go on)."""
    out = {}
    for p, d in ((schema or {}).get("properties") or {}).items():
        d = d.get("items") if isinstance(d, dict) and isinstance(d.get("items"), dict) and "enum" not in d else d
        values = {str(e) for e in d.get("enum") or ()} if isinstance(d, dict) and isinstance(d.get("enum"), list) else set()
        out[p] = {v for v in values if not any(o != v and o.startswith(v) for o in values)}
    return out


def words(text: str) -> set[str]:
    """Content words, lower-cased and crudely stemmed; camelCase and snake_case split."""
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text).lower()
    out = set()
    for w in _WORD.findall(text):
        if w in _STOP or len(w) < 2:
            continue
        for suffix in ("ing", "es", "s", "ed"):
            if w.endswith(suffix) and len(w) - len(suffix) >= 3:
                w = w[: -len(suffix)]
                break
        out.add(w)
    return out


_RAW = re.compile(r"[A-Za-z0-9]+")
_TOWARD = {"to": ("to", "into", "in"), "from": ("from",)}  # the words that tie a value to a `to_`/`from_` parameter (`slots`)
_CHUNK = re.compile(r"[^\s'\"`“”‘’]+")
_TITLED = re.compile(r"[A-Z][\w'’-]*(?:[ \t]+(?:(?:of|the|de|du|for|and|&)[ \t]+)*[A-Z][\w'’-]*)+")  # "Museum of Modern Art"


def slots(text: str, name: str, near: int = 3) -> set[int]:
    """Where `text` ties a value to the parameter `name`: the starts of its words that follow one of the name's words within `near`
    content words ("the launcher path '/usr/...'", "the session 'S1'") or whose run up to a space or quote holds one (`JDBC_session`,
    'shapeStatements' for `statements`); never a word that is only the name's own ("the unit" for `unit`) unless inside a name, whose
    start it is ("the Museum of Modern Art" for `museum_name`). A `to_`/`from_` one: the word after "to", "into" or "in" (letters
    only: "in 2.5 tablespoons") / "from" ("that to kilocalories": a student wrote "serving")."""
    want, toward, last = words(name), _TOWARD.get(next((w for w in re.split(r"[\W_]+", name.lower()) if w in _TOWARD), "")), ""
    out: set[int] = set()
    if not want:
        return out
    recent: list[set[str]] = []  # the content words before, nearest last
    chunks = {c.end(): c.start() for c in _CHUNK.finditer(text)}
    titled = [t.span() for t in _TITLED.finditer(text)]
    for m in _RAW.finditer(text):
        chunk, ws, last, word = _CHUNK.match(text, m.start()), words(m.group()), m.group().lower(), last
        if ws and ws <= want and (run := next((a for a, b in titled if a <= m.start() < b), None)) is not None:
            out.add(run)  # inside a name ("the Museum of Modern Art" for `museum_name`): the name, and no later word by it
            continue
        if ws and ws <= want:
            pass  # the parameter's own name said ("the unit", `brain_region`): a mention, not its value
        elif any(want & w for w in recent[-near:]) or (chunk and want & words(chunk.group())) or (
                toward and word in toward and ws and (word != "in" or m.group().isalpha())):
            out.add(m.start())
            if chunk and chunk.end() in chunks:  # '/usr/...': the value starts where its run does
                out.add(chunks[chunk.end()])
        if ws:
            recent.append(ws)
    return out


class Ranking(NamedTuple):
    """The offered tools as a request sees them: each tool's relevance (1 for the best), and `fit`, the best tool's cosine to the
    request (None: ranked by shared words, which say nothing absolute); and, where the request has several clauses, each clause's own
    values (`own_values`) with the tools' relevance to that clause alone, in order."""

    relevance: dict[str, float]
    fit: float | None = None
    parts: tuple[tuple[frozenset[str], dict[str, float]], ...] = ()


def by_words(request: str, tools: list) -> Ranking:
    return Ranking(relevance(request, tools))


def relevance(request: str, tools: list) -> dict[str, float]:
    """Each tool's share of the request's telling words (in its name and description): each word found weighs log(1 + N / tools
    holding it), the sum is scaled so the best tool has 1. All 0 when no tool holds any of the request's words."""
    asked = words(request)
    held = {t.name: words(t.name.replace(".", " ").replace("_", " ") + " " + (t.description or "")) & asked
            for t in tools}
    df = Counter(w for ws in held.values() for w in ws)
    score = {n: sum(math.log(1 + len(tools) / df[w]) for w in ws) for n, ws in held.items()}
    best = max(score.values(), default=0.0)
    return {n: (s / best if best > 0 else 0.0) for n, s in score.items()}
