"""Data at rest, S1 and S2: the curated store is encrypted whenever the capture is, both stores forget
calls past their retention, a deletion leaves no readable copy in the database file or its WAL, and a
failed curate leaves nothing of its partial copy behind."""

import os
import sqlite3
import time

import pytest

from edgeslm.config import Settings
from edgeslm.pipeline import curate
from edgeslm.store.capture import CaptureError, CaptureStore

SECRET = "Quarterly-Zanzibar-merger-memo"  # no personal data: redaction leaves it, only encryption hides it
OLD = "Obsolete-Tamarind-itinerary"


def _call(text: str, created: float | None = None) -> dict:
    call = {"source": "serve", "client": "tests", "model": "m", "latency_s": 0.1, "finish_reason": "tool_calls",
            "request": {"messages": [{"role": "user", "content": f"file the {text} under {text}"}],
                        "tools": [{"type": "function", "function": {"name": "file", "parameters": {"type": "object"}}}]},
            "response": {"choices": [{"finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function", "function": {
                    "name": "file", "arguments": '{"title": "%s"}' % text}}]}}]}}
    if created is not None:
        call["created"] = created
    return call


def _raw(*paths) -> bytes:
    return b"".join(p.read_bytes() for p in paths if p.exists())


@pytest.fixture()
def insecure_default(monkeypatch):
    """SQLite as built without SQLITE_SECURE_DELETE (Debian's build turns it on, most others do not): every
    new connection starts with secure_delete off, so only the store's own setting can turn it on."""
    real = sqlite3.connect

    def connect(*args, **kwargs):
        db = real(*args, **kwargs)
        db.execute("PRAGMA secure_delete=OFF")
        return db

    monkeypatch.setattr(sqlite3, "connect", connect)


def _leftovers(directory, name: str) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(name))


def test_curated_store_is_encrypted_when_the_capture_is(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPKEY", "correct horse battery staple")
    s = CaptureStore(tmp_path / "calls.db", key_env="CAPKEY")
    s.add(_call(SECRET))
    s.close()
    report = curate.curate(tmp_path / "calls.db", tmp_path / "curated.db", key_env="CAPKEY")
    assert SECRET.encode() not in _raw(tmp_path / "curated.db", tmp_path / "curated.db-journal")
    assert report["kept"] == 1 and report["encrypted"]
    assert (tmp_path / "curated.db.salt").is_file()
    (ex,) = curate.examples(tmp_path / "curated.db", key_env="CAPKEY")  # the readers decrypt it
    assert SECRET in ex["messages"][0]["content"]
    (rec,) = curate.records(tmp_path / "curated.db", key_env="CAPKEY")
    assert rec["example"] == ex and rec["call_id"] == 1
    monkeypatch.delenv("CAPKEY")
    with pytest.raises(CaptureError, match="holds encrypted examples; set CAPKEY"):
        curate.examples(tmp_path / "curated.db", key_env="CAPKEY")
    monkeypatch.setenv("CAPKEY", "wrong")
    with pytest.raises(CaptureError, match="does not decrypt example"):
        curate.records(tmp_path / "curated.db", key_env="CAPKEY")


def test_retention_deletes_curated_examples_on_the_next_read_and_build(tmp_path, insecure_default):
    s = CaptureStore(tmp_path / "calls.db")
    s.add(_call(OLD, created=time.time() - 10 * 86400))
    s.add(_call(SECRET))
    s.close()
    curate.curate(tmp_path / "calls.db", tmp_path / "curated.db")  # no retention: both kept
    assert len(curate.examples(tmp_path / "curated.db")) == 2
    (ex,) = curate.examples(tmp_path / "curated.db", retention_days=7)  # the next open deletes the old one
    assert SECRET in ex["messages"][0]["content"]
    assert len(curate.records(tmp_path / "curated.db")) == 1  # gone, not only hidden
    assert OLD.encode() not in _raw(tmp_path / "curated.db", tmp_path / "curated.db-journal")
    report = curate.curate(tmp_path / "calls.db", tmp_path / "curated.db", retention_days=7)  # and the next build
    assert report["calls"] == 1 and len(curate.examples(tmp_path / "curated.db")) == 1
    assert [c["request"] for c in CaptureStore(tmp_path / "calls.db").calls()] == [_call(SECRET)["request"]]


def test_both_stores_have_a_retention_by_default(tmp_path):
    st = Settings(home=tmp_path)
    assert 0 < st.capture_retention_days <= 90
    assert curate.at_rest(st) == {"key_env": st.capture_key_env, "retention_days": st.capture_retention_days}


@pytest.mark.parametrize("settled", [False, True], ids=["in-the-wal", "in-the-database"])
def test_a_deleted_call_leaves_no_copy_in_the_database_or_its_wal(tmp_path, settled, insecure_default):
    db = tmp_path / "calls.db"
    s = CaptureStore(db)
    s.add(_call(OLD * 200, created=time.time() - 10 * 86400))  # long enough to spill onto overflow pages
    s.add(_call(OLD, created=time.time() - 10 * 86400))
    s.add(_call(SECRET))
    if settled:  # captured long ago: its rows have been checkpointed into the database file
        s.close()
        assert OLD.encode() in db.read_bytes() and not (tmp_path / "calls.db-wal").exists()
        s = CaptureStore(db)
    assert OLD.encode() in _raw(db, tmp_path / "calls.db-wal")  # plaintext (no key): the check can see it
    s.retention_days = 7
    assert s.expire() == 2
    assert s.db.execute("PRAGMA secure_delete").fetchone()[0] == 1
    assert OLD.encode() not in _raw(db, tmp_path / "calls.db-wal")
    assert SECRET.encode() in _raw(db, tmp_path / "calls.db-wal")
    s.close()
    assert OLD.encode() not in _raw(db, tmp_path / "calls.db-wal")
    assert [c["request"] for c in CaptureStore(db).calls()] == [_call(SECRET)["request"]]


def test_a_failed_curate_leaves_nothing_of_its_partial_copy(tmp_path, monkeypatch):
    s = CaptureStore(tmp_path / "calls.db")
    for i in range(3):
        s.add(_call(f"{SECRET}-{i}"))
    s.close()
    (tmp_path / "curated.db.partial-journal").write_bytes(b"left by a killed run")
    real, seen = curate.example, []

    def failing(call, redact):
        seen.append(call["id"])
        if len(seen) == 3:
            raise RuntimeError("disk full")
        return real(call, redact)

    monkeypatch.setattr(curate, "example", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        curate.curate(tmp_path / "calls.db", tmp_path / "curated.db")
    assert _leftovers(tmp_path, "curated.db") == []
    monkeypatch.setattr(curate, "example", real)
    curate.curate(tmp_path / "calls.db", tmp_path / "curated.db")
    assert _leftovers(tmp_path, "curated.db") == ["curated.db"]


def test_a_stale_journal_of_the_old_curated_store_is_not_replayed_onto_the_new_one(tmp_path):
    s = CaptureStore(tmp_path / "calls.db")
    s.add(_call(SECRET))
    s.close()
    curate.curate(tmp_path / "calls.db", tmp_path / "curated.db")
    hot = sqlite3.connect(tmp_path / "curated.db")  # a reader killed mid-write leaves a hot journal
    hot.execute("PRAGMA journal_mode=DELETE")
    hot.execute("BEGIN IMMEDIATE")
    hot.execute("DELETE FROM examples")
    journal = (tmp_path / "curated.db-journal").read_bytes()
    hot.rollback()
    hot.close()
    (tmp_path / "curated.db-journal").write_bytes(journal)
    curate.curate(tmp_path / "calls.db", tmp_path / "curated.db")
    assert not (tmp_path / "curated.db-journal").exists()
    assert len(curate.examples(tmp_path / "curated.db")) == 1
    assert os.stat(tmp_path / "curated.db").st_mode & 0o777 == 0o600


def test_a_sealer_owns_its_keys(tmp_path, monkeypatch):
    """store/capture.Sealer, the part that encrypts a store at rest (the capture holds one, S2's curated
    store another): its own salt file, plain without a key, a clear error for a missing or wrong key."""
    from edgeslm.store.capture import PLAIN, SCRYPT_KEY, Sealer

    monkeypatch.setenv("EDGESLM_TEST_SEAL_KEY", "correct horse")
    db = tmp_path / "x.db"
    sealer = Sealer(db, "EDGESLM_TEST_SEAL_KEY")
    scheme, sealed = sealer.seal(b"alice@example.com")
    assert scheme == SCRYPT_KEY and b"alice" not in sealed and (tmp_path / "x.db.salt").exists()
    assert sealer.unseal(scheme, sealed, "call", 1) == b"alice@example.com" and sealer.encrypting
    assert Sealer(db, None).seal(b"x") == (PLAIN, b"x") and not Sealer(db, None).encrypting
    with pytest.raises(CaptureError, match="set EDGESLM_OTHER_KEY"):
        Sealer(db, "EDGESLM_OTHER_KEY").unseal(scheme, sealed, "call", 1)
    monkeypatch.setenv("EDGESLM_TEST_SEAL_KEY", "wrong")
    with pytest.raises(CaptureError, match="does not decrypt call 1"):
        Sealer(db, "EDGESLM_TEST_SEAL_KEY").unseal(scheme, sealed, "call", 1)
