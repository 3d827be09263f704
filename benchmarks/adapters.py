"""Adapter costs on the llama.cpp backend, in one run on the embedded model.

    python -m benchmarks.adapters [--runs 5] [--tokens 128] [--threads N] [--rank 16]

- switch cost: `set_adapters` between two resident adapters (llama_set_adapters_lora plus dropping the
  prefix cache), excluding the prefill of uncached tokens that follows; target <= 5 ms;
- decode slowdown: greedy decode tok/s with one unmerged adapter vs the base, runs alternating;
  target <= 10%;
- memory per resident adapter: RSS growth when an adapter is first applied, and its file size.
The adapters are two rank-R LoRAs on q/k/v/o of every layer with random weights, converted by edgeslm's
own PEFT -> GGUF writer (costs do not depend on what the weights learned). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import psutil

from benchmarks._chart import bars
from benchmarks._lora import GEMMA_270M, write_peft
from edgeslm import device
from edgeslm.backends import open_backend
from edgeslm.config import Settings
from edgeslm.decoding.sampler import Sampler
from edgeslm.store.lora_gguf import convert
from edgeslm.store.registry import Catalog


def decode_tps(b, prompt: list[int], n: int) -> float:
    b.reset()
    b.prefill(prompt)
    s = Sampler(0.0, 1.0, None)
    t0 = time.perf_counter()
    for _ in range(n):
        b.decode([s.sample(b.logits(), None)])
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--chart", type=Path, default=Path("benchmarks/results/adapters.png"))
    args = ap.parse_args(argv)
    threads = args.threads or device.default_threads()
    cat = Catalog(Settings())
    base_path = cat.ensure_local(cat.get("default"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        loras = []
        for name, seed in (("a", 1), ("b", 2)):
            out = tmp / f"{name}.gguf"
            convert(write_peft(tmp / name, rank=args.rank, modules=tuple(GEMMA_270M), seed=seed, scale=0.02),
                    base_path, out)
            loras.append(out)
        b = open_backend(base_path, "gguf", n_ctx=2048, n_threads=threads)
        prompt = b.tokenize("Write a long story about a lighthouse keeper.", add_bos=True)
        proc = psutil.Process()
        rss = []
        for lora in loras:  # first use loads it: the RSS growth is what a resident adapter costs
            before = proc.memory_info().rss
            b.set_adapters([(lora, 1.0)])
            b.prefill(prompt)
            rss.append(proc.memory_info().rss - before)
        switch = []
        for i in range(50):
            t0 = time.perf_counter()
            b.set_adapters([(loras[i % 2], 1.0)])
            switch.append((time.perf_counter() - t0) * 1000)
        base_tps, lora_tps = [], []
        for _ in range(args.runs):
            b.set_adapters([])
            base_tps.append(decode_tps(b, prompt, args.tokens))
            b.set_adapters([(loras[0], 1.0)])
            lora_tps.append(decode_tps(b, prompt, args.tokens))
        b.close()
        size = loras[0].stat().st_size
    fig = {
        "switch_ms_median": statistics.median(switch), "switch_ms_p90": statistics.quantiles(switch, n=10)[8],
        "decode_base_tps": statistics.median(base_tps), "decode_adapter_tps": statistics.median(lora_tps),
        "rss_per_adapter_mib": statistics.median(rss) / 2**20, "adapter_file_mib": size / 2**20,
    }
    fig["decode_slowdown"] = 1 - fig["decode_adapter_tps"] / fig["decode_base_tps"]
    print(f"{'switch between two resident adapters':45s} {fig['switch_ms_median']:.3f} ms (p90 {fig['switch_ms_p90']:.3f})")
    print(f"{'decode, base':45s} {fig['decode_base_tps']:.1f} tok/s")
    print(f"{'decode, one unmerged adapter (rank ' + str(args.rank) + ')':45s} {fig['decode_adapter_tps']:.1f} tok/s "
          f"(slowdown {fig['decode_slowdown']:.1%})")
    print(f"{'memory per resident adapter':45s} {fig['rss_per_adapter_mib']:.1f} MiB RSS "
          f"(file {fig['adapter_file_mib']:.1f} MiB)")
    bars(args.chart, f"Adapter costs (Gemma 3 270M, rank {args.rank}, {threads} threads)", ["decode tok/s"],
         {"base": [fig["decode_base_tps"]], "with adapter": [fig["decode_adapter_tps"]]}, "tokens/s")
    print(json.dumps({"benchmark": "adapters", "machine": {"platform": platform.platform(), **device.describe()},
                      "model": "gemma-3-270m-q4_k_m", "threads": threads, "rank": args.rank, "runs": args.runs,
                      **fig, "base_tps": base_tps, "adapter_tps": lora_tps}))


if __name__ == "__main__":
    main()
