"""The quality gate: what a conversion lost, measured against a full-precision reference.

Owns: KL(reference || candidate) and top-1 agreement of the next-token distributions at every position
of fixed texts (neutral ones here, and the adapter's own task data when there is an adapter), the
candidate's decode speed, and the pass/fail thresholds. Reference and candidate are scored text by text,
side by side, so no more than one text's logits (positions x 262k vocabulary) is ever held.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgeslm.backends import open_backend

# loss beyond either bound fails the gate (the measured Q4_K_M base: KL 0.004 against F16;
# a LoRA merged and then quantized to Q4_K_M: KL 1.41, top-1 59% on its task)
MAX_KL = 0.05
MIN_TOP1 = 0.90
MAX_TOKENS = 96  # per text

NEUTRAL = [
    ("The history of the lighthouse begins in the ancient world, where fires burned on hilltops to guide "
    "ships into harbour at night. The most famous was the Pharos of Alexandria."),
    ("To make a simple bread, mix flour, water, salt and yeast, knead the dough for ten minutes, let it "
    "rise for an hour, shape it, and bake it in a hot oven until the crust is brown."),
    "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    '{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}',
    ("Photosynthesis converts light energy into chemical energy: plants take in carbon dioxide and water "
    "and release oxygen, storing the energy in sugars."),
    "Q: What is the capital of Japan?\nA: Tokyo.\nQ: What is the largest planet in the solar system?\nA:",
    ("SELECT customers.name, SUM(orders.total) FROM customers JOIN orders ON orders.customer_id = "
    "customers.id GROUP BY customers.name ORDER BY 2 DESC LIMIT 10;"),
    ("Dear team, the meeting has moved to Thursday at 3 pm. Please bring the quarterly figures and your "
    "notes on the new schedule. Thanks, Maria"),
    ("The mitochondrion is an organelle found in most eukaryotic cells. It produces most of the cell's "
    "supply of adenosine triphosphate, used as a source of chemical energy."),
    ("In 1969, Apollo 11 landed on the Moon. Neil Armstrong and Buzz Aldrin walked on the surface while "
    "Michael Collins orbited above in the command module."),
    ("Steps to reset the router: unplug it, wait thirty seconds, plug it back in, and wait until the "
    "status light turns green before reconnecting your devices."),
    ("The function returns a list of tuples, each holding a word and the number of times it appears, "
    "sorted from the most frequent to the least frequent word."),
]


@dataclass
class Quality:
    kl: float  # mean KL(reference || candidate) per position, nats
    top1: float  # share of positions where both pick the same next token
    max_abs: float  # largest |logit difference| seen
    positions: int

    @property
    def passes(self) -> bool:
        return self.kl <= MAX_KL and self.top1 >= MIN_TOP1

    def to_json(self) -> dict:
        return {**asdict(self), "passes": self.passes}


class _Tally:
    def __init__(self):
        self.kl, self.agree, self.n, self.worst = 0.0, 0, 0, 0.0

    def add(self, r: np.ndarray, c: np.ndarray) -> None:
        # float32 with float64 sums: one text is 96 x 262k logits, and float64 throughout took twice as
        # long for the same KL to 5 significant digits (a quantize run scores 12+ texts per candidate).
        # KL(p_r || p_c) per row = sum(e_r * (z_r - z_c)) / Z_r - log Z_r + log Z_c, with z = x - max(x)
        # and e_r = exp(z_r): one exp of each side and no probability array of the candidate's
        self.agree += int((r.argmax(axis=1) == c.argmax(axis=1)).sum())
        zr = np.array(r, dtype=np.float32, copy=True)
        zr -= zr.max(axis=1, keepdims=True)
        zc = np.array(c, dtype=np.float32, copy=True)
        zc -= zc.max(axis=1, keepdims=True)
        er = np.exp(zr)
        z_r = er.sum(axis=1, dtype=np.float64)
        zr -= zc
        cross = np.einsum("ij,ij->i", er, zr, dtype=np.float64)
        np.exp(zc, out=zc)
        z_c = zc.sum(axis=1, dtype=np.float64)
        self.kl += float((cross / z_r - np.log(z_r) + np.log(z_c)).sum())
        self.worst = max(self.worst, float(np.abs(np.subtract(r, c, dtype=np.float32)).max()))
        self.n += len(r)

    def result(self) -> Quality:
        return Quality(self.kl / max(self.n, 1), self.agree / max(self.n, 1), self.worst, self.n)


def compare(ref: list[np.ndarray], cand: list[np.ndarray]) -> Quality:
    """KL and top-1 agreement between per-position logits (lists of (positions, vocab) arrays)."""
    t = _Tally()
    for r, c in zip(ref, cand, strict=False):
        t.add(r, c)
    return t.result()


class Scorer:
    """A GGUF (with adapters applied) that returns per-position logits of texts."""

    def __init__(self, path: Path, adapters: list[tuple[Path, float]] | tuple = (), threads: int = 2, fmt: str = "gguf",
                 gpu_layers: int = 0):
        self.gpu_layers = gpu_layers
        extra = {"n_gpu_layers": gpu_layers} if fmt == "gguf" else {}
        self.b = open_backend(Path(path), fmt, n_ctx=MAX_TOKENS + 32, n_threads=threads, **extra)
        if adapters:
            self.b.set_adapters(list(adapters))

    def logits(self, text: str) -> np.ndarray:
        return self.b.score(self.b.tokenize(text, add_bos=True)[:MAX_TOKENS])

    def decode_tps(self, n: int = 64) -> float:
        """Greedy decode speed after a short prompt."""
        self.b.prefill(self.b.tokenize(NEUTRAL[0], add_bos=True))
        t0 = time.perf_counter()
        for _ in range(n):
            self.b.decode([int(np.argmax(self.b.logits()))])
        return n / (time.perf_counter() - t0)

    def close(self) -> None:
        self.b.close()


def measure(ref: Scorer, cand: Scorer, texts: list[str]) -> Quality:
    t = _Tally()
    for text in texts:
        t.add(ref.logits(text), cand.logits(text))
    return t.result()
