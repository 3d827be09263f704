"""S1, capture: every model call an agent makes, logged to a local SQLite store.

Owns the capture database: created with file mode 0600, WAL journal with synchronous=FULL (a record is
on disk when add() returns, so killing the process loses nothing committed), append-only named
migrations, optional encryption at rest of each record's payload (AES-GCM; the key comes from an
environment variable), and a retention limit by age. Knows nothing of HTTP: the server and the proxy
hand it finished calls as plain dicts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from edgeslm.errors import InvalidRequest

# Append-only: a migration, once released, is never edited or reordered; new ones go at the end.
MIGRATIONS: list[tuple[str, str]] = [
    ("0001_calls", """
        CREATE TABLE calls (
            id INTEGER PRIMARY KEY,
            created REAL NOT NULL,       -- unix time the call started
            source TEXT NOT NULL,        -- 'serve' or 'proxy'
            client TEXT,                 -- X-Client-Id, or a hash of the API key, or the peer address
            model TEXT,                  -- what answered (base@task for an adapter)
            adapter TEXT,
            latency_s REAL,
            finish_reason TEXT,
            encrypted INTEGER NOT NULL,  -- 1: payload is nonce + AES-GCM ciphertext
            payload BLOB NOT NULL        -- JSON {"request": ..., "response": ...}
        )"""),
    ("0002_calls_created", "CREATE INDEX calls_created ON calls(created)"),
    ("0003_calls_route", "ALTER TABLE calls ADD COLUMN route TEXT"),  # how model "auto" was routed (JSON)
]
NONCE = 12


class CaptureError(InvalidRequest):
    pass


def _cipher(key_env: str | None):
    """AES-GCM from the key in the environment variable `key_env` (any text: it is hashed to 256
    bits), or None when the variable is unset."""
    secret = os.environ.get(key_env) if key_env else None
    if not secret:
        return None
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(hashlib.sha256(secret.encode()).digest())


class CaptureStore:
    def __init__(self, path: Path, *, key_env: str | None = None, retention_days: float | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():  # created private before SQLite ever opens it
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        try:
            self.db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise CaptureError(f"{self.path} is not a usable capture database ({e})", param="capture") from None
        for suffix in ("-wal", "-shm"):  # SQLite creates these with the process umask
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                os.chmod(side, 0o600)
        self.cipher = _cipher(key_env)
        self.key_env = key_env
        self.retention_days = retention_days
        self._lock = threading.Lock()
        self.expire()

    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
        done = {r[0] for r in self.db.execute("SELECT name FROM migrations")}
        for name, sql in MIGRATIONS:
            if name not in done:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute(sql)
                self.db.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
                self.db.execute("COMMIT")

    def migrations(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM migrations ORDER BY name")]

    def add(self, call: dict) -> int:
        """Store one finished call: {"created", "source", "client", "model", "adapter", "latency_s",
        "finish_reason", "request", "response"}. Durable when this returns."""
        payload = json.dumps({"request": call.get("request"), "response": call.get("response")}).encode()
        if self.cipher is not None:
            nonce = os.urandom(NONCE)
            payload = nonce + self.cipher.encrypt(nonce, payload, None)
        with self._lock:
            cur = self.db.execute(
                "INSERT INTO calls (created, source, client, model, adapter, latency_s, finish_reason, encrypted, "
                "payload, route) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (call.get("created", time.time()), call.get("source", "serve"), call.get("client"), call.get("model"),
                 call.get("adapter"), call.get("latency_s"), call.get("finish_reason"), int(self.cipher is not None),
                 payload, json.dumps(call["route"]) if call.get("route") else None))
            return int(cur.lastrowid)

    def expire(self) -> int:
        """Delete calls older than the retention limit; returns how many."""
        if not self.retention_days:
            return 0
        with self._lock:
            cur = self.db.execute("DELETE FROM calls WHERE created < ?", (time.time() - self.retention_days * 86400,))
            return cur.rowcount

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM calls").fetchone()[0])

    def calls(self) -> Iterator[dict]:
        """Every stored call, oldest first, with its payload decrypted."""
        rows = self.db.execute("SELECT id, created, source, client, model, adapter, latency_s, finish_reason, "
                               "encrypted, payload FROM calls ORDER BY id")
        for cid, created, source, client, model, adapter, latency, finish, encrypted, payload in rows:
            if encrypted:
                if self.cipher is None:
                    raise CaptureError(f"{self.path} holds encrypted calls; set {self.key_env or 'the key variable'} "
                                       "to read them", param="capture")
                try:
                    payload = self.cipher.decrypt(payload[:NONCE], payload[NONCE:], None)
                except Exception:  # noqa: BLE001 - cryptography raises InvalidTag for a wrong key
                    raise CaptureError(f"{self.path}: the key in {self.key_env} does not decrypt call {cid}",
                                       param="capture") from None
            body = json.loads(payload)
            yield {"id": cid, "created": created, "source": source, "client": client, "model": model,
                   "adapter": adapter, "latency_s": latency, "finish_reason": finish, **body}

    def close(self) -> None:
        self.db.close()


def client_id(headers) -> str:
    """Who made a call: X-Client-Id when sent, else a short hash of the bearer key, else 'anonymous'."""
    explicit = headers.get("x-client-id")
    if explicit:
        return explicit[:128]
    auth = headers.get("authorization", "")
    if auth:
        return "key:" + base64.b32encode(hashlib.sha256(auth.encode()).digest()[:5]).decode().lower()
    return "anonymous"
