"""The prefix cache on disk: KV states of long prompts, kept across restarts under HOME/prefixes, so an
agent's first call after a restart does not pay its system prompt and tool list again.

Owns the files and what may be loaded from them:
- **Keys.** An entry is usable only under the identity it was made with (edgeslm and llama.cpp versions
  and build, the model file, the adapter set and its files, the context parameters), compared field by
  field, so a refusal names what differs. Tokens are matched as a chain of hashes over blocks of
  BLOCK tokens (as vLLM keys its prefix blocks): an entry serves the longest run of whole blocks it shares
  with a prompt, and no token or text is written in the clear.
- **Never wrong.** A file whose header, length or SHA-256 does not check out, or that another identity
  made, is a miss: logged, and a damaged file is removed. Nothing unchecked is handed to the backend.
- **Writes** go to a temporary file, are fsynced and renamed into place, on a writer thread (the worker
  only copies the state out). **Size** is bounded by `max_bytes`; the least recently used entries leave.
- The index is read on first use, so loading a model costs nothing more.

Knows nothing of llama.cpp: the caller hands over state bytes and loads what it gets back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeslm.config import Settings
from edgeslm.types import common_prefix

log = logging.getLogger("edgeslm.prefixes")
MAGIC = b"EDGESLM-KV 1\n"
BLOCK = 16  # tokens per hashed block: a restore recomputes at most BLOCK - 1 tokens of what it shares


def block_hashes(tokens: list[int]) -> list[str]:
    """One hash per whole block of `tokens`, each chained to the one before (a prefix's identity)."""
    out, h = [], b""
    for i in range(0, len(tokens) - BLOCK + 1, BLOCK):
        h = hashlib.sha256(h + struct.pack(f"<{BLOCK}i", *tokens[i : i + BLOCK])).digest()[:16]
        out.append(h.hex())
    return out


@dataclass
class Entry:
    name: str
    ident: dict
    blocks: list[str]
    n_tokens: int
    n_bytes: int
    sha256: str
    used: float  # last use (file mtime): least recently used leaves first


@dataclass
class Hit:
    entry: Entry
    data: bytes
    tokens: int  # how many leading tokens of the prompt the entry holds (whole blocks)


class PrefixStore:
    def __init__(self, root: Path, max_bytes: int, min_tokens: int = 256):
        self.root, self.max_bytes, self.min_tokens = Path(root), max_bytes, min_tokens
        self._index: dict[str, Entry] | None = None
        self._lock = threading.Lock()  # the index, between the worker and the writer thread
        self._refused: set[tuple[str, str]] = set()  # (entry, reason) already logged
        self._writes: queue.Queue = queue.Queue()
        self._writer: threading.Thread | None = None
        self.stats = {"restored": 0, "saved": 0, "refused": 0}

    @classmethod
    def of(cls, settings: Settings) -> PrefixStore:
        """The store `serve` keeps under HOME/prefixes, bounded as the settings say."""
        return cls(settings.home / "prefixes", settings.prefix_disk_mb << 20, settings.prefix_disk_min_tokens)

    # ---- reading -------------------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        with self._lock:
            return sorted(self._load_index().values(), key=lambda e: -e.used)

    def _load_index(self) -> dict[str, Entry]:
        if self._index is None:
            self._index = {}
            for p in self.root.glob("*.kv") if self.root.is_dir() else ():
                try:
                    e = _read_header(p)
                except (OSError, ValueError) as err:
                    log.warning("prefix cache: %s is unreadable (%s): removed", p.name, err)
                    p.unlink(missing_ok=True)
                    continue
                self._index[e.name] = e
            for p in self.root.glob("*.tmp") if self.root.is_dir() else ():  # a write cut off by a crash
                p.unlink(missing_ok=True)
        return self._index

    def lookup(self, ident: dict, tokens: list[int], at_least: int, room: int | None = None) -> Hit | None:
        """The checked state of the entry sharing the most whole blocks with `tokens` (more than
        `at_least` tokens), made under `ident`, and holding at most `room` tokens (the free KV cells: a
        state is loaded whole before it is cut to what it shares); None (logged) when none is usable."""
        if self.max_bytes <= 0:
            return None
        want = block_hashes(tokens)
        with self._lock:
            ranked = sorted(((common_prefix(e.blocks, want), e) for e in self._load_index().values()),
                            key=lambda x: -x[0])
        others = []  # entries made under another identity: said only when nothing loads (a model served
        # with and without its adapter, or from a folded copy, keeps entries under each)
        for n, e in ranked:
            if n * BLOCK <= at_least:
                break
            if room is not None and e.n_tokens > room:  # not read from disk only to be thrown away
                continue
            diff = sorted(k for k in {*ident, *e.ident} if ident.get(k) != e.ident.get(k))
            if diff:
                others.append((e, "made under another " + ", ".join(diff) + " (" + "; ".join(
                    f"{k}: {_short(e.ident.get(k))} here {_short(ident.get(k))}" for k in diff) + ")"))
                continue
            data = self._read_data(e)
            if data is not None:
                os.utime(self.root / e.name)  # recently used
                e.used = time.time()
                return Hit(e, data, n * BLOCK)
        for e, why in others:
            self._refuse(e, why)
        return None

    def _read_data(self, e: Entry) -> bytes | None:
        path = self.root / e.name
        try:
            with open(path, "rb") as f:
                f.seek(_data_offset(f))
                data = f.read(e.n_bytes + 1)
        except (OSError, ValueError) as err:
            return self._damaged(e, f"unreadable ({err})")
        if len(data) != e.n_bytes:
            return self._damaged(e, f"{len(data)} bytes of state where its header says {e.n_bytes} (truncated?)")
        if hashlib.sha256(data).hexdigest() != e.sha256:
            return self._damaged(e, "its state fails its SHA-256 (corrupt)")
        return data

    def _damaged(self, e: Entry, why: str) -> bytes | None:
        self._refuse(e, why + ": removed")
        with self._lock:
            (self._index or {}).pop(e.name, None)
        (self.root / e.name).unlink(missing_ok=True)
        return None

    def _refuse(self, e: Entry, why: str) -> None:
        self.stats["refused"] += 1
        if (e.name, why) not in self._refused:
            self._refused.add((e.name, why))
            log.warning("prefix cache: %s not loaded: %s", e.name, why)

    def refused_load(self, e: Entry, why: str) -> None:
        """The backend would not take a checked state (`why`): a miss, and the entry leaves."""
        self._damaged(e, why)

    # ---- writing -------------------------------------------------------------------------------

    def offer(self, ident: dict, tokens: list[int], state: Callable[[], bytes]) -> bool:
        """Keep the state of `tokens` (computed under `ident`) unless an entry already holds nearly all
        of it; `state` copies it out of the backend (called here, on the caller's thread). The file is
        written on the writer thread."""
        if self.max_bytes <= 0 or len(tokens) < self.min_tokens:
            return False
        want = block_hashes(tokens)
        with self._lock:
            for e in self._load_index().values():
                if e.ident == ident and (len(want) - common_prefix(e.blocks, want)) * BLOCK < self.min_tokens:
                    return False
        data = state()
        if not data or len(data) > self.max_bytes:
            return False
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name="prefix-writer", daemon=True)
            self._writer.start()
        self._writes.put((ident, want, len(tokens), data))
        return True

    def _write_loop(self) -> None:
        while True:
            item = self._writes.get()
            try:
                if item is None:
                    return
                self._write(*item)
            except OSError as e:  # a full or read-only disk costs the cache, never the request
                log.warning("prefix cache: could not write an entry (%s)", e)
            finally:
                self._writes.task_done()

    def _write(self, ident: dict, blocks: list[str], n_tokens: int, data: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        sha = hashlib.sha256(data).hexdigest()
        name = sha[:32] + ".kv"
        header = json.dumps({"ident": ident, "blocks": blocks, "n_tokens": n_tokens, "n_bytes": len(data),
                             "sha256": sha}).encode()
        tmp = self.root / f".{name}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # derived from prompts: owner only
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + struct.pack("<Q", len(header)) + header)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.root / name)
        dfd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        with self._lock:
            index = self._load_index()
            index[name] = Entry(name, ident, blocks, n_tokens, len(data), sha, time.time())
            self.stats["saved"] += 1
            self._evict(index)

    def _evict(self, index: dict[str, Entry]) -> None:
        total = sum(e.n_bytes for e in index.values())
        for e in sorted(index.values(), key=lambda e: e.used):
            if total <= self.max_bytes:
                break
            (self.root / e.name).unlink(missing_ok=True)
            del index[e.name]
            total -= e.n_bytes

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until queued writes are on disk (bounded: a stuck disk does not hold a shutdown)."""
        end = time.monotonic() + timeout
        while self._writes.unfinished_tasks and time.monotonic() < end:
            time.sleep(0.01)

    def close(self) -> None:
        if self._writer is not None:
            self.flush()
            self._writes.put(None)
            self._writer.join(timeout=5)
            self._writer = None

    def clear(self) -> int:
        """Remove every entry; returns how many bytes were freed."""
        with self._lock:
            freed = sum(e.n_bytes for e in self._load_index().values())
            for p in [*self.root.glob("*.kv"), *self.root.glob("*.tmp")] if self.root.is_dir() else []:
                p.unlink(missing_ok=True)
            self._index = {}
        return freed


def _data_offset(f) -> int:
    head = f.read(len(MAGIC) + 8)
    if len(head) < len(MAGIC) + 8 or not head.startswith(MAGIC):
        raise ValueError("not an edgeslm prefix cache file (or another format version)")
    (n,) = struct.unpack("<Q", head[len(MAGIC):])
    if n > 64 << 20:
        raise ValueError("header too large")
    return len(MAGIC) + 8 + n


def _read_header(p: Path) -> Entry:
    with open(p, "rb") as f:
        start = _data_offset(f)
        f.seek(len(MAGIC) + 8)
        h = json.loads(f.read(start - len(MAGIC) - 8))
    try:
        return Entry(p.name, dict(h["ident"]), list(h["blocks"]), int(h["n_tokens"]), int(h["n_bytes"]),
                     str(h["sha256"]), p.stat().st_mtime)
    except (KeyError, TypeError) as e:
        raise ValueError(f"header lacks {e}") from e


def _short(v) -> str:
    s = json.dumps(v) if not isinstance(v, str) else v
    return s if len(s) <= 60 else s[:57] + "..."
