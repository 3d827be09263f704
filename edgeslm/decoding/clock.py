"""Times and dates as a request says them, in the forms a call writes them: "7:30 PM" 19:30, "half past seven in the
evening" 19:30, noon 12:00, "2nd of February 2027" 2027-02-02. For the request lean (said.typed, the copy lean's
source) and a student's parameter of clock times (asks.Kept). Pure functions of text."""

from __future__ import annotations

import re
from collections.abc import Iterable

# a clock time: "7:30 PM", "7.30pm", "9 p.m.", "17:45", "14:30:00" (not "9:15" of a longer run of digits)
CLOCK = re.compile(r"(?<![\w:.])(\d{1,2})(?:[:.]([0-5]\d))?\s*([ap])\.?m\b\.?|"
                   r"(?<![\w:.])([01]?\d|2[0-3]):([0-5]\d)(?::[0-5]\d)?(?![\w:])", re.IGNORECASE)
_HOURS = "one two three four five six seven eight nine ten eleven twelve".split()
# a time in words: "half past seven", "a quarter to eleven at night", "seven o'clock", "7 in the evening" (an hour alone, with
# neither a part of the hour, "o'clock" nor a part of the day, is no time: "five bananas")
SAID = re.compile(r"\b(?:(half|(?:a\s+)?quarter)\s+(past|to)\s+)?(" + "|".join(_HOURS) + r"|1[0-2]|[1-9])(\s+o['’]?clock)?"
                  r"(?:\s+(?:(in\s+the\s+morning)|(in\s+the\s+afternoon|in\s+the\s+evening|at\s+night|tonight)))?\b", re.IGNORECASE)
# not a capitalized one before another capitalized word: a name ("Midnight Mass prep")
_NOON = re.compile(r"\b(?:noon|midday|midnight|NOON|MIDDAY|MIDNIGHT)\b|\b(?:Noon|Midday|Midnight)\b(?![ \t]+[A-Z])")
_MONTHS = "january february march april may june july august september october november december".split()
_MONTH = (r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?"
          r"|nov(?:ember)?|dec(?:ember)?)(?![a-z])")  # a day may follow without a space: "June01 2023"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_MESES = "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre".split()
# "2nd of February 2027", "Feb 2, 2027"; in Spanish, a tenth of the conversion workload's requests: "2 de septiembre de 2027";
# in digits, "30.04.2027" and "18/10/2027" day first, "10/18/2027" month first, "03/04/2027" either
DATES = re.compile(rf"\b{_DAY}(?:\s+of)?\s+{_MONTH}\.?(?:,\s*|\s+)(\d{{4}})\b|\b{_MONTH}\.?\s*{_DAY}(?:,\s*|\s+)(\d{{4}})\b"
                   rf"|\b(\d{{1,2}})\s+de\s+({'|'.join(_MESES)}|setiembre)\s+(?:de|del)\s+(\d{{4}})\b"
                   r"|(?<![\d./])(\d{1,2})(?P<sep>[./])(\d{1,2})(?P=sep)(\d{4})(?![\d/]|\.\d)", re.IGNORECASE | re.ASCII)


def _held(h24: int, mi: int) -> set[str]:
    return {f"{h24}:{mi:02d}", f"{h24:02d}:{mi:02d}"}


def times(text: str) -> list[frozenset[str]]:
    """The clock times `text` states, each as the forms a call may rightly hold it in, lower-cased: in 24 hours ("7:30 PM":
    19:30; "7:30 am": 7:30, 07:30) or in 12 as written ("7:30 pm", "7:30pm"); a time in words in 24 hours, both halves of
    the day where it names neither ("half past seven": 7:30 and 19:30), and as written."""
    out = []
    for m in CLOCK.finditer(text):
        if m.group(3):
            h, mi, half = int(m.group(1)), int(m.group(2) or 0), m.group(3).lower()
            if not 1 <= h <= 12:
                continue
            h24 = h % 12 + (12 if half == "p" else 0)
        else:
            h24, mi = int(m.group(4)), int(m.group(5))
            h, half = (h24 + 11) % 12 + 1, "a" if h24 < 12 else "p"
        twelve = {f"{h}:{mi:02d}{sp}{half}m" for sp in ("", " ")} | ({f"{h}{sp}{half}m" for sp in ("", " ")} if not mi else set())
        out.append(frozenset(_held(h24, mi) | twelve))
    for m in SAID.finditer(text):
        part, way, hour, oclock, morning, later = m.groups()
        if not (part or oclock or morning or later):
            continue
        h = _HOURS.index(hour.lower()) + 1 if hour.isalpha() else int(hour)
        mi = 0 if not part else 30 if part.lower() == "half" else 15 if way.lower() == "past" else 45
        h = h - 1 if way and way.lower() == "to" else h
        halves = [0] if morning else [12] if later else [0, 12]
        out.append(frozenset({m.group().lower()}.union(*(_held(h % 12 + d, mi) for d in halves))))
    out += [frozenset({w.lower(), "00:00" if w.lower() == "midnight" else "12:00"}) for w in _NOON.findall(text)]
    return list(dict.fromkeys(out))


# the layout a date parameter's description states: "in the format mm-dd-yyyy", "YYYY-MM-DD", "dd/mm/yyyy"
LAYOUT = re.compile(r"\b(yyyy|mm|dd)([-/.])(yyyy|mm|dd)\2(yyyy|mm|dd)\b|\b(yyyy|mm)([-/.])(yyyy|mm)\b", re.IGNORECASE)
# a month of a year, not a day of it: "April 2022", "Apr. 2022", "in March, 2027" (not "2 April 2022", nor "April 2, 2022")
MONTHS = re.compile(rf"(?<!\d)(?<!\d )(?<!\d of )\b{_MONTH}\.?,?\s+(\d{{4}})\b", re.IGNORECASE | re.ASCII)


def layout(schema: dict | None) -> str | None:
    """The layout a parameter asks its dates in: the one its description states ("in yyyy-mm-dd format", "MM/DD/YYYY"),
    yyyy-mm-dd where its JSON schema's format is "date"; None for any other parameter."""
    if not isinstance(schema, dict):
        return None
    m = LAYOUT.search(str(schema.get("description") or ""))
    if m and m.group(1) and sorted(p.lower() for p in m.group(1, 3, 4)) == ["dd", "mm", "yyyy"]:
        return m.group(2).join(p.lower() for p in m.group(1, 3, 4))
    if m and m.group(5) and sorted(p.lower() for p in m.group(5, 7)) == ["mm", "yyyy"]:  # a month: "in 'mm-yyyy' format"
        return m.group(6).join(p.lower() for p in m.group(5, 7))
    return "yyyy-mm-dd" if schema.get("format") == "date" else None


def days(text: str) -> list[tuple[int, int, int]]:
    """The dates `text` states in words or digits (DATES), as (year, month, day); both readings of "03/04/2027"."""
    out = []
    for m in DATES.finditer(text):
        if m.group(10):
            a, b, y = int(m.group(10)), int(m.group(12)), int(m.group(13))
            pairs = [(a, b)] if m.group("sep") == "." or a > 12 else [(b, a)] if b > 12 else [(a, b), (b, a)]  # (day, month)
            out += [(y, mo, d) for d, mo in pairs if 1 <= mo <= 12 and 1 <= d <= 31]
            continue
        day, month, year = m.group(1, 2, 3) if m.group(1) else m.group(7, 8, 9) if m.group(7) else m.group(5, 4, 6)
        names = _MESES if m.group(7) else _MONTHS
        number = next((i for i, name in enumerate(names, 1) if name.startswith(month.lower()[:3].replace("set", "sep"))), 0)
        if number and 1 <= int(day) <= 31:
            out.append((int(year), number, int(day)))
    return list(dict.fromkeys(out))


def months(text: str) -> list[tuple[int, int, int]]:
    """The months of a year `text` states with no day ("April 2022"), as (year, month, 0), for a parameter asking a month's layout."""
    out, inside = [], [d.span() for d in DATES.finditer(text)]
    for m in MONTHS.finditer(text):
        number = next((i for i, name in enumerate(_MONTHS, 1) if name.startswith(m.group(1).lower()[:3])), 0)
        if number and not any(a <= m.start() < b for a, b in inside):
            out.append((int(m.group(2)), number, 0))
    return list(dict.fromkeys(out))


def dates(text: str, layout: str) -> list[tuple[int, int, int]]:
    """The dates `text` states that `layout` writes: its days, and for a month's layout (no "dd") its months too."""
    return days(text) + (months(text) if "dd" not in layout else [])


def written(date: tuple[int, int, int], layout: str = "yyyy-mm-dd") -> str:
    """A date in a layout: (2027, 2, 2) "2027-02-02", "02/02/2027" in mm/dd/yyyy."""
    y, mo, d = date
    return layout.replace("yyyy", f"{y:04d}").replace("mm", f"{mo:02d}").replace("dd", f"{d:02d}")


def forms(text: str, layouts: Iterable[str] = ()) -> list[str]:
    """The forms a call writes the request's times and dates in that the request does not hold as written: "7:30 PM" 19:30, noon
    12:00, "2nd of February 2027" and "Feb 2, 2027" 2027-02-02, and in each of `layouts` ("02-02-2027" in mm-dd-yyyy). A copy lean
    copies them as it copies the request's own words."""
    out = [f for held_as in times(text) for f in sorted(held_as) if re.fullmatch(r"\d{1,2}:\d\d", f)]
    out += [written(d, lay) for lay in dict.fromkeys(["yyyy-mm-dd", *layouts]) for d in dates(text, lay)]
    low = text.lower()
    return [f for f in dict.fromkeys(out) if f not in low]


def dated(text: str, values: list[str]) -> list[str]:
    """`values` (said.values: lower-cased) with those inside a date the request words ("December" and "24" of "24th of December
    2026") replaced by the date in the form a call writes it (2026-12-24): written so, the date is used whole."""
    spans = [(m.span(), iso) for m in DATES.finditer(text) if (iso := next(iter(forms(m.group())), None))]
    inside = {v for v in values for (a, b), _ in spans if re.search(rf"(?<!\w){re.escape(v)}(?!\w)", text[a:b].lower())}
    return list(dict.fromkeys([v for v in values if v not in inside] + [iso for _, iso in spans]))
