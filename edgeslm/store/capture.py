"""S1, capture: every model call an agent makes, logged to a local SQLite store.

Owns the capture database: created with file mode 0600, WAL journal with synchronous=FULL (a record is
on disk when add() returns, so killing the process loses nothing committed), append-only named
migrations, optional encryption at rest of each record's payload, and a retention limit by age,
enforced at start-up and then periodically while the store is open. Knows nothing of HTTP: the server
and the proxy hand it finished calls as plain dicts.

Deleting means gone: every connection runs with `secure_delete` on (SQLite zeroes deleted content and
freed pages), and after deleting, the WAL is checkpointed with TRUNCATE so no old frame keeps a copy
(`secure_connect`, `checkpoint`; the curated store uses them too, and `Sealer`, the same encryption).

Encryption at rest: AES-GCM, with a 256-bit key derived by scrypt (n=2**15, r=8, p=1) from a
passphrase in an environment variable and a random 16-byte salt kept beside the database in
`<db name>.salt` (mode 0600; created once, atomically, so processes opening the store together agree
on it). Losing the salt file loses every record written under it, like losing the passphrase. Records
written before the salt existed (column `encrypted` = 1) were keyed with an unsalted SHA-256 of the
passphrase; they are still read with that key, while every new record is written with the scrypt key
(`encrypted` = 2). Each key is derived lazily, once per store.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

from edgeslm.errors import ServerFault

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
# The `encrypted` column (0001_calls): 0 plain JSON; otherwise the payload is nonce (12 bytes) + AES-GCM
# ciphertext, under the key scheme the value names. The SQL above is released and stays as it is.
PLAIN, SHA256_KEY, SCRYPT_KEY = 0, 1, 2  # SHA256_KEY: legacy, unsalted, read only
NONCE = 12
SALT_BYTES = 16
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1  # about 0.1 s and 32 MiB per derivation
MAX_EXPIRE_EVERY_S = 3600.0

log = logging.getLogger(__name__)


class CaptureError(ServerFault):
    pass


def _aesgcm(key: bytes):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _sha256_key(secret: str) -> bytes:
    """The legacy key (`encrypted` = 1): an unsalted SHA-256 of the passphrase. Only ever read."""
    return hashlib.sha256(secret.encode()).digest()


def _scrypt_key(secret: str, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(secret.encode())


def _salt(path: Path, *, create: bool = True) -> bytes:
    """The salt in `path`, created (16 random bytes, mode 0600) if there is none yet and `create`
    (a reader of records already encrypted under a salt must not invent a new one). Creation is atomic:
    the bytes go to a private temporary file that is then hard-linked into place, and a link never
    replaces an existing file, so when two processes race, both end up with the winner's salt."""
    for _ in range(50):
        try:
            with open(path, "rb") as f:
                salt = f.read()
        except FileNotFoundError:
            pass
        else:
            if len(salt) == SALT_BYTES:
                return salt
            if len(salt) > SALT_BYTES or _age(path) > 5:
                raise CaptureError(f"{path} is not a valid capture salt ({len(salt)} bytes, want {SALT_BYTES}); "
                                   "records encrypted under it cannot be read without it", param="capture")
            time.sleep(0.05)  # only seen when the fallback below is mid-write in another process
            continue
        if not create:
            raise CaptureError(f"{path} is missing: the calls encrypted under its salt cannot be read without it",
                               param="capture")
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(SALT_BYTES))
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process got there first: read its salt
            except OSError:  # a filesystem without hard links: exclusive create, written in place
                try:
                    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
                except FileExistsError:
                    pass
                else:
                    with os.fdopen(fd, "wb") as f:
                        f.write(tmp.read_bytes())
                        f.flush()
                        os.fsync(f.fileno())
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(path.parent)
    raise CaptureError(f"could not create or read the capture salt {path}", param="capture")


def _age(path: Path) -> float:
    try:
        return time.time() - os.stat(path).st_mtime
    except FileNotFoundError:
        return 0.0


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _expire_loop(ref: weakref.ref, stop: threading.Event, every_s: float) -> None:
    """Run expire() every `every_s` until `stop` is set or the store is gone (held weakly, so a store
    nobody closes can still be collected)."""
    while not stop.wait(every_s):
        store = ref()
        if store is None:
            return
        try:
            store.expire()
        except sqlite3.Error:  # e.g. closed under us, or the disk briefly busy: try again next round
            if stop.is_set():
                return
            log.exception("capture retention: could not expire old calls")
        del store


class Sealer:
    """Encryption at rest for one store: the AES-GCM ciphers, one per key scheme, derived once each, when
    first needed, from the key in the environment variable `key_env`, with the store's own salt file
    (`<db name>.salt`). The capture store holds one; S2's curated store beside it holds another."""

    def __init__(self, path: Path, key_env: str | None):
        self.path = Path(path)
        self.key_env = key_env
        self.salt_path = self.path.with_name(self.path.name + ".salt")
        self._secret = (os.environ.get(key_env) or None) if key_env else None
        self._ciphers: dict = {}
        self._key_lock = threading.Lock()  # key derivation, apart from the database lock

    def _cipher(self, scheme: int, *, create_salt: bool = True):
        """The AES-GCM for key scheme `scheme` (SHA256_KEY or SCRYPT_KEY), derived on first use and
        kept; None when no key is set."""
        if self._secret is None:
            return None
        with self._key_lock:
            if scheme not in self._ciphers:
                if scheme == SCRYPT_KEY:
                    key = _scrypt_key(self._secret, _salt(self.salt_path, create=create_salt))
                elif scheme == SHA256_KEY:
                    key = _sha256_key(self._secret)
                else:
                    raise CaptureError(f"{self.path} holds a call encrypted under an unknown key scheme ({scheme}); "
                                       "a newer edgeslm wrote it", param="capture")
                self._ciphers[scheme] = _aesgcm(key)
            return self._ciphers[scheme]

    @property
    def cipher(self):
        """The AES-GCM new records are written with (the scrypt key), or None when not encrypting."""
        return self._cipher(SCRYPT_KEY)

    @property
    def encrypting(self) -> bool:
        return self._secret is not None

    def seal(self, payload: bytes) -> tuple[int, bytes]:
        """(key scheme, bytes to store): `payload` encrypted under the scrypt key when a key is set, else
        (PLAIN, payload) unchanged."""
        cipher = self.cipher
        if cipher is None:
            return PLAIN, payload
        nonce = os.urandom(NONCE)
        return SCRYPT_KEY, nonce + cipher.encrypt(nonce, payload, None)

    def unseal(self, scheme: int, payload: bytes, kind: str, ident) -> bytes:
        """The plaintext of a stored payload written under key scheme `scheme`; `kind` and `ident` name
        the record in errors (a missing or wrong key)."""
        if not scheme:
            return payload
        cipher = self._cipher(scheme, create_salt=False)
        if cipher is None:
            raise CaptureError(f"{self.path} holds encrypted {kind}s; set {self.key_env or 'the key variable'} "
                               "to read them", param="capture")
        try:
            return cipher.decrypt(payload[:NONCE], payload[NONCE:], None)
        except Exception:  # noqa: BLE001 - cryptography raises InvalidTag for a wrong key
            raise CaptureError(f"{self.path}: the key in {self.key_env} does not decrypt {kind} {ident}",
                               param="capture") from None


def secure_connect(path: Path, **kwargs) -> sqlite3.Connection:
    """A SQLite connection with `secure_delete` on: deleted rows and freed pages are overwritten with zeros,
    not left readable in the file."""
    db = sqlite3.connect(str(path), **kwargs)
    db.execute("PRAGMA secure_delete=ON")
    return db


def checkpoint(db: sqlite3.Connection) -> None:
    """After a deletion in WAL mode: copy the WAL into the database and truncate it to zero bytes, so the
    frames that held the deleted rows (their insert included) are gone too. Best effort: a reader in
    another process holding an old snapshot keeps the WAL until a later checkpoint."""
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


class CaptureStore:
    def __init__(self, path: Path, *, key_env: str | None = None, retention_days: float | None = None,
                 expire_every_s: float | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():  # created private before SQLite ever opens it
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        try:
            self.db = secure_connect(self.path, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise CaptureError(f"{self.path} is not a usable capture database ({e})", param="capture") from None
        for suffix in ("-wal", "-shm"):  # SQLite creates these with the process umask
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                os.chmod(side, 0o600)
        self.sealer = Sealer(self.path, key_env)  # encryption at rest
        self.retention_days = retention_days
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._expirer: threading.Thread | None = None
        self.expire()
        if retention_days:  # and then periodically while open, not only at start-up
            every = expire_every_s if expire_every_s is not None else max(
                1.0, min(MAX_EXPIRE_EVERY_S, retention_days * 86400 / 24))
            self._expirer = threading.Thread(target=_expire_loop, args=(weakref.ref(self), self._stop, every),
                                             name=f"capture-expire:{self.path.name}", daemon=True)
            self._expirer.start()
            weakref.finalize(self, self._stop.set)  # a store collected unclosed ends its thread too

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
        scheme, payload = self.sealer.seal(
            json.dumps({"request": call.get("request"), "response": call.get("response")}).encode())
        with self._lock:
            cur = self.db.execute(
                "INSERT INTO calls (created, source, client, model, adapter, latency_s, finish_reason, encrypted, "
                "payload, route) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (call.get("created", time.time()), call.get("source", "serve"), call.get("client"), call.get("model"),
                 call.get("adapter"), call.get("latency_s"), call.get("finish_reason"),
                 scheme, payload, json.dumps(call["route"]) if call.get("route") else None))
            return int(cur.lastrowid or 0)

    def expire(self) -> int:
        """Delete calls older than the retention limit, and every copy of them (see `checkpoint`);
        returns how many."""
        if not self.retention_days:
            return 0
        with self._lock:
            cur = self.db.execute("DELETE FROM calls WHERE created < ?", (time.time() - self.retention_days * 86400,))
            if cur.rowcount > 0:
                checkpoint(self.db)
            return cur.rowcount

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM calls").fetchone()[0])

    def calls(self) -> Iterator[dict]:
        """Every stored call, oldest first, with its payload decrypted."""
        rows = self.db.execute("SELECT id, created, source, client, model, adapter, latency_s, finish_reason, "
                               "encrypted, payload FROM calls ORDER BY id")
        for cid, created, source, client, model, adapter, latency, finish, encrypted, payload in rows:
            body = json.loads(self.sealer.unseal(encrypted, payload, "call", cid))
            yield {"id": cid, "created": created, "source": source, "client": client, "model": model,
                   "adapter": adapter, "latency_s": latency, "finish_reason": finish, **body}

    def close(self) -> None:
        """Stop the periodic expiry (waiting for a round in progress) and close the database."""
        self._stop.set()
        if self._expirer is not None and self._expirer is not threading.current_thread():
            self._expirer.join()
        with self._lock:
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
