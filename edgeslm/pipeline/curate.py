"""S2, curate: from the raw capture to training examples with personal data removed.

Owns the curated store (`EDGESLM_HOME/capture/curated.db`, mode 0600, rebuilt atomically each run):
every captured call is turned into one example (messages, tools, the answer), its personal values
replaced by realistic fakes of the same kind, consistent within the conversation (edgeslm.privacy with
surrogates: a student then learns to copy the value it is given, where `<EMAIL_1>` taught it to write
placeholders), broken records filtered out and exact duplicates dropped. Later stages read only this
store, never the raw capture.

At rest it is kept like the capture (store/capture.py): each example is encrypted under the capture's
key variable whenever it is set (with its own salt, `curated.db.salt`); examples of calls older than the
capture's retention are deleted when the store is next built or read; every connection deletes securely.
The store is built in `curated.db.partial` with its journal in memory, and on any failure nothing of
it stays on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections import Counter
from pathlib import Path

from edgeslm import privacy as pii
from edgeslm.errors import InvalidRequest
from edgeslm.store.capture import CaptureStore, Sealer, secure_connect

# `encrypted`: the key scheme of `example` as store/capture.py numbers them (0: the JSON as text)
SCHEMA = ("CREATE TABLE examples (id INTEGER PRIMARY KEY, call_id INTEGER NOT NULL, created REAL, client TEXT, "
          "model TEXT, source TEXT, latency_s REAL, encrypted INTEGER NOT NULL DEFAULT 0, example BLOB NOT NULL)")


def example(call: dict, redact: pii.Redactor) -> tuple[dict | None, str | None]:
    """(the curated example, None) or (None, why it was dropped)."""
    req, resp = call.get("request") or {}, call.get("response") or {}
    messages = req.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return None, "no_messages"
    choices = resp.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0].get("message"), dict):
        return None, "no_response"
    if choices[0].get("finish_reason") == "length":
        return None, "truncated"
    answer = choices[0]["message"]
    for c in answer.get("tool_calls") or []:
        try:
            json.loads(c["function"]["arguments"])
        except (KeyError, TypeError, ValueError):
            return None, "bad_tool_arguments"
    if not answer.get("content") and not answer.get("tool_calls"):
        return None, "empty_answer"
    out = {"messages": [pii.redact_message(m, redact) for m in messages], "tools": req.get("tools") or [],
           "tool_choice": req.get("tool_choice"),
           "answer": pii.redact_message({"role": "assistant", "content": answer.get("content"),
                                      "tool_calls": answer.get("tool_calls")}, redact)}
    return out, None


def _fakes_salt(out: Path) -> tuple[bytes, Path | None]:
    """(the secret the fakes are drawn under, where to keep it once the store is built, or None when it is
    kept already): `fakes.salt` beside the store, mode 0600."""
    path = out.with_name("fakes.salt")
    if path.is_file() and len(salt := path.read_bytes()) == 16:
        return salt, None
    return os.urandom(16), path


def _keep_salt(salt: bytes, path: Path) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.unlink(missing_ok=True)
    with os.fdopen(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "wb") as f:
        f.write(salt)
    tmp.replace(path)


def curate(capture_db: Path, out: Path, key_env: str | None = None, retention_days: float | None = None,
           names: pii.Names | None = None, progress=None) -> dict:
    """Rebuild the curated store `out` from `capture_db`; returns the report. `key_env` names the capture's
    key variable (the curated examples are encrypted when it is set); calls older than `retention_days`
    are deleted from the capture first and never reach `out`. `names`: a person names' finder (an
    edgeslm.names.Finder, whose `sure` words are carried across the store too; a plain function's are
    not); None leaves names as they are, and the report says so. `progress(done, total)` after each call
    (with names, curation takes about 0.1 s a message)."""
    if not Path(capture_db).is_file():
        raise InvalidRequest(f"no capture store at {capture_db}: capture calls first (edgeslm serve --capture, or "
                             "edgeslm proxy)", param="capture")
    out = Path(out)
    store = CaptureStore(capture_db, key_env=key_env, retention_days=retention_days)
    tmp = out.with_name(out.name + ".partial")
    sealer = Sealer(out, key_env)
    pii_counts: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    calls, kept, dupes, seen = 0, 0, 0, set()
    db = None
    try:
        if store.count() == 0:
            raise InvalidRequest(f"the capture store {capture_db} holds no calls yet; capture some first",
                                 param="capture")
        _remove(tmp)  # what a killed run left
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        db = secure_connect(tmp)
        db.execute("PRAGMA journal_mode=MEMORY")  # no journal file beside the partial copy
        db.execute("PRAGMA temp_store=MEMORY")
        db.execute(SCHEMA)
        salt, new_salt = _fakes_salt(out)
        total = store.count()
        done, steps = 0, total  # with names, the store-wide pass is the first half of the progress
        if names is not None:
            names = store_names(store, names, progress)
            done, steps = total, 2 * total
        for call in store.calls():
            calls += 1
            if progress is not None:
                progress(done + calls, steps)
            # the fakes are drawn from the call's content under a secret salt kept beside the store: two
            # copies of one call get the same ones (and stay duplicates), a later run curates an unchanged
            # call the same (its task keeps its adapter), and without the salt nobody can tie a fake to its value
            h = hashlib.sha256(salt + json.dumps([call.get("request"), call.get("response")], sort_keys=True,
                                                 default=str).encode())
            redact = pii.Redactor(surrogates=True, seed=int.from_bytes(h.digest()[:8], "big"), names=names)
            ex, why = example(call, redact)
            if ex is None:
                dropped[why or "unknown"] += 1
                continue
            text = json.dumps(ex)  # key order kept: tool schemas reach the prompt in the agent's order
            digest = hashlib.sha256(json.dumps(ex, sort_keys=True).encode()).hexdigest()
            if digest in seen:
                dupes += 1
                continue
            seen.add(digest)
            scheme, sealed = sealer.seal(text.encode())
            db.execute("INSERT INTO examples (call_id, created, client, model, source, latency_s, encrypted, example) "
                       "VALUES (?,?,?,?,?,?,?,?)", (call["id"], call["created"], call["client"], call["model"],
                                                    call["source"], call["latency_s"], scheme,
                                                    sealed if scheme else text))
            kept += 1
            pii_counts.update(redact.counts)
        db.commit()
        db.close()
        for side in _sidecars(out):  # a journal of the old store must never be replayed onto the new one
            side.unlink(missing_ok=True)
        if new_salt is not None:  # kept with the store it made, never by a failed run
            _keep_salt(salt, new_salt)
        os.replace(tmp, out)
    finally:
        if db is not None:
            db.close()
        store.close()
        _remove(tmp)
    return {"calls": calls, "kept": kept, "duplicates": dupes, "dropped": dict(dropped),
            "pii": {k: pii_counts.get(k, 0) for k in pii.KINDS + ([pii.NAME] if names else [])},
            "not_covered": [] if names else [pii.NAME], "curated": str(out),
            "encrypted": sealer.encrypting}


def store_names(store: CaptureStore, names: pii.Names, progress=None) -> pii.Names:
    """`names` and every name of two or more words it finds in any captured request or tool result of
    `store` (pii.with_known), and, where it has a `sure` (edgeslm.names.Finder), every word it is sure of
    somewhere and finds in at least half the places it stands capitalized ("Brötchen", sure once, found in
    1 of 42, is no name): read before curating, so a name found in one call is replaced where the model
    missed it in another. Kept in memory only."""
    from edgeslm.names import words

    known: set[str] = set()
    sure = getattr(names, "sure", None)
    surely: set[str] = set()
    stands: Counter[str] = Counter()  # capitalized words: where they stand
    found: Counter[str] = Counter()  # and where a name was found around them
    total = store.count()
    for i, call in enumerate(store.calls(), 1):
        request = call.get("request")
        messages = request.get("messages") if isinstance(request, dict) else None
        for m in messages if isinstance(messages, list) else []:
            if not isinstance(m, dict) or m.get("role") not in ("user", "tool"):
                continue
            content = m.get("content")
            parts = [content] if isinstance(content, str) else \
                [p.get("text") for p in content if isinstance(p, dict)] if isinstance(content, list) else []
            for text in parts:
                if isinstance(text, str):
                    spans = names(text)
                    known.update(w for a, b in spans if len((w := text[a:b]).split()) > 1)
                    if sure is not None:
                        surely.update(text[a:b] for a, b in sure(text))
                        for a, b in words(text):
                            if text[a].isupper():
                                stands[text[a:b]] += 1
                                found[text[a:b]] += any(s <= a and b <= e for s, e in spans)
        if progress is not None:
            progress(i, 2 * total)
    return pii.with_known(names, known | {w for w in surely if 2 * found[w] >= stands[w]})


_FINDERS: dict = {}


def names_finder(settings) -> pii.Names | None:
    """The person names' finder curation runs with (settings.curate_names), or None; one per process and
    store (its model loads once)."""
    if not settings.curate_names:
        return None
    from edgeslm.names import Finder

    key = str(settings.cache)
    if key not in _FINDERS:
        _FINDERS[key] = Finder(settings)
    return _FINDERS[key]


def at_rest(settings) -> dict:
    """The keyword arguments of `curate`, `examples` and `records` from the settings: the capture's key
    variable and retention."""
    return {"key_env": settings.capture_key_env, "retention_days": settings.capture_retention_days}


def _sidecars(db: Path) -> list[Path]:
    return [db.with_name(db.name + side) for side in ("-journal", "-wal", "-shm")]


def _remove(db: Path) -> None:
    for path in (db, *_sidecars(db)):
        path.unlink(missing_ok=True)


def _rows(curated: Path, key_env: str | None, retention_days: float | None) -> list[tuple]:
    """(call_id, source, model, latency_s, example) of every curated example in order, after deleting
    those of calls older than `retention_days`."""
    if not Path(curated).is_file():
        raise InvalidRequest(f"no curated store at {curated}; run edgeslm curate first", param="curated")
    sealer = Sealer(curated, key_env)
    db = None
    try:
        db = secure_connect(curated)
        columns = {r[1] for r in db.execute("PRAGMA table_info(examples)")}
        if retention_days:
            db.execute("DELETE FROM examples WHERE created < ?", (time.time() - retention_days * 86400,))
            db.commit()
        scheme = "encrypted" if "encrypted" in columns else "0"  # a store curated before encryption
        rows = db.execute(f"SELECT id, call_id, source, model, latency_s, {scheme}, example FROM examples "
                          "ORDER BY id").fetchall()
    except sqlite3.DatabaseError as e:
        raise InvalidRequest(f"the curated store {curated} is damaged ({e}); run edgeslm curate again",
                             param="curated") from None
    finally:
        if db is not None:
            db.close()
    return [(c, s, m, lat, json.loads(sealer.unseal(enc, e, "example", i))) for i, c, s, m, lat, enc, e in rows]


def examples(curated: Path, with_call_ids: bool = False, *, key_env: str | None = None,
             retention_days: float | None = None) -> list:
    """The curated examples (what training reads); with the capture call id of each when asked. `key_env`
    and `retention_days` as for `curate`: the key that reads encrypted examples, the age past which
    examples are deleted first."""
    rows = _rows(curated, key_env, retention_days)
    return [(c, e) for c, *_, e in rows] if with_call_ids else [e for *_, e in rows]


def records(curated: Path, *, key_env: str | None = None, retention_days: float | None = None) -> list[dict]:
    """The curated examples with where they came from: {"call_id", "source", "model", "latency_s", "example"}
    (`key_env` and `retention_days` as for `examples`)."""
    return [{"call_id": c, "source": s, "model": m, "latency_s": lat, "example": e}
            for c, s, m, lat, e in _rows(curated, key_env, retention_days)]
