"""S2, curate: from the raw capture to training examples with personal data removed.

Owns the curated store (`EDGESLM_HOME/capture/curated.db`, mode 0600, rebuilt atomically each run):
every captured call is turned into one example (messages, tools, the answer), its text redacted with
typed placeholders consistent within the conversation (pii.py), broken records filtered out and exact
duplicates dropped. Later stages read only this store, never the raw capture.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections import Counter
from pathlib import Path

from edgeslm import privacy as pii
from edgeslm.errors import InvalidRequest
from edgeslm.store.capture import CaptureStore


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


def curate(capture_db: Path, out: Path, key_env: str | None = None) -> dict:
    """Rebuild the curated store `out` from `capture_db`; returns the report."""
    if not Path(capture_db).is_file():
        raise InvalidRequest(f"no capture store at {capture_db}: capture calls first (edgeslm serve --capture, or "
                             "edgeslm proxy)", param="capture")
    store = CaptureStore(capture_db, key_env=key_env)
    if store.count() == 0:
        raise InvalidRequest(f"the capture store {capture_db} holds no calls yet; capture some first", param="capture")
    tmp = out.with_name(out.name + ".partial")
    tmp.unlink(missing_ok=True)
    os.close(os.open(tmp, os.O_CREAT | os.O_WRONLY, 0o600))
    db = sqlite3.connect(tmp)
    db.execute("CREATE TABLE examples (id INTEGER PRIMARY KEY, call_id INTEGER NOT NULL, created REAL, client TEXT, "
               "model TEXT, source TEXT, latency_s REAL, digest TEXT UNIQUE NOT NULL, example TEXT NOT NULL)")
    pii_counts: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    calls, kept, dupes = 0, 0, 0
    try:
        for call in store.calls():
            calls += 1
            redact = pii.Redactor()  # placeholders are consistent within one conversation
            ex, why = example(call, redact)
            if ex is None:
                dropped[why or "unknown"] += 1
                continue
            text = json.dumps(ex)  # key order kept: tool schemas reach the prompt in the agent's order
            digest = hashlib.sha256(json.dumps(ex, sort_keys=True).encode()).hexdigest()
            try:
                db.execute("INSERT INTO examples (call_id, created, client, model, source, latency_s, digest, example) "
                           "VALUES (?,?,?,?,?,?,?,?)", (call["id"], call["created"], call["client"], call["model"],
                                                        call["source"], call["latency_s"], digest, text))
                kept += 1
                pii_counts.update(redact.counts)
            except sqlite3.IntegrityError:
                dupes += 1
        db.commit()
        db.close()
        os.replace(tmp, out)
    finally:
        store.close()
        tmp.unlink(missing_ok=True)
    return {"calls": calls, "kept": kept, "duplicates": dupes, "dropped": dict(dropped),
            "pii": {k: pii_counts.get(k, 0) for k in pii.KINDS}, "not_covered": pii.NOT_COVERED, "curated": str(out)}


def examples(curated: Path, with_call_ids: bool = False) -> list:
    """The curated examples (what training reads); with the capture call id of each when asked."""
    if not Path(curated).is_file():
        raise InvalidRequest(f"no curated store at {curated}; run edgeslm curate first", param="curated")
    db = sqlite3.connect(curated)
    try:
        rows = db.execute("SELECT call_id, example FROM examples ORDER BY id").fetchall()
        return [(cid, json.loads(e)) for cid, e in rows] if with_call_ids else [json.loads(e) for _, e in rows]
    finally:
        db.close()


def records(curated: Path) -> list[dict]:
    """The curated examples with where they came from: {"call_id", "source", "model", "latency_s", "example"}."""
    if not Path(curated).is_file():
        raise InvalidRequest(f"no curated store at {curated}; run edgeslm curate first", param="curated")
    db = sqlite3.connect(curated)
    try:
        rows = db.execute("SELECT call_id, source, model, latency_s, example FROM examples ORDER BY id").fetchall()
    except sqlite3.DatabaseError as e:
        raise InvalidRequest(f"the curated store {curated} is damaged ({e}); run edgeslm curate again",
                             param="curated") from None
    finally:
        db.close()
    return [{"call_id": c, "source": s, "model": m, "latency_s": lat, "example": json.loads(e)} for c, s, m, lat, e in rows]
