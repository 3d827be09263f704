"""Decode and prefill speed of the default model on an idle machine and beside one busy process, under
libgomp's default spin at its barriers (300,000 rounds) and under edgeslm's (GOMP_SPINCOUNT=1000, set in
edgeslm/__init__.py unless the user set it).

    python -m benchmarks.contention [--runs 3] [--threads 2]

Each figure is a fresh process (libgomp reads the setting when it loads) that prefills 256 tokens and
decodes 64 single-token steps on the raw backend, from a worker thread as the server does; medians of
`--runs`, the settings interleaved. The busy process is a Python loop on one core, which is what any
other program on a laptop is. What it shows: how much of the machine the spinning takes from a decode
that shares it. What it cannot: a lighter or heavier neighbour gives other figures. Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._chart import bars


def child(threads: int) -> None:
    import threading

    from edgeslm.backends import open_backend
    from edgeslm.config import Settings
    from edgeslm.store.registry import Catalog

    cat = Catalog(Settings())
    b = open_backend(cat.ensure_local(cat.get("default")), "gguf", n_ctx=1024, n_threads=threads)
    prompt = b.tokenize("The lighthouse keeper climbed the stairs. " * 32, add_bos=True)[:256]
    out: dict = {}

    def run() -> None:
        t = time.perf_counter()
        b.prefill(prompt, 0)
        out["prefill"] = len(prompt) / (time.perf_counter() - t)
        t = time.perf_counter()
        for i in range(64):
            b.decode([1000 + i], 0)
        out["decode"] = 64 / (time.perf_counter() - t)

    th = threading.Thread(target=run)
    th.start()
    th.join()
    b.close()
    print(json.dumps(out))


def measure(spin: str, threads: int) -> dict:
    env = {**os.environ, "GOMP_SPINCOUNT": spin}
    r = subprocess.run([sys.executable, "-m", "benchmarks.contention", "--child", "--threads", str(threads)],
                       env=env, capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--spins", default="300000,1000", help="GOMP_SPINCOUNT values to compare; the first is "
                    "libgomp's default, the second edgeslm's")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/contention.json"))
    args = ap.parse_args(argv)
    if args.child:
        return child(args.threads)
    spins = args.spins.split(",")
    names = [f"GOMP_SPINCOUNT={v}" for v in spins]
    got: dict = {(c, s): [] for c in ("idle", "beside a busy process") for s in names}
    for cond in ("idle", "beside a busy process"):
        busy = None
        if cond != "idle":
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            for i in range(args.runs):
                for name, spin in zip(names, spins, strict=True):
                    got[cond, name].append(measure(spin, args.threads))
                    print(f"{cond:<22} {name:<22} run {i + 1}: decode {got[cond, name][-1]['decode']:.1f} tok/s",
                          flush=True)
        finally:
            if busy:
                busy.kill()
                busy.wait()
    figs = {f"{c}, {s}": {k: statistics.median(x[k] for x in v) for k in ("decode", "prefill")}
            for (c, s), v in got.items()}
    print(f"\n{'':<50}{'decode tok/s':>14}{'prefill tok/s':>15}")
    for k, v in figs.items():
        print(f"{k:<50}{v['decode']:>14.1f}{v['prefill']:>15.1f}")
    d, e = names[0], names[1]
    ratios = {c: figs[f"{c}, {e}"]["decode"] / figs[f"{c}, {d}"]["decode"] for c in ("idle", "beside a busy process")}
    for c, r in ratios.items():
        print(f"decode, {e} / {d}, {c}: {r:.2f}x")
    result = {"benchmark": "contention", "threads": args.threads, "runs": args.runs, "figures": figs,
              "decode_ratio": ratios}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    bars(args.out.with_suffix(".png"), "Decode beside another busy process (medians)", names,
         {c: [figs[f"{c}, {s}"]["decode"] for s in names] for c in ("idle", "beside a busy process")}, "tokens/s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
