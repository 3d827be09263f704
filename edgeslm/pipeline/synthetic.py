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
