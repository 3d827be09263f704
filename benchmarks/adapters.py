"""Adapter costs on the llama.cpp backend, in one run on the embedded model.

    python -m benchmarks.adapters [--runs 5] [--tokens 128] [--threads N] [--rank 16]

- switch cost between two resident adapters, excluding any prefill: two slots hold a prompt each,
  under adapters A and B; a one-token decode step that switches sets first, minus one that does
  not (this counts llama.cpp's graph re-reserve on the next decode, not only the
  llama_set_adapters_lora call); target <= 5 ms;
- decode slowdown: greedy decode tok/s with one unmerged adapter vs the base, runs alternating;
  target <= 10%;
- memory per resident adapter: RSS growth when an adapter is first applied, and its file size;
- concurrency, through a real `edgeslm serve` and the openai client: 4 clients, each sending
  --requests chat requests back to back, on 4 different adapters vs all 4 on the base, and the base
  again with --parallel 1 (one request at a time, FIFO) for reference: p50/p95 latency and tok/s.
The adapters are two rank-R LoRAs on q/k/v/o of every layer with random weights, converted by edgeslm's
own PEFT -> GGUF writer (costs do not depend on what the weights learned). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path

import psutil

from benchmarks._chart import bars
from benchmarks._lora import GEMMA_270M, write_peft
from benchmarks._server import running_server
from edgeslm import device
from edgeslm.backends import open_backend
from edgeslm.config import Settings
from edgeslm.decoding.sampler import Sampler
from edgeslm.store.adapters import AdapterStore
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


def switch_ms(b, loras: list[Path], prompt: list[int], steps: int = 40) -> float:
    """Median one-token decode step alternating slots under A and B, minus the same on one slot."""
    for seq, lora in enumerate(loras):
        b.set_adapters([(lora, 1.0)])
        b.prefill(prompt, seq)

    def step(seq: int, k: int) -> float:
        t0 = time.perf_counter()
        b.set_adapters([(loras[seq], 1.0)])
        b.decode([1000 + k], seq)
        return time.perf_counter() - t0

    alternating = statistics.median(step(k % 2, k) for k in range(steps))
    staying = statistics.median(step(0, k) for k in range(steps))
    return (alternating - staying) * 1000


def clients(base_url: str, models: list[str], requests: int, tokens: int) -> dict:
    """Each model gets one client thread sending `requests` requests back to back."""
    from openai import OpenAI

    lat, toks = [], []
    lock = threading.Lock()

    def client(i: int, model: str) -> None:
        c = OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=600)
        for k in range(requests):
            t0 = time.perf_counter()
            r = c.chat.completions.create(model=model, max_tokens=tokens, temperature=0, messages=[
                {"role": "user", "content": f"Client {i}, request {k}: write a short story about a lighthouse."}])
            with lock:
                lat.append(time.perf_counter() - t0)
                toks.append(r.usage.completion_tokens)

    threads = [threading.Thread(target=client, args=(i, m)) for i, m in enumerate(models)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    p95 = statistics.quantiles(lat, n=20)[18] if len(lat) > 1 else lat[0]
    return {"p50_s": statistics.median(lat), "p95_s": p95, "tokens_per_s": sum(toks) / wall,
            "requests": len(lat), "wall_s": wall}


def concurrency(base_path: Path, peft_dirs: list[Path], threads: int, requests: int, tokens: int) -> dict:
    entry = Catalog(Settings()).get("default")
    with tempfile.TemporaryDirectory() as home:
        store = AdapterStore(Path(home) / "adapters")
        tasks = [f"task-{i}" for i in range(len(peft_dirs))]
        for task, d in zip(tasks, peft_dirs):
            store.add(entry.id, entry.sha256, base_path, task, d)
        os.symlink(Settings().models_dir, Path(home) / "models")  # the same model store, no copy
        env = {**os.environ, "EDGESLM_HOME": home}
        out = {}
        for name, models, parallel in (("4 clients, 4 adapters", [f"default@{t}" for t in tasks], 4),
                                       ("4 clients, base", ["default"] * 4, 4),
                                       ("4 clients, base, --parallel 1", ["default"] * 4, 1)):
            with running_server(threads=threads, env=env, extra_args=["--parallel", str(parallel)]) as url:
                clients(url, models[:1], 1, 4)  # warm-up: loads the model and the adapters' first use
                clients(url, models, 1, 4)
                out[name] = clients(url, models, requests, tokens)
            r = out[name]
            print(f"{name:45s} p50 {r['p50_s']:.2f} s, p95 {r['p95_s']:.2f} s, {r['tokens_per_s']:.1f} tok/s")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--requests", type=int, default=5, help="requests per client in the concurrency runs")
    ap.add_argument("--chart", type=Path, default=Path("benchmarks/results/adapters.png"))
    args = ap.parse_args(argv)
    threads = args.threads or device.default_threads()
    cat = Catalog(Settings())
    base_path = cat.ensure_local(cat.get("default"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        loras, peft_dirs = [], []
        for seed in range(1, 5):
            peft_dirs.append(write_peft(tmp / str(seed), rank=args.rank, modules=tuple(GEMMA_270M), seed=seed,
                                        scale=0.02))
        for d in peft_dirs[:2]:
            convert(d, base_path, d / "adapter.gguf")
            loras.append(d / "adapter.gguf")
        b = open_backend(base_path, "gguf", n_ctx=2048, n_threads=threads, n_seq=2)
        prompt = b.tokenize("Write a long story about a lighthouse keeper.", add_bos=True)
        proc = psutil.Process()
        rss = []
        for lora in loras:  # first use loads it: the RSS growth is what a resident adapter costs
            before = proc.memory_info().rss
            b.set_adapters([(lora, 1.0)])
            b.prefill(prompt)
            rss.append(proc.memory_info().rss - before)
        switch = [switch_ms(b, loras, prompt) for _ in range(args.runs)]
        base_tps, lora_tps = [], []
        for _ in range(args.runs):
            b.set_adapters([])
            base_tps.append(decode_tps(b, prompt, args.tokens))
            b.set_adapters([(loras[0], 1.0)])
            lora_tps.append(decode_tps(b, prompt, args.tokens))
        b.close()
        size = loras[0].stat().st_size
        conc = concurrency(base_path, peft_dirs, threads, args.requests, args.tokens)
    fig = {
        "switch_ms_median": statistics.median(switch), "switch_ms_max": max(switch),
        "decode_base_tps": statistics.median(base_tps), "decode_adapter_tps": statistics.median(lora_tps),
        "rss_per_adapter_mib": statistics.median(rss) / 2**20, "adapter_file_mib": size / 2**20,
    }
    # runs alternate base/adapter, so each pair shares the machine's state: the median pair ratio
    fig["decode_slowdown"] = 1 - statistics.median(a / b for a, b in zip(lora_tps, base_tps))
    print(f"{'switch between two resident adapters':45s} {fig['switch_ms_median']:.2f} ms (max of {args.runs} runs "
          f"{fig['switch_ms_max']:.2f})")
    print(f"{'decode, base':45s} {fig['decode_base_tps']:.1f} tok/s")
    print(f"{'decode, one unmerged adapter (rank ' + str(args.rank) + ')':45s} {fig['decode_adapter_tps']:.1f} tok/s "
          f"(slowdown {fig['decode_slowdown']:.1%})")
    print(f"{'memory per resident adapter':45s} {fig['rss_per_adapter_mib']:.1f} MiB RSS "
          f"(file {fig['adapter_file_mib']:.1f} MiB)")
    bars(args.chart, f"Adapter costs (Gemma 3 270M, rank {args.rank}, {threads} threads)",
         ["decode, 1 request", "4 concurrent clients"],
         {"base": [fig["decode_base_tps"], conc["4 clients, base"]["tokens_per_s"]],
          "adapters": [fig["decode_adapter_tps"], conc["4 clients, 4 adapters"]["tokens_per_s"]],
          "base, --parallel 1": [0, conc["4 clients, base, --parallel 1"]["tokens_per_s"]]}, "tokens/s")
    print(json.dumps({"benchmark": "adapters", "machine": {"platform": platform.platform(), **device.describe()},
                      "model": "gemma-3-270m-q4_k_m", "threads": threads, "rank": args.rank, "runs": args.runs,
                      **fig, "base_tps": base_tps, "adapter_tps": lora_tps, "concurrency": conc}))


if __name__ == "__main__":
    main()
