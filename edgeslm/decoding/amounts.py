"""The numbers a request states, for the copy lean's `counting` (decoding/copying.py): each in the forms a call writes it as a JSON
number ("$12,400" 12400, "2k" 2000, "3,5" 3.5, "a dozen" 12, "-40" -40, a listed "a pear" 1), and whether a piece written after
a number's digits goes on toward one of them or closes it on one. Pure functions of text; no model."""

from __future__ import annotations

import re
from decimal import Decimal

# a number as a request may state it: "12,400", "2.5", "2k", "1.2 million", "3%", "3,5" (a decimal comma)
_AMOUNT = re.compile(r"(?<![\w.,])(\d+(?:[.,]\d+)*)(?:[ \t]?(k|thousand|million|mio|mn|bn|billion)\b|(%))?", re.I | re.ASCII)
# "1 520,07"; not a phone number's groups ("+1 555 123"), nor a count before a unit ("2 500ml")
_SPACED = re.compile(r"(?<![\w.,+])\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:[.,]\d{1,2})?(?![\w.,]?\d|[^\W\d]|[ \u00a0\u202f]\d)", re.ASCII)
_SCALE = {"k": 1000, "thousand": 1000, "million": 10**6, "mio": 10**6, "mn": 10**6, "bn": 10**9, "billion": 10**9}
_TENS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}
_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen"
_COUNT = {w: i for ws in (_ONES, "cero uno dos tres cuatro cinco seis siete ocho nueve diez") for i, w in enumerate(ws.split())} | _TENS | {
    f"{t}{sep}{_ONES.split()[i]}": n + i for t, n in _TENS.items() for i in range(1, 10) for sep in "- "} | {  # "seventy-five"; Spanish: a
    "una": 1, "doce": 12, "dozen": 12, "docena": 12, "a dozen": 12, "una docena": 12, "half a dozen": 6, "media docena": 6}  # tenth of
# the workload; not "once", nor a pronoun's or a compound's "one" ("the one on Main St", "which one", "a one-way fare")
_ONE = r"(?<!the )(?<!this )(?<!that )(?<!which )(?<!each )(?<!every )(?<!any )one(?!-(?:way|off|time|liner|sided)\b)"
_COUNTED = re.compile(r"\b(" + "|".join(_ONE if w == "one" else w for w in sorted(_COUNT, key=len, reverse=True)) + r")\b", re.I)
# "a"/"an" counts 1 as a list's item beside a counted one: "3 mangoes and a basil plant", "a pear, 12 limes"; not "a dozen"
_COUNTS = r"(?:\d+|" + "|".join(sorted(map(re.escape, _COUNT), key=len, reverse=True)) + r")"
_ARTICLE = r"(?<!once )(?<!twice )(?<!times )(?<!per )\ban?\s+(?!(?:dozen|half|few|couple|lot|bit|pair|little|bunch|total)\b)[^\W\d_]"
_JOIN = r"(?:\s*,\s*(?:and\s+)?|\s+(?:and|&|plus)\s+)"
_LISTED = re.compile(rf"\b{_COUNTS}\s+[^,.;:!?\d]{{1,40}}?{_JOIN}{_ARTICLE}|{_ARTICLE}[^,.;:!?\d]{{0,40}}?{_JOIN}{_COUNTS}\b", re.I)
_UNIT = re.compile(r"[ \t]+[^\W\d_]")  # a word after a number (its unit, "1,75 metros"): no list before it


def _plain(d: Decimal) -> str:
    return format(d.normalize(), "f") if d == d.to_integral_value() else format(d.normalize(), "f").rstrip("0")


def numbers(text: str) -> frozenset[str]:
    """The numbers a request states, each in the forms a call writes it as a JSON number: "$12,400" 12400, "€1.250,00" 1250,
    "1 520,07" 1520.07, "2k" 2000, "1.2 million" 1200000, "3,5" 3.5, "3%" 3 and 0.03, "a dozen" 12, "two" 2, "media docena" 6."""
    out: set[str] = set()
    for m in _AMOUNT.finditer(text):
        raw, scale, percent = m.group(1), (m.group(2) or "").lower(), m.group(3)
        i = m.start()  # a minus sign that opens a word: "-40 celsius" -40, not 40; not "3-4 days", "COVID-19"
        sign = "-" if i and text[i - 1] in "-−" and (i == 1 or text[i - 2] in " \t\n([:=") else ""
        forms: set[str] = set()
        if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", raw):
            raw = raw.replace(",", "")
        elif re.fullmatch(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?", raw):  # "1.250,00"; "1.250" may be 1.25 too
            forms |= {raw, _plain(Decimal(raw))} if raw.count(".") == 1 and "," not in raw else set()
            raw = raw.replace(".", "").replace(",", ".")
        elif re.fullmatch(r"\d+,\d{1,2}", raw):  # "3,5" or a list "45,60": both read; "1,75 metros" a quantity, one number
            forms |= set() if _UNIT.match(text, m.end()) else set(raw.split(","))
            raw = raw.replace(",", ".")
        if not re.fullmatch(r"\d+(?:\.\d+)?", raw) or len(raw) > 24:
            continue  # "12.05.2026", "1,2,3": no one number; nor a hash's run of digits
        d = Decimal(raw)
        # "£15.5k" is 15500 only: a scale after a currency sign is the amount's ("5k run" may be 5)
        forms |= set() if scale and i and text[i - 1] in "$£€¥₹" else ({raw} if not re.match(r"0\d", raw) else set()) | {_plain(d)}
        forms |= ({_plain(d * _SCALE[scale])} if scale else set()) | ({_plain(d / 100)} if percent else set())
        out |= {sign + f for f in forms}
    out |= {_plain(Decimal(re.sub(r"\s", "", m.group()).replace(",", "."))) for m in _SPACED.finditer(text)}
    out |= {str(_COUNT[w.lower()]) for w in _COUNTED.findall(text)}
    return frozenset(out | ({"1"} if _LISTED.search(text) else set()))


def stated(text: str) -> list[frozenset[str]]:
    """Each number the request states on its own, in the forms a call writes it (`numbers` of its words: "2k" {"2", "2000"}, "15%"
    {"15", "0.15"}); not a part of a date, a time or a range ("2024-05-12", "10:30", "3-4"), which a call writes as a string."""
    out = [f for m in _AMOUNT.finditer(text) if not any(text[i:i + 1] in ("-", "/", ":") and text[i + d:i + d + 1].isdigit() for i, d in (
        (m.start() - 1, -1), (m.end(), 1)) if i + d >= 0) and (f := numbers(m.group()))]
    return out + [f for m in [*_SPACED.finditer(text), *_COUNTED.finditer(text)] if (f := numbers(m.group()))] + (
        [frozenset({"1"})] if _LISTED.search(text) else [])


def counts(forms: frozenset[str], so_far: str, piece: str) -> bool:
    """`piece`, written after the digits `so_far` of a JSON number, goes on toward one of `forms`
    (`numbers`), or closes the number (",", "}" or "]" after what digits it adds) on one."""
    head = piece[:len(piece) - len(piece.lstrip("0123456789."))]
    rest, v = piece[len(head):], so_far + head
    if not rest:
        return bool(head) and any(f.startswith(v) for f in forms)
    return rest.lstrip(" \t\r\n")[:1] in (",", "}", "]") and v in forms


_UNIT_WORD = re.compile(r"[ \t]+(?:more[ \t]+|of[ \t]+)?([^\W\d_][\w-]*)")  # "three days", "4 inches", "5 more articles"


def units(text: str) -> list[tuple[frozenset[str], str]]:
    """Each number the request states in digits or words with the word after it, its unit ("next three days": ({"3"}, "days"), "4
    inches", "5 articles"), the number in the forms a call writes it (`numbers`)."""
    out = []
    for m in [*_AMOUNT.finditer(text), *_COUNTED.finditer(text)]:
        if (u := _UNIT_WORD.match(text, m.end())) and (forms := numbers(m.group())):
            out.append((forms, u.group(1).lower()))
    return out



# a unit a word before it qualifies ("nautical miles", "fluid ounces", "square meters", "sq in", "US gallons"; not "metric units",
# nor "UK in", "US today": a country qualifies only a unit of its own measures), or a rate
_COMPOUND = re.compile(r"\b(?:(?:nautical|fluid|fl\.?|square|sq\.?|cubic|cu\.?|metric|imperial|troy|statute)[ \t]+)+"
                       r"(?!(?:units?|system|measure\w*)\b)[^\W\d_]+|\b(?-i:US|UK)[ \t]+(?:(?:fluid|fl\.?|liquid|dry)[ \t]+)?(?:gallon|"
                       r"pint|quart|ton|ounce|oz|cup|tablespoon|teaspoon|bushel|gill|barrel|hundredweight|dollar|pound|cent)s?\b|"
                       r"\b[^\W\d_]+[ \t]+per[ \t]+(?:hour|second|minute|gallon|lit(?:er|re)|kilomet(?:er|re)|mile|met(?:er|re))s?\b",
                       re.IGNORECASE)  # and a rate: "kilometers per hour", "miles per gallon"


def compounds(text: str) -> list[tuple[int, int]]:
    """(start, end) of each compound unit the request names (_COMPOUND): a value that closes on its first word cuts it ("fluid")."""
    return [m.span() for m in _COMPOUND.finditer(text)]


def compound_of(text: str, piece: str, more: list[tuple[int, int]] | None = None) -> str | None:
    """The compound unit (or span of `more`, past its first word) a word of which `piece` begins, where every word of the request that
    `piece` begins is in one ("miles" of "how many nautical miles is 42 kilometers": "nautical miles"); else None. Small models drop the
    qualifier or the rate, and begin a label's value at a later word ("Tischlerei" of "Verwendungszweck: Rechnung 2027-044 Tischlerei
    Huber")."""
    p, words = piece.strip(), list(re.finditer(r"[^\W\d_]+", text))
    spans = [(a, b, a) for a, b in compounds(text)] + [(a, b, a + 1) for a, b in more or []]  # and where a word in it may begin
    # the words it begins: with its capital where any does ("T" of "Tischlerei", not "to"), else in any case ("Miles" of "miles")
    at = [m for m in words if p[:1].isupper() and m.group().startswith(p)] or [m for m in words if p and m.group().lower().startswith(
        p.lower())]
    ins = [next(((a, b) for a, b, first in spans if first <= m.start() and m.end() <= b), None) for m in at]
    return text[ins[0][0]:ins[0][1]] if at and ins[0] and None not in ins else None
