"""S2 curate: PII detection measured on seeded synthetic data (recall on injected structured PII,
precision over everything flagged), placeholders, dedup, broken records, the curated store, errors."""

import json
import os
import random
import stat
import subprocess
import sys

import pytest

from edgeslm import privacy as pii
from benchmarks import synthetic
from edgeslm.store.capture import CaptureStore
from edgeslm.pipeline.curate import curate, examples


def test_detectors_recall_and_precision_on_synthetic_pii(capsys):
    rng = random.Random(7)
    injected, hits, flagged, correct = 0, 0, 0, 0
    for i in range(900):
        kind = list(synthetic.GENERATORS)[i % len(synthetic.GENERATORS)]
        value = synthetic.GENERATORS[kind](rng)
        text = synthetic.sentence(kind, value, rng)
        spans = pii.find(text)
        injected += 1
        start = text.index(value)
        hits += any(k == kind and a <= start and b >= start + len(value) - 1 for a, b, k in spans)
        flagged += len(spans)
        correct += sum(1 for a, b, k in spans if k == kind and a < start + len(value) and b > start)
    for _ in range(300):  # text with numbers that are no one's data
        flagged += len(pii.find(f"Book it {synthetic.look_alike(rng)} and {synthetic.look_alike(rng)}."))
    recall, precision = hits / injected, correct / flagged
    with capsys.disabled():
        print(f"\nPII on {injected} injected values: recall {recall:.3f}, precision {precision:.3f}")
    assert recall >= 0.99 and precision >= 0.95


@pytest.mark.parametrize("text,kind", [
    ("card 4111 1111 1111 1112", None),  # fails Luhn
    ("IBAN DE89 3704 0044 0532 0130 01", None),  # fails mod-97
    ("SSN 666-12-3456", None),  # never issued
    ("ip 999.1.1.1", None),
    ("card 4111-1111-1111-1111", "CREDIT_CARD"),
    ("iban GB82WEST12345698765432", "IBAN"),
])
def test_validators(text, kind):
    assert [k for *_, k in pii.find(text)] == ([kind] if kind else [])


def _call(content, answer_args='{"to": "jane@example.com"}', finish="tool_calls", **extra):
    return {"client": "c", "model": "m", "request": {"messages": [
        {"role": "user", "content": content}, {"role": "user", "content": "again: jane@example.com"}],
        "tools": [{"type": "function", "function": {"name": "send", "parameters": {"type": "object"}}}]},
        "response": {"choices": [{"finish_reason": finish, "message": {"role": "assistant", "content": None,
                     "tool_calls": [{"id": "1", "type": "function",
                                     "function": {"name": "send", "arguments": answer_args}}]}}]}, **extra}


def test_curate_redacts_consistently_dedups_and_drops_broken(tmp_path):
    s = CaptureStore(tmp_path / "calls.db")
    s.add(_call("mail jane@example.com, card 4111 1111 1111 1111, from 10.1.2.3"))
    s.add(_call("mail jane@example.com, card 4111 1111 1111 1111, from 10.1.2.3"))  # an exact duplicate
    s.add(_call("no answer", finish="length"))
    s.add(_call("bad args", answer_args="{not json"))
    s.add({"request": {"messages": []}, "response": {}})
    s.close()
    report = curate(tmp_path / "calls.db", tmp_path / "curated.db")
    assert report["calls"] == 5 and report["kept"] == 1 and report["duplicates"] == 1
    assert report["dropped"] == {"truncated": 1, "bad_tool_arguments": 1, "no_messages": 1}
    assert report["pii"]["EMAIL"] == 3 and report["pii"]["CREDIT_CARD"] == 1 and report["pii"]["IP_ADDRESS"] == 1
    assert report["not_covered"] == ["PERSON_NAME"]
    (ex,) = examples(tmp_path / "curated.db")
    text = ex["messages"][0]["content"]
    assert "jane@example.com" not in text and "4111" not in text and "10.1.2.3" not in text, text
    # realistic fakes of each kind in place of the values (a student learns to copy them), not <EMAIL_1>
    found = pii.find(text)
    assert [k for *_, k in found] == ["EMAIL", "CREDIT_CARD", "IP_ADDRESS"] and "<" not in text, text
    fake_email = text[found[0][0]:found[0][1]]
    assert ex["messages"][1]["content"] == f"again: {fake_email}"  # the same value, the same fake
    assert json.loads(ex["answer"]["tool_calls"][0]["function"]["arguments"]) == {"to": fake_email}
    raw = (tmp_path / "curated.db").read_bytes()
    assert b"jane@example.com" not in raw and b"4111" not in raw
    # a later run curates the same calls the same (an unchanged task keeps its adapter); the salt is secret
    curate(tmp_path / "calls.db", tmp_path / "curated.db")
    assert examples(tmp_path / "curated.db") == [ex]
    assert stat.S_IMODE(os.stat(tmp_path / "fakes.salt").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "curated.db").st_mode) == 0o600


def test_curate_errors_are_clear(env, tmp_path):
    home = {**env, "EDGESLM_HOME": str(tmp_path)}

    def run():
        return subprocess.run([sys.executable, "-m", "edgeslm", "curate"], env=home, capture_output=True, text=True,
                              timeout=60, check=False)

    r = run()
    assert r.returncode == 2 and "no capture store" in r.stderr
    CaptureStore(tmp_path / "capture" / "calls.db").close()
    r = run()
    assert r.returncode == 2 and "holds no calls yet" in r.stderr
    (tmp_path / "capture" / "calls.db").write_bytes(b"garbage" * 500)
    for side in ("-wal", "-shm"):
        (tmp_path / "capture" / f"calls.db{side}").unlink(missing_ok=True)
    r = run()
    assert r.returncode == 2 and "not a usable capture database" in r.stderr and "Traceback" not in r.stderr


def test_surrogates_are_realistic_consistent_and_come_back():
    """Each value of each of the 9 kinds gets a fake the detectors take for the same kind (so the Restorer
    finds it in an answer), the same fake for the same value, none of the value's own characters beyond
    its layout; restored whole, and across any split of a stream."""
    text = ("mail ana.p@gmail.com or call +351 912 345 678, card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 "
            "0130 00, ssn 123-45-6789 from 10.1.2.3 and fe80::1:2 key sk-proj-abcdefghijklmnopqrstuvwxyz0123 "
            "password=hunter2hunter2 db postgres://bob:s3cretpw@db.internal/x at 221 Baker Street. again ana.p@gmail.com")
    r = pii.Redactor(surrogates=True, seed=3)
    clean = r(text)
    kinds = [k for *_, k in pii.find(text)]
    assert [k for *_, k in pii.find(clean)] == kinds and "<" not in clean, clean
    for value in ("ana.p@gmail.com", "912 345 678", "4111 1111 1111 1111", "DE89 3704", "123-45-6789", "10.1.2.3",
                  "abcdefghijklmnopqrstuvwxyz", "hunter2", "s3cretpw", "221 Baker"):
        assert value not in clean, (value, clean)
    fake_mail = clean[pii.find(clean)[0][0]:pii.find(clean)[0][1]]
    assert clean.endswith("again " + fake_mail)
    restore = pii.Restorer(r)
    assert restore(clean) == text
    answer = json.dumps({"to": fake_mail, "secret": clean.split("password=")[1].split()[0]})
    assert json.loads(restore(answer, in_json=True)) == {"to": "ana.p@gmail.com", "secret": "hunter2hunter2"}
    for size in (1, 2, 7, 13):
        parts = [clean[i:i + size] for i in range(0, len(clean), size)]
        assert "".join(restore.feed(size, p) for p in parts) + restore.flush(size) == text
