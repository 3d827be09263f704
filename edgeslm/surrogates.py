"""Realistic stand-ins for personal values: a well-formed fake of the same kind and shape for each value
the detectors find (edgeslm.privacy), so a model trained on curated calls learns to copy the value it
is given, not to write `<EMAIL_1>`.

Owns the fakes per kind: e-mail addresses at example domains (RFC 2606), phone numbers, card numbers
and IBANs with the original's layout and valid check digits, US SSNs, documentation IP addresses (RFC
5737 / 3849), keys and secrets with the original's prefix and length, street addresses, person names
with as many words. Each fake is
checked against the detectors, so the Restorer finds it again in a model's answer. Nothing of the
original goes into a fake but its layout (separators, length, the key's public prefix).
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable

Finder = Callable[[str], list[tuple[int, int, str]]]

FIRST = ["alex", "sam", "maria", "jonas", "priya", "chen", "fatima", "lucas", "noor", "elena", "tomas", "aiko",
         "omar", "ines", "david", "hana", "mateo", "sofia", "kofi", "lena", "ravi", "julia", "emre", "nadia"]
LAST = ["morgan", "silva", "novak", "okafor", "lindqvist", "tanaka", "haddad", "moreau", "kowalski", "reyes",
        "fischer", "osei", "petrov", "nakamura", "costa", "brennan", "varga", "sato", "weber", "adeyemi"]
ROLES = ["alerts", "billing", "support", "info", "orders", "noreply", "no-reply", "hello", "team", "contact", "accounts",
         "news", "admin", "hr", "sales", "careers", "security", "office", "bookings", "updates"]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com", "corp.example.org", "example.co.uk"]
STREETS = ["Oak", "Maple", "Cedar Hill", "Willow", "Harbor View", "Juniper", "Mill", "Chestnut", "Lakeside", "Birch"]
# kinds whose detector needs the words before the value (`password=`): a fake is checked after them
CONTEXT = {"SECRET": "password="}
KEY_PREFIXES = ("sk-proj-", "sk_live_", "sk-", "AKIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "xoxb-", "xoxa-",
                "xoxp-", "xoxr-", "xoxs-", "AIza")


def _digits(template: str, rng: random.Random, keep: int = 0) -> str:
    """`template` with every digit after the first `keep` digits replaced by a random one."""
    out, seen = [], 0
    for ch in template:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen <= keep else rng.choice(string.digits))
        else:
            out.append(ch)
    return "".join(out)


def _last_digit_fixed(number: str, find: Finder) -> str:
    """`number` (digits and separators) with its last digit set so the detectors take it for a card (Luhn)."""
    last = max(i for i, ch in enumerate(number) if ch.isdigit())
    for d in string.digits:
        candidate = number[:last] + d + number[last + 1:]
        if find(candidate) == [(0, len(candidate), "CREDIT_CARD")]:
            return candidate
    return number


def _iban(value: str, rng: random.Random) -> str:
    compact = value.replace(" ", "")
    body = "".join(rng.choice(string.digits) if c.isdigit() else rng.choice(string.ascii_uppercase)
                   for c in compact[4:])
    moved = body + compact[:2] + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    fake = f"{compact[:2]}{check:02d}{body}"
    if " " in value:
        fake = " ".join(fake[i:i + 4] for i in range(0, len(fake), 4))
    return fake


def _word(rng: random.Random) -> str:
    """A pronounceable made-up word of 2 or 3 syllables ("tovaki")."""
    return "".join(rng.choice("bdfghklmnprstvz") + rng.choice("aeiou") + rng.choice(["", "", "n", "r", "l"])
                   for _ in range(rng.randint(2, 3)))


def _email(rng: random.Random) -> str:
    """A fake address of any of the shapes real ones take (a person's name, a role, a word with digits) at an
    RFC 2606 domain: a student trained on fakes from a few dozen names wrote `jonas@...` for
    alerts@firstnational-bank.com, where a wide spread of shapes makes copying the only way to be right."""
    name = (lambda: rng.choice(FIRST)) if rng.random() < 0.4 else (lambda: _word(rng))
    surname = (lambda: rng.choice(LAST)) if rng.random() < 0.4 else (lambda: _word(rng))
    digits = rng.choice(["", "", str(rng.randint(1, 99)), str(rng.randint(1960, 2009))])
    local = rng.choice([f"{name()}{rng.choice(['.', '_', ''])}{surname()}{digits}", f"{name()[0]}{surname()}{digits}",
                        f"{name()}{digits}", rng.choice(ROLES), f"{rng.choice(ROLES)}-{_word(rng)}", f"{_word(rng)}{digits}"])
    domain = rng.choice([rng.choice(DOMAINS), f"{_word(rng)}.example", f"{_word(rng)}-{_word(rng)}.example",
                         f"mail.{_word(rng)}.example", f"{_word(rng)}.example.com"])
    return f"{local}@{domain}"


def _random_like(text: str, rng: random.Random) -> str:
    pools = (string.ascii_lowercase, string.ascii_uppercase, string.digits)
    return "".join(next((rng.choice(p) for p in pools if ch in p), ch) for ch in text)


def _fake(kind: str, value: str, rng: random.Random, find: Finder) -> str:
    if kind == "EMAIL":
        return _email(rng)
    if kind == "PHONE":
        keep = 1 if value.startswith("+") else 0  # the country's first digit: the layout stays plausible
        return _digits(value, rng, keep)
    if kind == "CREDIT_CARD":
        return _last_digit_fixed(_digits(value, rng, keep=1), find)
    if kind == "IBAN":
        return _iban(value, rng)
    if kind == "SSN":
        return f"{rng.choice([rng.randint(1, 665), rng.randint(667, 899)]):03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
    if kind == "IP_ADDRESS":
        if ":" in value:
            return f"2001:db8:{rng.randint(1, 0xffff):x}::{rng.randint(1, 0xffff):x}"
        return f"{rng.choice(['192.0.2', '198.51.100', '203.0.113'])}.{rng.randint(1, 254)}"
    if kind == "API_KEY":
        prefix = next((p for p in KEY_PREFIXES if value.startswith(p)), "")
        return prefix + _random_like(value[len(prefix):], rng)
    if kind == "SECRET":
        return _random_like(value, rng)
    if kind == "URL_CREDENTIALS":
        scheme, rest = value.split("://", 1)
        userinfo, host = rest.rsplit("@", 1)
        user, password = userinfo.split(":", 1)
        return f"{scheme}://{rng.choice(FIRST)}:{_random_like(password, rng)}@{host}"
    if kind == "PERSON_NAME":  # as many words, cased the same; a list's name or a made-up one, as for e-mails
        parts = [rng.choice(FIRST) if rng.random() < 0.4 else _word(rng)]
        parts += [rng.choice(LAST) if rng.random() < 0.4 else _word(rng) for _ in value.split()[1:]]
        return " ".join(p.capitalize() if w[:1].isupper() else p for p, w in zip(parts, value.split(), strict=True))
    if kind == "STREET_ADDRESS":
        suffix = value.split()[-1]
        return f"{rng.randint(1, 9999)} {rng.choice(STREETS)} {suffix}"
    return _random_like(value, rng)


def fake(kind: str, value: str, rng: random.Random, taken: set[str], find: Finder) -> str:
    """A stand-in for `value` that the detectors (`find`, edgeslm.privacy's) find as `kind`, differs from
    `value` and from every stand-in in `taken` (one conversation's), and keeps its layout."""
    probe = CONTEXT.get(kind, "")
    for _ in range(50):
        s = _fake(kind, value, rng, find)
        # a name is found by a model, not by `find`: its fake need only be found as nothing else
        found = [] if kind == "PERSON_NAME" else [(len(probe), len(probe) + len(s), kind)]
        if s != value and s not in taken and find(probe + s) == found:
            return s
    return ""  # a value too odd to imitate (a phone layout no draw passes, say): the caller uses a placeholder
