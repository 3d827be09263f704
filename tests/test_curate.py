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
    assert ex["messages"][0]["content"] == "mail <EMAIL_1>, card <CREDIT_CARD_1>, from <IP_ADDRESS_1>"
    assert ex["messages"][1]["content"] == "again: <EMAIL_1>"  # the same value, the same placeholder
    assert json.loads(ex["answer"]["tool_calls"][0]["function"]["arguments"]) == {"to": "<EMAIL_1>"}
    raw = (tmp_path / "curated.db").read_bytes()
    assert b"jane@example.com" not in raw and b"4111" not in raw
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
