"""Synthetic personal data for tests and the demo workload: values that pass the same checks real ones
do (Luhn, IBAN mod-97, SSA rules), in the formats people write them, plus look-alikes that are not
personal data (dates, times, versions, amounts, order numbers). Seeded, so every run is the same."""

from __future__ import annotations

import random
import string


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
_FIRST = ["Sam", "Ana", "Kofi", "Mei", "Lars", "Ines", "Ravi", "Olga", "Tom", "Zoe"]


def title(rng) -> str:
    return rng.choice([f"{rng.choice(_ADJ)} {rng.choice(_NOUN)}", f"{rng.choice(_NOUN).capitalize()} with {rng.choice(_FIRST)}",
                       f"{rng.choice(_ADJ)} {rng.choice(_NOUN)} with {rng.choice(_FIRST)}",
                       rng.choice(_NOUN).capitalize(), f"{rng.choice(_FIRST)}'s {rng.choice(_NOUN)}"])


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
    value = GENERATORS[kind](rng)
    return f" {lead[kind]} {value}.", [(kind, value)]


def _weather(rng):
    c, unit, days = city(rng), rng.choice(["celsius", "fahrenheit", None]), rng.choice([None, rng.randint(1, 7)])
    extra, pii = _extra(rng, ["STREET_ADDRESS", "IP_ADDRESS"], {"STREET_ADDRESS": "I live at",
                                                                 "IP_ADDRESS": "My IP is"})
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


def _calendar(rng):
    t = title(rng)
    date = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    time = f"{rng.randint(7, 20):02d}:{rng.choice(['00', '15', '30', '45'])}"
    who = email(rng) if rng.random() < 0.6 else None
    if rng.random() < 0.3:
        time = None
    at, w = (f" at {time}" if time else ""), (f" with {who}" if who else "")
    extra, pii = _extra(rng, ["PHONE"], {"PHONE": "Dial-in:"})
    text = rng.choice([
        f"Schedule '{t}' on {date}{at}" + (f" and invite {who}" if who else ""),
        f"Put {t} in my calendar for {date}{at}" + (f", attendee {who}" if who else ""),
        f"Can you book a meeting called {t} on {date}{at}{w}?", f"New event: {t}, {date}{at}.{' Add ' + who + '.' if who else ''}",
        f"Add \"{t}\" to my calendar on {date}{at}{w}.", f"I have {t} on {date}{at}{w}, please create the event",
        f"calendar: {t} / {date}{at}{w}",
    ]) + extra
    args = {"title": t, "date": date, **({"time": time} if time else {}), **({"attendee": who} if who else {})}
    return text, args, ([("EMAIL", who)] if who else []) + pii


EMAIL_KINDS = [("invoice", "normal", "billing"), ("refund request", "high", "support"),
               ("prize notification", "low", "spam"), ("outage report", "high", "support"),
               ("newsletter", "low", "inbox"), ("payment reminder", "normal", "billing"),
               ("receipt", "normal", "billing"), ("urgent complaint about a broken order", "high", "support"),
               ("you-won-a-cruise message", "low", "spam"), ("team lunch invitation", "normal", "inbox"),
               ("overdue bill", "high", "billing"), ("product announcement", "low", "inbox")]


def _email(rng):
    sender = email(rng)
    kind, priority, folder = rng.choice(EMAIL_KINDS)
    extra, pii = _extra(rng, ["PHONE", "CREDIT_CARD", "IBAN", "SSN"], {
        "PHONE": "They left their number", "CREDIT_CARD": "It mentions card", "IBAN": "It asks to pay",
        "SSN": "It quotes the SSN"})
    text = rng.choice([
        f"New mail from {sender}: an {kind}. File it.{extra}", f"Triage this e-mail from {sender} about a {kind}.{extra}",
        f"I got a {kind} from {sender}, where should it go?{extra}", f"Sort the message from {sender} ({kind}).{extra}",
        f"{sender} sent me a {kind}. Please file it.{extra}", f"file the {kind} that came in from {sender}{extra}",
        f"Inbox item from {sender} - it's a {kind}. Handle it.{extra}",
    ])
    return text, {"sender": sender, "priority": priority, "folder": folder}, [("EMAIL", sender), *pii]


def _units(rng):
    (a, b), value = rng.choice(UNITS), rng.choice([rng.randint(1, 500), round(rng.uniform(0.5, 100), 1)])
    extra, pii = _extra(rng, ["API_KEY", "URL_CREDENTIALS"], {"API_KEY": "Use the key",
                                                               "URL_CREDENTIALS": "The data is at"})
    text = rng.choice([
        f"Convert {value} {a} to {b}", f"How many {b} is {value} {a}?", f"{value} {a} in {b}?",
        f"I need {value} {a} expressed in {b}, thanks", f"what is {value} {a} in {b}",
        f"Please turn {value} {a} into {b}.", f"{value} {a} -> {b}", f"Could you convert {value} {a} into {b} for me?",
    ]) + extra
    return text, {"value": value, "from_unit": a, "to_unit": b}, pii


TASKS = {"weather": _weather, "calendar": _calendar, "email": _email, "units": _units}


def workload(per_task: int, seed: int = 0) -> list[dict]:
    """`per_task` calls of each task type, shuffled: {"task", "messages", "tools", "call", "pii"} where
    call is the correct tool call {"name", "arguments"} (what the scripted teacher answers) and pii the
    personal values injected into the request, [(kind, value)]."""
    rng = random.Random(seed)
    tools = list(TOOLS.values())
    out = []
    for task, make in TASKS.items():
        for _ in range(per_task):
            text, args, pii = make(rng)
            out.append({"task": task, "tools": tools, "messages": [{"role": "system", "content": SYSTEM},
                                                                   {"role": "user", "content": text}],
                        "call": {"name": TOOLS[task]["function"]["name"], "arguments": args}, "pii": pii})
    rng.shuffle(out)
    return out
