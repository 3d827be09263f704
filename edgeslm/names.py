"""Person names in free text, the tenth kind S2 removes (PERSON_NAME): a small classifier over each word,
reading the embedded model's own hidden states (Gemma 3 270M: cased and multilingual, where the router's
MiniLM is neither) and the word's shape. No list of names is used when it runs: a name is found by how the
sentence treats it, so a name no list holds is found as well as a common one.

Owns the words of a text, their features (the same for training and use), the probe's weights
(`assets/names/probe.npz`, trained by `python -m benchmarks.names_gemma --export`) and the spans it
finds. The model loads with transformers on first use (the dequantized copy the trainer also reads);
curation calls it (`privacy.Redactor(names=...)`), serve's per-request redaction does not: a forward pass
per request is more than a proxy should add.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from pathlib import Path

import numpy as np

WEIGHTS = Path(__file__).resolve().parent / "assets" / "names" / "probe.npz"
LAYERS = (6, 12)  # of Gemma 3 270M's 18: the middle and two thirds up (the probe's exploration, names_gemma)
THRESHOLD = 0.5  # the 5 members' mean; 0.4 found 0.9 point more names and 1.6 points more false ones (session 31)
JOIN = 0.2  # a word beside a name joins it at this (see `spans`)
# a capitalized word given this somewhere is carried across a store (curate.store_names): on the convert
# workload, 0.95 caught 18 more names where they recur at unchanged precision, 0.5 doubled the false ones
SURE = 0.95
KIND = "PERSON_NAME"
WORD = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*\.?")
# words that join a name's parts ("Ana de la Cruz", "Ibn Battuta"): inside a name, they belong to it
PARTICLES = frozenset({"van", "der", "de", "la", "bin", "von", "da", "del", "al", "ní", "ó", "mac", "le", "di", "dos",
                       "das", "y", "ibn", "bint"})
SHAPE = 10  # shape features per word


def words(text: str) -> list[tuple[int, int]]:
    """(start, end) of each word: letters, with inner apostrophes and hyphens ("O'Neill", "Jean-Luc"), a
    final period and a possessive 's left out."""
    out = []
    for m in WORD.finditer(text):
        a, b = m.start(), m.end()
        if text[a:b].endswith("."):
            b -= 1
        for suffix in ("'s", "’s"):
            if text[a:b].endswith(suffix):
                b -= 2
        if b > a:
            out.append((a, b))
    return out


def _shape(text: str, ws: list[tuple[int, int]], i: int) -> list[float]:
    a, b = ws[i]
    w = text[a:b]
    before = text[ws[i - 1][0]:ws[i - 1][1]] if i else ""
    after = text[ws[i + 1][0]:ws[i + 1][1]] if i + 1 < len(ws) else ""
    first = i == 0 or text[max(0, a - 2):a].strip() in (".", "!", "?", ":")
    return [w[:1].isupper(), w.isupper() and len(w) > 1, w.islower(), first, len(w) / 10, before[:1].isupper(),
            after[:1].isupper(), "-" in w, w.lower() in PARTICLES, text[b:b + 2] in ("'s", "’s")]


def features(text: str, states: np.ndarray, offsets: list[tuple[int, int]]) -> tuple[list[tuple[int, int]], np.ndarray]:
    """(words, one row per word): the mean and the last of the word's tokens' states (`states`: one row per
    token, the LAYERS side by side), its shape; then the next word's state (a causal model's states see
    only what is left of them) and both neighbours' shapes."""
    ws = words(text)
    d = 2 * states.shape[1]
    rows = []
    for i, (a, b) in enumerate(ws):
        idx = [j for j, (x, y) in enumerate(offsets) if y > x and x < b and y > a]
        state = np.concatenate([states[idx].mean(0), states[idx[-1]]]) if idx else np.zeros(d, np.float32)
        rows.append(np.concatenate([state, np.asarray(_shape(text, ws, i), np.float32)]))
    if not rows:
        return ws, np.zeros((0, 2 * d + 3 * SHAPE), np.float32)
    x = np.stack(rows).astype(np.float32)
    pad = np.zeros((1, x.shape[1]), np.float32)
    nxt, prev = np.concatenate([x[1:], pad]), np.concatenate([pad, x[:-1]])
    return ws, np.concatenate([x, nxt[:, :d], nxt[:, d:], prev[:, d:]], 1)


def spans(text: str, ws: list[tuple[int, int]], p, threshold: float = THRESHOLD) -> list[tuple[int, int]]:
    """Runs of words the probe gives `threshold` or more, with only whitespace between. Particles between
    two such words join them ("Ana de la Cruz"); then a name takes in each word beside it that the probe
    gives JOIN or more, written as its neighbour is (both capitalized, or both not) with one space
    between: "Sakura" of "Sakura Yamamoto", where the probe was sure of "Yamamoto" only. Last, a run
    written partly in lower case keeps only its other words and the particles between them."""
    p = [float(x) for x in p]
    n = len(ws)
    spaced = [not text[ws[i][1]:ws[i + 1][0]].strip() for i in range(n - 1)]  # only whitespace after word i
    mark = [x >= threshold for x in p]
    i = 0
    while i < n:
        j = i
        while j < n and not mark[j] and text[ws[j][0]:ws[j][1]].lower() in PARTICLES:
            j += 1
        if j > i and 0 < i and j < n and mark[i - 1] and mark[j] and all(spaced[i - 1:j]):
            mark[i:j] = [True] * (j - i)
        i = j + 1 if j > i else i + 1
    grown = True
    while grown:
        grown = False
        for j in range(n):
            if mark[j] or p[j] < JOIN:
                continue
            for k in (j - 1, j + 1):
                if 0 <= k < n and mark[k] and text[ws[min(j, k)][1]:ws[max(j, k)][0]] == " " \
                        and text[ws[j][0]].isupper() == text[ws[k][0]].isupper():
                    mark[j] = grown = True
                    break
    # one name is written one way: in a run with a word not all in lower case ("Jürgen", "al-Rashid", "王伟"),
    # a lower-case word that is no particle is not part of it ("Jürgen en mi calendario"), and a lower-case
    # particle left at a run's edge goes too
    lower = [text[a:b].islower() for a, b in ws]
    particle = [text[a:b].lower() in PARTICLES for a, b in ws]
    i = 0
    while i < n:
        j = i
        while j + 1 < n and mark[j] and mark[j + 1] and spaced[j]:
            j += 1
        if mark[i] and not all(lower[i:j + 1]):
            for k in range(i, j + 1):
                mark[k] = not lower[k] or particle[k]
            edge = True
            while edge:
                edge = False
                for k in range(i, j + 1):
                    if mark[k] and lower[k] and (k == i or not mark[k - 1] or k == j or not mark[k + 1]):
                        mark[k], edge = False, True
        i = j + 1
    out: list[tuple[int, int]] = []
    for i in range(n):
        if not mark[i]:
            continue
        if i and mark[i - 1] and spaced[i - 1]:
            out[-1] = (out[-1][0], ws[i][1])
        else:
            out.append(ws[i])
    return out


class Probe:
    """The classifier: the mean of a few small MLPs (one hidden ReLU layer, a logistic output; weights from
    scikit-learn, trained from different seeds), whose single fits vary more than their mean does."""

    def __init__(self, path: Path = WEIGHTS):
        with np.load(path) as z:
            w1, b1, w2, b2 = (z[k].astype(np.float32) for k in ("w1", "b1", "w2", "b2"))
        if w1.ndim == 2:  # one member
            w1, b1, w2, b2 = w1[None], b1[None], w2[None], b2[None]
        self.members = list(zip(w1, b1, w2, b2, strict=True))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros(len(x), np.float32)
        for w1, b1, w2, b2 in self.members:
            h = np.maximum(x @ w1 + b1, 0)
            out += 1 / (1 + np.exp(-np.clip(h @ w2 + b2, -60, 60)[:, 0]))
        return out / len(self.members)


class Finder:
    """Person names in text: `find(text)` (or calling it) -> [(start, end)]; `sure(text)`: the capitalized
    words, in a name or not, the probe gives SURE or more. The model loads on first use, once."""

    def __init__(self, settings=None, weights: Path = WEIGHTS, threshold: float = THRESHOLD):
        self.settings, self.weights, self.threshold = settings, weights, threshold
        self._lock = threading.Lock()
        self._model = self._tok = self._probe = None
        self._seen: dict[str, list] | None = None  # text digest -> [spans, sure words] (`_kept`)
        self._file: Path | None = None

    def _kept(self) -> dict[str, list]:
        """The spans (and sure words) found before, by the text's digest: a JSON line each under the cache, in a file of
        this probe, threshold and source (curation runs again on every `convert run`, and most of its
        texts were read before). Only digests and offsets are kept, nothing of the text."""
        if self._seen is None:
            from edgeslm.config import get_settings

            h = hashlib.sha256(self.weights.read_bytes() if self.weights.is_file() else b"")
            h.update(f"{self.threshold}".encode() + Path(__file__).read_bytes())
            self._file = (self.settings or get_settings()).cache / "names" / f"spans-{h.hexdigest()[:16]}.jsonl"
            self._seen = {}
            if self._file.is_file():
                for line in self._file.read_text().splitlines():
                    try:
                        key, found, sure = json.loads(line)
                    except ValueError:
                        continue  # a line cut short by a stop
                    self._seen[key] = [[tuple(s) for s in found], [tuple(s) for s in sure]]
        return self._seen

    def _load(self):
        with self._lock:
            if self._model is None:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer

                from edgeslm.config import get_settings
                from edgeslm.store.dequantized import checkpoint
                from edgeslm.store.registry import Catalog

                st = self.settings or get_settings()
                cat = Catalog(st)
                folder = checkpoint(cat.ensure_local(cat.get("default")), st.cache)
                self._tok = AutoTokenizer.from_pretrained(folder)
                # the layers up to the last one read, without the head (its 262k-word vocabulary is most of
                # the model's work per token): the same states, about 4x sooner
                base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval().model
                base.layers = base.layers[:max(LAYERS) + 1]
                base.config.num_hidden_layers = len(base.layers)
                self._model = base
                self._probe = Probe(self.weights) if self.weights.is_file() else None
        return self._model, self._tok

    def states(self, text: str) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """The LAYERS' hidden states of `text`, one row per token, and each token's character offsets."""
        import torch

        model, tok = self._load()
        enc = tok(text, return_offsets_mapping=True, return_tensors="pt")
        offsets = [tuple(o) for o in enc.pop("offset_mapping")[0].tolist()]
        with torch.no_grad():
            hidden = model(**enc, output_hidden_states=True).hidden_states
        return torch.cat([hidden[layer][0] for layer in LAYERS], -1).numpy(), offsets

    def find(self, text: str) -> list[tuple[int, int]]:
        return self._found(text)[0]

    __call__ = find

    def sure(self, text: str) -> list[tuple[int, int]]:
        return self._found(text)[1]

    def _found(self, text: str) -> list:
        if not text or not text.strip() or not words(text):
            return [[], []]
        seen, key = self._kept(), hashlib.sha256(text.encode()).hexdigest()[:32]
        if key in seen:
            return seen[key]
        states, offsets = self.states(text)
        if self._probe is None:
            raise FileNotFoundError(f"no names probe at {self.weights}: python -m benchmarks.names_gemma --export")
        ws, x = features(text, states, offsets)
        p = self._probe(x)
        sure = [w for w, q in zip(ws, p, strict=True) if q >= SURE and text[w[0]].isupper()]
        seen[key] = out = [spans(text, ws, p, self.threshold), sure]
        assert self._file is not None
        self._file.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(self._file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as f:  # as the capture's
            f.write(json.dumps([key, *out]) + "\n")
        return out
