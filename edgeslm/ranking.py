"""How relevant each offered tool is to a request, for the request lean (decoding/copying.py).

Owns the tool ranker's state: the vectors of tools and requests in memory, and the tools' vectors
(never a request's) on disk under the cache, so the first request after a restart does not embed an
agent's tools again.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgeslm.backends.embedding import Embedder
from edgeslm.decoding import said

log = logging.getLogger("edgeslm.ranking")


class ToolRanker:
    """How relevant each offered tool is to a request, for the tool lean (decoding/copying.py): the cosine
    of the shipped MiniLM's vectors of the request and of each tool's name and description, as
    exp((cos - best) / TAU), so the best tool has 1 and one 0.05 behind it 0.37; the best cosine is the
    request's fit, for the call lean. Where MiniLM is not
    installed (it comes with the `pipeline` extra), the tools rank by shared words instead. A tool's
    vector is kept: an agent sends the same tools with every request. Tools' vectors (never a request's)
    are kept on disk in `store` too, so the first request after a restart does not embed them again
    (24 tools: ~0.25 s here)."""

    TAU, KEEP = 0.05, 4096

    def __init__(self, embedder: Callable[[], Embedder], store: Path | None = None):
        self._embedder, self._lock = embedder, threading.Lock()
        self._vectors: OrderedDict[str, list[float]] = OrderedDict()
        self._broken: str | None = None  # why MiniLM cannot serve (then: shared words)
        self._store, self._saved = store, 0

    def _file(self, e: Embedder, text: str) -> Path | None:
        if self._store is None:
            return None
        key = hashlib.sha256(f"{e.name}|{e.dims}|{e.n_vocab}|{text}".encode()).hexdigest()[:32]
        return self._store / f"{key}.f64"

    def _read(self, e: Embedder, text: str) -> list[float] | None:
        path = self._file(e, text)
        try:
            v = np.fromfile(path, dtype="<f8") if path is not None and path.is_file() else None
        except OSError:
            return None
        return v.tolist() if v is not None and len(v) == e.dims else None

    def _write(self, e: Embedder, text: str, v: list[float]) -> None:
        path = self._file(e, text)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
            np.asarray(v, dtype="<f8").tofile(tmp)
            os.replace(tmp, path)
            with self._lock:  # requests are prepared on several threads at once
                self._saved += 1
                prune = self._saved % 256 == 0
            if prune:  # bounded like the memory's: the least recently written go
                files = sorted(path.parent.glob("*.f64"), key=lambda p: p.stat().st_mtime)
                for old in files[: max(len(files) - self.KEEP, 0)]:
                    old.unlink(missing_ok=True)
        except OSError as err:  # a cache: a full or read-only disk only costs the embedding next time
            log.debug("tool vector not kept on disk: %s", err)

    def _vector(self, e: Embedder, text: str, keep: bool = False) -> list[float]:
        with self._lock:
            if text in self._vectors:
                self._vectors.move_to_end(text)
                return self._vectors[text]
        v = self._read(e, text) if keep else None
        if v is None:
            v = e.embed([e.tokenize(text)[: e.n_ctx] or e.tokenize(".")])[0]
            if keep:
                self._write(e, text, v)
        with self._lock:
            self._vectors[text] = v
            while len(self._vectors) > self.KEEP:
                self._vectors.popitem(last=False)
        return v

    def warm(self) -> None:
        """Load MiniLM now (`serve` starts this on a thread), so that the first request after a start
        does not wait for it; a failure is what a request would meet (then: shared words)."""
        if self._broken is None:
            try:
                self._embedder()
            except Exception as e:  # noqa: BLE001 - as in __call__
                self._unavailable(e)

    def _unavailable(self, e: Exception) -> None:
        self._broken = f"{type(e).__name__}: {e}"
        log.warning("tool ranking by MiniLM unavailable (%s); ranking tools by shared words", self._broken)

    def __call__(self, request: str, tools: list) -> said.Ranking:
        if self._broken is None:
            try:
                e = self._embedder()
                vectors = {t.name: self._vector(e, f"{t.name.replace('_', ' ').replace('.', ' ')}: "
                                                   f"{t.description or ''}", keep=True) for t in tools}
                relevance, fit = self._rank(e, request, vectors)
                parts = said.clauses(request) if len(tools) > 1 else []
                # each clause of a request that asks for several calls, for the calls after the first
                # (copying.Copier): on BFCL's training part, the clause whose own values no call has
                # written yet names a tool still due in 0.78 of later calls (the whole request: 0.55)
                ranked = tuple((vs, self._rank(e, part, vectors)[0]) for vs, part in
                               zip(said.own_values(request, parts), parts, strict=True) if vs) if len(parts) > 1 else ()
                return said.Ranking(relevance, fit, ranked)
            except Exception as e:  # noqa: BLE001 - the lean is a help, never a reason to fail a request
                self._unavailable(e)
        return said.by_words(request, tools)

    def _rank(self, e: Embedder, request: str, vectors: dict[str, list[float]]) -> tuple[dict[str, float], float]:
        """Each tool's relevance and the best cosine. The request as written and without its values
        (said.unvalued), each tool by the nearer: on BFCL's training part this ranks the gold tool first
        in 0.993 of `multiple` (0.979 by the request alone) and tells a request a tool answers from one
        none does better (AUC 0.950 vs 0.940)."""
        asks = [self._vector(e, text) for text in dict.fromkeys((request, said.unvalued(request))) if text]
        cos = {n: max(sum(a * b for a, b in zip(q, v, strict=True)) for q in asks) for n, v in vectors.items()}
        best = max(cos.values())
        return {n: math.exp((c - best) / self.TAU) for n, c in cos.items()}, best
