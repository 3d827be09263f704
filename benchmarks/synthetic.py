"""Synthetic personal data for tests and the demo workload: values that pass the same checks real ones
do (Luhn, IBAN mod-97, SSA rules), in the formats people write them, plus look-alikes that are not
personal data (dates, times, versions, amounts, order numbers). Seeded, so every run is the same."""

from __future__ import annotations

import json
import random
import re
import string
from pathlib import Path

from edgeslm.surrogates import FIRST, LAST


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    for check in string.digits:
        digits = body + check
        total = 0
        for i, ch in enumerate(reversed(digits)):
            d = int(ch)
            if i % 2:
                d = d * 2 - 9 if d > 4 else d * 2
            total += d
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


def card(rng: random.Random) -> str:
    digits = _luhn_complete(rng.choice(["4", "51", "55", "37", "6011"]), rng.choice([16, 16, 15]), rng)
    sep = rng.choice(["", " ", "-"])
    return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))


def iban(rng: random.Random) -> str:
    country, length = rng.choice([("DE", 22), ("GB", 22), ("FR", 27), ("NL", 18), ("ES", 24)])
    bban = "".join(rng.choice(string.digits if country != "NL" or i > 3 else string.ascii_uppercase)
                   for i in range(length - 4))
    n = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    raw = f"{country}{98 - n % 97:02d}{bban}"
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4)) if rng.random() < 0.5 else raw


def ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def email(rng: random.Random) -> str:
    user = rng.choice(["jane.doe", "j.smith", "ops-team", "maria_k", "li.wei+work", "a.b.c"])
    return f"{user}{rng.randint(1, 99)}@{rng.choice(['example.com', 'mail.co.uk', 'corp.example.org', 'uni.edu'])}"


def phone(rng: random.Random) -> str:
    return rng.choice([
        f"+1 {rng.randint(200, 999)}-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
        f"+44 20 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
        f"+33 6 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
        f"({rng.randint(200, 999)}) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
        f"{rng.randint(200, 999)}-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
        f"+49 30 {rng.randint(100000, 999999)}",
    ])


def ip(rng: random.Random) -> str:
    if rng.random() < 0.8:
        return ".".join(str(rng.randint(1, 254)) for _ in range(4))
    return f"2001:db8:{rng.randint(1, 0xffff):x}::{rng.randint(1, 0xffff):x}"


def api_key(rng: random.Random) -> str:
    alnum = string.ascii_letters + string.digits
    return rng.choice([
        "sk-proj-" + "".join(rng.choice(alnum) for _ in range(40)),
        "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
        "ghp_" + "".join(rng.choice(alnum) for _ in range(36)),
        "xoxb-" + "-".join("".join(rng.choice(string.digits) for _ in range(12)) for _ in range(2)),
    ])


def url_with_credentials(rng: random.Random) -> str:
    return (f"{rng.choice(['postgres', 'https', 'redis', 'ftp'])}://{rng.choice(['admin', 'svc', 'root'])}:"
            f"{''.join(rng.choice(string.ascii_letters + string.digits) for _ in range(12))}@"
            f"{rng.choice(['db.internal', 'cache.example.com', '10.0.0.5'])}:{rng.randint(1000, 9999)}/app")


def address(rng: random.Random) -> str:
    return (f"{rng.randint(1, 9999)} {rng.choice(['Oak', 'Maple', 'Sunset', 'Lake Shore', 'Pine Hill'])} "
            f"{rng.choice(['Street', 'Avenue', 'Road', 'Boulevard', 'Lane', 'Drive'])}")


GENERATORS = {"CREDIT_CARD": card, "IBAN": iban, "SSN": ssn, "EMAIL": email, "PHONE": phone, "IP_ADDRESS": ip,
              "API_KEY": api_key, "URL_CREDENTIALS": url_with_credentials, "STREET_ADDRESS": address}


def look_alike(rng: random.Random) -> str:
    """Text with numbers that are not personal data."""
    return rng.choice([
        f"on 2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} at {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
        f"version {rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}",
        f"order #{rng.randint(10000, 99999999)}", f"{rng.randint(2, 30)} days", f"${rng.randint(1, 9999)}.{rng.randint(0, 99):02d}",
        f"{rng.randint(1, 500)} km", f"{rng.randint(-40, 45)} degrees", f"room {rng.randint(100, 999)}",
        f"lat {rng.uniform(-90, 90):.4f}, lon {rng.uniform(-180, 180):.4f}", f"{rng.randint(1, 12)} kg",
    ])


def sentence(kind: str, value: str, rng: random.Random) -> str:
    lead = {"CREDIT_CARD": "charge the card", "IBAN": "wire it to", "SSN": "my SSN is", "EMAIL": "email",
            "PHONE": "call me at", "IP_ADDRESS": "the server is", "API_KEY": "use the key", "STREET_ADDRESS": "ship to",
            "URL_CREDENTIALS": "connect with"}[kind]
    return f"Please {lead} {value} {look_alike(rng)}."


# ---- a synthetic agent workload: 4 recurring task types, their tools, varied phrasings, injected PII ----

def _tool(name: str, description: str, props: dict, required: list[str]) -> dict:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": props, "required": required}}}


TOOLS = {
    "weather": _tool("get_weather", "Current weather and forecast for a city", {
        "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7}}, ["city"]),
    "calendar": _tool("create_event", "Create a calendar event", {
        "title": {"type": "string"}, "date": {"type": "string"}, "time": {"type": "string"},
        "attendee": {"type": "string"}}, ["title", "date"]),
    "email": _tool("triage_email", "File an incoming e-mail", {
        "sender": {"type": "string"}, "priority": {"type": "string", "enum": ["low", "normal", "high"]},
        "folder": {"type": "string", "enum": ["inbox", "billing", "support", "spam"]}}, ["sender", "priority", "folder"]),
    "units": _tool("convert_units", "Convert a quantity between units", {
        "value": {"type": "number"}, "from_unit": {"type": "string"}, "to_unit": {"type": "string"}},
        ["value", "from_unit", "to_unit"]),
}
SYSTEM = "You are a helpful assistant. Use the tools when they fit the request."
# Open value lists: a few real names, and names composed from parts, so a student learns to copy the
# user's value rather than pick one it has seen (hand-written benchmark calls use other values again).
CITIES = ["Paris", "Lima", "Oslo", "Cairo", "Tokyo", "Quito", "Perth", "Dakar", "Hanoi", "Bern", "Riga", "Accra",
          "Ulaanbaatar", "Valparaíso", "Santa Cruz", "Las Palmas", "St. Gallen", "Den Haag", "Addis Ababa"]
_SYL = ["va", "lo", "mer", "ka", "tin", "dra", "bel", "os", "ri", "zan", "pol", "u", "ten", "gar", "ni", "sho"]
_PRE = ["Port", "San", "New", "Lake", "Fort", "Mount", "Bad", "Villa"]


def city(rng) -> str:
    if rng.random() < 0.35:
        return rng.choice(CITIES)
    name = "".join(rng.choice(_SYL) for _ in range(rng.randint(2, 3))).capitalize()
    return f"{rng.choice(_PRE)} {name}" if rng.random() < 0.3 else name


_ADJ = ["Weekly", "Quarterly", "Morning", "Team", "Client", "Budget", "Design", "Board", "Family", "Final", "Sales"]
_NOUN = ["sync", "review", "call", "workshop", "dinner", "check-in", "retro", "demo", "planning", "interview",
         "lesson", "appointment", "run", "briefing"]
# person names: those of the names detector's evaluation file, which its training leaves out
# (benchmarks/names_gemma.py), so S2 is judged on names no list of ours holds: nor the fakes' lists
# (a fake "Emre" put in for a false positive would count an injected "Emre" as left in the store)
PEOPLE = sorted({n for line in (Path(__file__).parent / "data" / "names_eval.jsonl").read_text().splitlines()
                 for n in json.loads(line)["names"]
                 if not {w.lower() for w in re.findall(r"[^\W\d_]+", n)} & {w.lower() for w in FIRST + LAST}})


def person(rng) -> str:
    return rng.choice(PEOPLE)


def title(rng) -> tuple[str, str | None]:
    """An event's title, and the person it names (None where it names none)."""
    who = person(rng)
    return rng.choice([(f"{rng.choice(_ADJ)} {rng.choice(_NOUN)}", None), (f"{rng.choice(_NOUN).capitalize()} with {who}", who),
                       (f"{rng.choice(_ADJ)} {rng.choice(_NOUN)} with {who}", who),
                       (rng.choice(_NOUN).capitalize(), None), (f"{who}'s {rng.choice(_NOUN)}", who)])


UNIT_GROUPS = [["millimeters", "centimeters", "inches", "feet", "yards", "meters", "km", "miles"],
               ["grams", "ounces", "pounds", "kg", "stones", "tons"],
               ["ml", "cups", "liters", "gallons", "pints", "teaspoons"], ["celsius", "fahrenheit", "kelvin"],
               ["mph", "km/h", "knots", "m/s"], ["seconds", "minutes", "hours", "days", "weeks"],
               ["acres", "hectares", "square feet", "square meters"], ["bytes", "kilobytes", "megabytes", "gigabytes"]]
UNITS = [(a, b) for g in UNIT_GROUPS for a in g for b in g if a != b]


def _extra(rng, kinds: list[str], lead: dict[str, str]) -> tuple[str, list[tuple[str, str]]]:
    """Half the time, one sentence carrying a personal value of one of `kinds`."""
    if rng.random() < 0.5:
        return "", []
    kind = rng.choice(kinds)
    value = person(rng) if kind == "PERSON_NAME" else GENERATORS[kind](rng)
    return f" {lead[kind]} {value}.", [(kind, value)]


def _weather(rng):
    c, unit, days = city(rng), rng.choice(["celsius", "fahrenheit", None]), rng.choice([None, rng.randint(1, 7)])
    extra, pii = _extra(rng, ["STREET_ADDRESS", "IP_ADDRESS", "PERSON_NAME"], {"STREET_ADDRESS": "I live at",
                                                                                "IP_ADDRESS": "My IP is", "PERSON_NAME": "This is"})
    u = f" in {unit}" if unit else ""
    if days:
        text = rng.choice([
            f"What's the weather in {c} for the next {days} days{u}?", f"Give me a {days}-day forecast for {c}{u}",
            f"Will it rain in {c}? I need {days} days{u}.", f"{c} weather, {days} days{u}",
            f"I'm flying to {c} tomorrow, what should I pack? Forecast for {days} days{u}.",
            f"forecast {c} next {days} days{u} pls", f"How will the weather be in {c} over the coming {days} days{u}?",
            f"Planning a trip to {c}: show me {days} days of weather{u}.",
        ])
    else:
        text = rng.choice([
            f"What's the weather in {c} right now{u}?", f"Weather in {c} today{u}?",
            f"How's the weather in {c}{u}?", f"current conditions in {c}{u}", f"Do I need an umbrella in {c} today?",
            f"Tell me the weather for {c}{u}.",
        ])
        if "umbrella" in text:
            unit = None
    args = {"city": c, **({"unit": unit} if unit else {}), **({"days": days} if days else {})}
    return text + extra, args, pii


def time_forms(rng) -> tuple[str, str]:
    """(a time of day as people write it, the same time as HH:MM, 24-hour)."""
    h, m = rng.randint(7, 20), rng.choice([0, 15, 30, 45])
    h12, half = (h - 1) % 12 + 1, "am" if h < 12 else "pm"
    said = [f"{h:02d}:{m:02d}", f"{h12}:{m:02d}{half}", f"{h12}:{m:02d} {half.upper()}"]
    if not m:
        said += [f"{h12}{half}", "noon" if h == 12 else f"{h12} in the {'morning' if h < 12 else 'afternoon' if h < 18 else 'evening'}"]
    return rng.choice(said), f"{h:02d}:{m:02d}"


def _calendar(rng):
    # the teacher writes the date and time as YYYY-MM-DD and HH:MM whatever form the user gave them in
    (t, named), (date, iso) = title(rng), date_forms(rng)
    said, time = time_forms(rng)
    who = email(rng) if rng.random() < 0.6 else None
    if rng.random() < 0.3:
        time = None
    at, w = (f" at {said}" if time else ""), (f" with {who}" if who else "")
    extra, pii = _extra(rng, ["PHONE"], {"PHONE": "Dial-in:"})
    text = rng.choice([
        f"Schedule '{t}' on {date}{at}" + (f" and invite {who}" if who else ""),
        f"Put {t} in my calendar for {date}{at}" + (f", attendee {who}" if who else ""),
        f"Can you book a meeting called {t} on {date}{at}{w}?", f"New event: {t}, {date}{at}.{' Add ' + who + '.' if who else ''}",
        f"Add \"{t}\" to my calendar on {date}{at}{w}.", f"I have {t} on {date}{at}{w}, please create the event",
        f"calendar: {t} / {date}{at}{w}",
    ]) + extra
    args = {"title": t, "date": iso, **({"time": time} if time else {}), **({"attendee": who} if who else {})}
    return text, args, ([("EMAIL", who)] if who else []) + ([("PERSON_NAME", named)] if named else []) + pii


EMAIL_KINDS = [("invoice", "normal", "billing"), ("refund request", "high", "support"),
               ("prize notification", "low", "spam"), ("outage report", "high", "support"),
               ("newsletter", "low", "inbox"), ("payment reminder", "normal", "billing"),
               ("receipt", "normal", "billing"), ("urgent complaint about a broken order", "high", "support"),
               ("you-won-a-cruise message", "low", "spam"), ("team lunch invitation", "normal", "inbox"),
               ("overdue bill", "high", "billing"), ("product announcement", "low", "inbox")]


def _email(rng):
    sender = email(rng)
    kind, priority, folder = rng.choice(EMAIL_KINDS)
    extra, pii = _extra(rng, ["PHONE", "CREDIT_CARD", "IBAN", "SSN", "PERSON_NAME"], {
        "PHONE": "They left their number", "CREDIT_CARD": "It mentions card", "IBAN": "It asks to pay",
        "SSN": "It quotes the SSN", "PERSON_NAME": "It is signed"})
    text = rng.choice([
        f"New mail from {sender}: an {kind}. File it.{extra}", f"Triage this e-mail from {sender} about a {kind}.{extra}",
        f"I got a {kind} from {sender}, where should it go?{extra}", f"Sort the message from {sender} ({kind}).{extra}",
        f"{sender} sent me a {kind}. Please file it.{extra}", f"file the {kind} that came in from {sender}{extra}",
        f"Inbox item from {sender} - it's a {kind}. Handle it.{extra}",
    ])
    return text, {"sender": sender, "priority": priority, "folder": folder}, [("EMAIL", sender), *pii]


def _units(rng):
    (a, b), value = rng.choice(UNITS), rng.choice([rng.randint(1, 500), round(rng.uniform(0.5, 100), 1)])
    extra, pii = _extra(rng, ["API_KEY", "URL_CREDENTIALS", "PERSON_NAME"], {"API_KEY": "Use the key",
                                                                              "URL_CREDENTIALS": "The data is at",
                                                                              "PERSON_NAME": "Asking for"})
    text = rng.choice([
        f"Convert {value} {a} to {b}", f"How many {b} is {value} {a}?", f"{value} {a} in {b}?",
        f"I need {value} {a} expressed in {b}, thanks", f"what is {value} {a} in {b}",
        f"Please turn {value} {a} into {b}.", f"{value} {a} -> {b}", f"Could you convert {value} {a} into {b} for me?",
    ]) + extra
    return text, {"value": value, "from_unit": a, "to_unit": b}, pii


# ---- four more task types: amounts with currencies, addresses and dates in several forms, values
# outside ASCII, several calls per request, and a tool result the answer has to use ----

CURRENCIES = {"EUR": ["€{a}", "{a} €", "{a} EUR", "{a} euros", "EUR {a}", "{a} eur"],
              "USD": ["${a}", "{a} USD", "{a} dollars", "US$ {a}", "{a} usd"],
              "GBP": ["£{a}", "{a} GBP", "{a} pounds", "GBP {a}"], "CHF": ["CHF {a}", "{a} Swiss francs", "{a} francs", "{a} CHF"],
              "PLN": ["{a} zł", "{a} PLN", "{a} złoty", "PLN {a}"], "JPY": ["¥{a}", "{a} yen", "{a} JPY", "JPY {a}"]}
_REF = ["Rent", "Invoice", "Deposit", "Gift", "Miete", "Loyer", "Faktura", "Order", "Dues", "Refund"]
_REF_TAIL = ["März", "June", "flat 3B", "for {p}", "#{n}", "{n}", "Q{q} {y}", "Kraków trip", "Ørsted", "nº {n}"]
# how the reference is said: the teacher's call holds it as written between the quotes (or after the colon)
_REF_SAID = [" with reference '{r}'", ", reference: {r}", " with the note '{r}'", ", ref '{r}'", " (reference \"{r}\")"]


def draw_amount(rng) -> int | float:
    """A transfer's amount: whole, with cents, or round thousands."""
    return rng.choice([rng.randint(5, 5000), round(rng.uniform(1, 2000), 2), rng.randint(1, 150) * 1000])


def amount_forms(amount: int | float, rng) -> str:
    """An amount as people write it (the teacher's call holds the number): 1200, 1,200, 1.200, 1 200,
    1,200.50, 1.200,50, 89,90, 3k."""
    if isinstance(amount, int) and amount >= 1000 and amount % 1000 == 0 and rng.random() < 0.25:
        return f"{amount // 1000}k"
    sep, dec = rng.choice([("", "."), (",", "."), (".", ","), (" ", ",")])
    whole = f"{int(amount):,}".replace(",", sep)
    if isinstance(amount, int):
        return whole + (f"{dec}00" if rng.random() < 0.2 else "")
    return f"{whole}{dec}{round(amount * 100) % 100:02d}"


def _transfer(rng):
    acct, code = iban(rng), rng.choice(list(CURRENCIES))
    amount = draw_amount(rng)
    shown = rng.choice(CURRENCIES[code]).format(a=amount_forms(amount, rng))
    ref, named = None, []
    if rng.random() < 0.6:
        form, who = rng.choice(_REF_TAIL), person(rng)
        tail = form.format(n=rng.randint(100, 99999), q=rng.randint(1, 4), y=rng.randint(2025, 2027), p=who)
        ref, named = f"{rng.choice(_REF)} {tail}", [("PERSON_NAME", who)] if "{p}" in form else []
    r = rng.choice(_REF_SAID).format(r=ref) if ref else ""
    text = rng.choice([
        f"Send {shown} to {acct}{r}.", f"Please transfer {shown} to IBAN {acct}{r}", f"pay {shown} into {acct}{r}",
        f"Wire {shown} to account {acct}{r}, thanks.", f"I owe {shown}. The IBAN is {acct}{r}. Send it please.",
        f"Transfer to {acct}: {shown}{r}",
    ])
    args = {"iban": acct, "amount": amount, "currency": code, **({"reference": ref} if ref else {})}
    return text, args, [("IBAN", acct), *named]


STREETS = [("{n} Rue de la Paix", "Paris"), ("Königstraße {n}", "Stuttgart"), ("Calle Mayor {n}", "Madrid"),
           ("ul. Długa {n}", "Gdańsk"), ("Via Roma {n}", "Torino"), ("Östra Hamngatan {n}", "Göteborg"),
           ("Rua Augusta {n}", "Lisboa"), ("{n} Sunset Boulevard", "Los Angeles"), ("Hauptstraße {n}", "Zürich"),
           ("{n} Avenue des Champs-Élysées", "Paris"), ("Gran Vía {n}", "Bilbao"), ("Nørregade {n}", "København")]
_STREET_SYL = ["Linden", "Birken", "Rosen", "Mühlen", "Kirch", "Schul", "Berg", "Bahnhof", "Wald", "Garten"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


def _street(rng) -> str:
    n = rng.randint(1, 180)
    if rng.random() < 0.5:
        street, town = rng.choice(STREETS)
        return f"{street.format(n=n)}, {town}"
    return f"{rng.choice(_STREET_SYL)}{rng.choice(['straße', 'weg', 'gasse'])} {n}, {city(rng)}"


def date_forms(rng) -> tuple[str, str]:
    """(a date as people write it, the same date as YYYY-MM-DD)."""
    y, m, d = rng.randint(2026, 2027), rng.randint(1, 12), rng.randint(1, 28)
    iso = f"{y}-{m:02d}-{d:02d}"
    th = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd"}.get(d, "th")
    return rng.choice([iso, f"{MONTHS[m - 1]} {d}, {y}", f"{d} {MONTHS[m - 1]} {y}", f"{d} {MONTHS[m - 1][:3]} {y}",
                       f"{d:02d}.{m:02d}.{y}", f"{MONTHS[m - 1]} {d}{th} {y}", f"the {d}{th} of {MONTHS[m - 1]} {y}"]), iso


def _delivery(rng):
    where, (said, iso) = _street(rng), date_forms(rng)
    window = rng.choice(["morning", "afternoon", "evening", None])
    w = {"morning": " in the morning", "afternoon": " in the afternoon", "evening": " in the evening", None: ""}[window]
    text = rng.choice([
        f"Book a delivery to {where} on {said}{w}.", f"Can the parcel come to {where} on {said}{w}?",
        f"schedule delivery: {where}, {said}{w}", f"I'd like my package delivered at {where} on {said}{w}, please.",
        f"Deliver to {where}, {said}{w}.", f"Please arrange the delivery for {said}{w} at {where}.",
    ])
    return text, {"address": where, "date": iso, **({"window": window} if window else {})}, []


PRODUCTS = ["crème fraîche", "jalapeños", "olive oil", "rice", "oat milk", "Gruyère", "croissants", "AA batteries",
            "paper towels", "espresso beans", "phở noodles", "tortillas", "Brötchen", "green tea", "dish soap",
            "pierogi", "açaí bowls", "kimchi", "sourdough bread", "Manchego"]
_PRODUCT_ADJ = ["organic", "low-fat", "gluten-free", "extra large", "frozen", "smoked", "unsalted", "fresh"]
_WORDS = {1: "a", 2: "two", 3: "three", 4: "four", 6: "half a dozen", 12: "a dozen"}


def _cart(rng):
    items = []
    while len(items) < rng.choice([2, 2, 3]):
        item = rng.choice(PRODUCTS)
        item = f"{rng.choice(_PRODUCT_ADJ)} {item}" if rng.random() < 0.4 else item
        if item not in [i for i, _ in items]:
            items.append((item, rng.choice([1, 2, 3, 4, 5, 6, 10, 12])))
    said = [f"{_WORDS[q] if q in _WORDS and rng.random() < 0.5 else q} {i}" for i, q in items]
    listed = ", ".join(said[:-1]) + f" and {said[-1]}"
    text = rng.choice([f"Add {listed} to my cart.", f"Put {listed} in the basket please",
                       f"I need {listed}. Add them to the cart.", f"cart: {listed}", f"Could you add {listed} to my order?"])
    return text, [{"item": i, "quantity": q} for i, q in items], []


# the cart's Spanish requests: (one, several, gender), the item as the request writes it for its quantity
PRODUCTOS = [("paquete de arroz", "paquetes de arroz", "m"), ("botella de aceite de oliva", "botellas de aceite de oliva", "f"),
             ("cartón de leche de avena", "cartones de leche de avena", "m"), ("barra de pan", "barras de pan", "f"),
             ("bolsa de café en grano", "bolsas de café en grano", "f"), ("yogur natural", "yogures naturales", "m"),
             ("queso manchego", "quesos manchegos", "m"), ("lata de atún", "latas de atún", "f"),
             ("caja de galletas", "cajas de galletas", "f"), ("tarro de miel", "tarros de miel", "m"),
             ("jabón para platos", "jabones para platos", "m"), ("tortilla de maíz", "tortillas de maíz", "f")]
_PALABRAS = {2: "dos", 3: "tres", 4: "cuatro", 5: "cinco", 6: "media docena de", 10: "diez", 12: "una docena de"}


def _cart_es(rng):
    """A cart request in Spanish: quantities in words or digits, each item as written for its quantity."""
    items, said = [], []
    for one, many, gender in rng.sample(PRODUCTOS, rng.choice([2, 2, 3])):
        q = rng.choice([1, 1, 2, 3, 4, 5, 6, 10, 12])
        item = one if q == 1 else many
        word = ("una" if gender == "f" else "un") if q == 1 else _PALABRAS[q] if rng.random() < 0.6 else str(q)
        items.append((item, q))
        said.append(f"{word} {item}")
    listed = ", ".join(said[:-1]) + f" y {said[-1]}"
    text = rng.choice([f"Añade {listed} al carrito.", f"Pon {listed} en la cesta, por favor", f"Necesito {listed}. Añádelos al carrito.",
                       f"¿Puedes agregar {listed} a mi pedido?", f"carrito: {listed}"])
    return text, [{"item": i, "quantity": q} for i, q in items], []


ORDER_STATUS = ["processing", "shipped", "out for delivery", "delivered", "delayed"]


def _order(rng):
    oid = rng.choice([f"{rng.choice('ABCDXZ')}-{rng.randint(10000, 99999)}", f"ORD-{rng.randint(100000, 999999)}",
                      str(rng.randint(1000000, 9999999))])
    said = rng.choice([oid, oid, f"#{oid}", f"number {oid}", f"no. {oid}"])  # the call holds the id alone
    text = rng.choice([f"Where is my order {said}?", f"What's the status of order {said}?", f"track order {said} pls",
                       f"Has {said} shipped yet?", f"Any news on my order {said}? It's taking a while.",
                       f"When will order {said} arrive?"])
    _, eta = date_forms(rng)
    return text, {"order_id": oid}, {"status": rng.choice(ORDER_STATUS), "eta": eta}


TOOLS.update({
    "transfer": _tool("send_money", "Send a bank transfer to an IBAN", {
        "iban": {"type": "string"}, "amount": {"type": "number"}, "currency": {"type": "string", "enum": list(CURRENCIES)},
        "reference": {"type": "string"}}, ["iban", "amount", "currency"]),
    "delivery": _tool("schedule_delivery", "Book a parcel delivery slot at an address", {
        "address": {"type": "string", "description": "street, number and city as written"},
        "date": {"type": "string", "description": "YYYY-MM-DD"},
        "window": {"type": "string", "enum": ["morning", "afternoon", "evening"]}}, ["address", "date"]),
    "cart": _tool("add_to_cart", "Add one product to the shopping cart; call it once per product", {
        "item": {"type": "string"}, "quantity": {"type": "integer", "minimum": 1}}, ["item", "quantity"]),
    "order": _tool("get_order_status", "Look up the status and delivery estimate of an order", {
        "order_id": {"type": "string"}}, ["order_id"]),
})

# a tenth of the requests (spanish=0.1) in Spanish; values are still copied as written. The cart's, of several
# calls, have their own items and number words (_cart_es)
SPANISH = {
    "weather": ["¿Qué tiempo hace en {city}?", "¿Cómo está el clima en {city} hoy?", "Tiempo en {city}, por favor"],
    "calendar": ["Crea el evento '{title}' el {date}", "Agenda «{title}» para el {date}", "Pon {title} en mi calendario el {date}"],
    "units": ["Convierte {value} {from_unit} a {to_unit}", "¿Cuántos {to_unit} son {value} {from_unit}?"],
    "transfer": ["Envía {amount:g} {currency} a {iban}", "Transfiere {amount:g} {currency} a la cuenta {iban}"],
    "delivery": ["Programa la entrega en {address} el {date}", "Quiero recibir el paquete en {address} el {date}"],
}


# optional values a Spanish request may carry too, said after the rest (a value's own words, or a form of it)
SPANISH_TAILS = {"transfer": {"reference": [", referencia: {v}", " con la referencia '{v}'", " (referencia «{v}»)"]},
                 "delivery": {"window": {"morning": " por la mañana", "afternoon": " por la tarde", "evening": " por la noche"}}}


def _spanish(task: str, args: dict, optional: dict, rng) -> str | None:
    """The request in Spanish for the arguments' required values, then each of `optional` that the task's
    tails can say (the caller keeps those in the call and drops the rest)."""
    forms = SPANISH.get(task)
    if not forms:
        return None
    text = rng.choice(forms).format(**args)
    for k, v in optional.items():
        tail = SPANISH_TAILS[task][k]
        text += tail[v] if isinstance(tail, dict) else rng.choice(tail).format(v=v)
    return text


CORE = ["weather", "calendar", "email", "units"]
MAKERS = {"weather": _weather, "calendar": _calendar, "email": _email, "units": _units, "transfer": _transfer,
          "delivery": _delivery, "cart": _cart, "order": _order}
TASKS = {t: MAKERS[t] for t in CORE}  # the four the tests use; ALL is the benchmark's wider workload
ALL = list(MAKERS)


def result_turns(call: dict, result: dict, call_id: str) -> list[dict]:
    """The assistant's turn that made `call` ({"name", "arguments"}) and the tool's turn with its result."""
    return [{"role": "assistant", "content": None, "tool_calls": [{"id": call_id, "type": "function", "function": {
        "name": call["name"], "arguments": json.dumps(call["arguments"])}}]},
            {"role": "tool", "tool_call_id": call_id, "content": json.dumps(result)}]


def _item(task: str, tools: list[dict], text: str, calls: list[dict], pii: list, reply: dict | None = None) -> dict:
    return {"task": task, "tools": tools, "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}],
            "calls": calls, "call": calls[0] if len(calls) == 1 else None, "pii": pii, **(reply or {})}


def workload(per_task: int, seed: int = 0, tasks: list[str] | None = None, spanish: float = 0.0) -> list[dict]:
    """`per_task` calls of each task type (default: the four of CORE), shuffled: {"task", "messages", "tools",
    "calls", "call", "pii"}: calls is the correct answer [{"name", "arguments"}] (what the scripted teacher
    answers; `call` the one call when there is one) and pii the personal values injected into the request,
    [(kind, value)]. Every request offers every task's tool. The `order` task comes as pairs: the request,
    then the same conversation with the tool's result, whose answer is text ("reply", with the result's
    values it must state in "facts") and no call. `spanish`: the share of requests written in Spanish."""
    rng = random.Random(seed)
    tasks = list(tasks or CORE)
    tools = [TOOLS[t] for t in tasks]
    out = []
    for task in tasks:
        name = TOOLS[task]["function"]["name"]
        made = 0
        while made < per_task:
            if task == "order":
                text, args, result = _order(rng)
                call = {"name": name, "arguments": args}
                out.append(_item(task, tools, text, [call], []))
                reply = f"Your order {args['order_id']} is {result['status']}; the estimated delivery date is {result['eta']}."
                second = _item(task, tools, text, [], [], {"result": result, "reply": reply, "facts": [result["status"], result["eta"]]})
                second["messages"] += result_turns(call, result, f"call_{made}")
                out.append(second)
                made += 2
                continue
            text, args, pii = MAKERS[task](rng)
            calls = [{"name": name, "arguments": a} for a in args] if isinstance(args, list) else [{"name": name, "arguments": args}]
            in_spanish = bool(spanish) and rng.random() < spanish
            if in_spanish and task == "cart":  # a task of several calls: its own Spanish requests
                text, args, pii = _cart_es(rng)
                calls = [{"name": name, "arguments": a} for a in args]
            elif in_spanish and len(calls) == 1:
                required = TOOLS[task]["function"]["parameters"]["required"]
                kept = {k: v for k, v in calls[0]["arguments"].items() if k in required}
                said = {k: v for k, v in calls[0]["arguments"].items() if k in SPANISH_TAILS.get(task, {}) and rng.random() < 0.5}
                es = _spanish(task, kept, said, rng)
                if es is not None:
                    text, calls = es, [{"name": name, "arguments": {**kept, **said}}]
                    pii = [(k, v) for k, v in pii if v in text]
            out.append(_item(task, tools, text, calls, pii))
            made += 1
    rng.shuffle(out)
    return out


def answered(item: dict, got: list[dict], content: str | None) -> bool:
    """Whether an answer to a workload item is right: its exact calls, or after the tool's result a text
    stating the result's facts and no call."""
    from edgeslm.pipeline import data

    if item.get("reply") is not None:
        return not got and data.states(content, item["facts"])
    return data.exact(got, item["calls"])
