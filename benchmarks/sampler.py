"""The fused bitmask + sample kernel (kernels/sample.c) against its numpy reference, on a
262,144-token vocabulary (Gemma 3's), in one run. (Against llama.cpp's own sampler chain, end to
end, see benchmarks.overhead.)

    python -m benchmarks.sampler [--reps 200]

Masks: none, sparse (40 allowed tokens, as inside a JSON value) and half the vocabulary.
Prints ms per call (median) and the kernel's speed-up; last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np

from edgeslm import device
from edgeslm.decoding.sampler import Sampler, kernel_available

N = 262_144


def timeit(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args()
    if not kernel_available():
        raise SystemExit("edgeslm._kernels is not built: reinstall with a C compiler (pip install -e .)")
    rng = np.random.default_rng(0)
    # peaked like real LM logits: a few strong candidates over a long tail
    logits = (rng.standard_normal(N) * 2).astype(np.float32)
    logits[rng.choice(N, 20, replace=False)] += 12
    sparse = np.zeros(N, dtype=bool)
    sparse[rng.choice(N, 40, replace=False)] = True
    half = rng.random(N) < 0.5
    masks = {"none": None, "sparse-40": np.packbits(sparse, bitorder="little").view(np.int32),
             "half": np.packbits(half, bitorder="little").view(np.int32)}
    rows = []
    for temperature, top_p in ((0.0, 1.0), (0.8, 0.95), (0.8, 1.0)):
        for mname, mask in masks.items():
            native, ref = Sampler(temperature, top_p, 1), Sampler(temperature, top_p, 1, use_kernel=False)
            k = timeit(lambda: native.sample(logits, mask), args.reps)
            r = timeit(lambda: ref.sample(logits, mask), max(args.reps // 10, 5))
            rows.append({"temperature": temperature, "top_p": top_p, "mask": mname, "kernel_ms": round(k, 4),
                         "numpy_ms": round(r, 4), "speedup": round(r / k, 2)})
            print(f"T={temperature:<4} top_p={top_p:<5} mask={mname:<10} kernel {k:7.3f} ms   numpy {r:7.3f} ms   "
                  f"x{r / k:5.1f}", flush=True)
    print(json.dumps({"benchmark": "sampler", "machine": {"platform": platform.platform(), **device.describe()},
                      "vocab": N, "rows": rows}))


if __name__ == "__main__":
    main()
