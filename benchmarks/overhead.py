"""Decode speed through the edgeslm server vs raw llama-cpp-python on the same model, threads and prompt.

    python -m benchmarks.overhead [--runs 5] [--tokens 128] [--threads N]

Both sides stream greedy tokens from the same chat prompt; decode tok/s = (tokens - 1) / (last - first
token time). Runs alternate raw/server so machine noise hits both; medians are reported.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import llama_cpp
from openai import OpenAI

from benchmarks._chart import bars
from benchmarks._raw import raw_default
from benchmarks._server import running_server
from edgeslm import device
from edgeslm.types import Message

PROMPT = "Write a long story about a dragon who learns to cook."


def raw_run(llm: llama_cpp.Llama, tokens: list[int], n: int) -> tuple[int, float]:
    stamps = []
    for chunk in llm.create_completion(tokens, max_tokens=n, temperature=0, stream=True):
        if chunk["choices"][0]["finish_reason"] is None:  # the closing chunk carries no token
            stamps.append(time.perf_counter())
    return len(stamps), (len(stamps) - 1) / (stamps[-1] - stamps[0])


def server_run(client: OpenAI, n: int) -> tuple[int, float]:
    stamps = []
    stream = client.chat.completions.create(model="default@none", messages=[{"role": "user", "content": PROMPT}],
                                            max_tokens=n, temperature=0, stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            stamps.append(time.perf_counter())
    return len(stamps), (len(stamps) - 1) / (stamps[-1] - stamps[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--chart", type=Path, default=Path("benchmarks/results/overhead.png"))
    args = ap.parse_args()
    threads = args.threads or device.default_threads()
    entry, llm, _, template = raw_default(threads)
    tokens = llm.tokenize(template.render([Message("user", PROMPT)], []).encode(), add_bos=False, special=True)

    raw, served = [], []
    with running_server(threads=threads) as base:
        client = OpenAI(base_url=base, api_key="unused")
        raw_run(llm, tokens, 8), server_run(client, 8)  # warm both
        for i in range(args.runs):
            raw.append(raw_run(llm, tokens, args.tokens))
            served.append(server_run(client, args.tokens))
            print(f"run {i + 1}: raw {raw[-1][1]:.1f} tok/s ({raw[-1][0]} tok), "
                  f"server {served[-1][1]:.1f} tok/s ({served[-1][0]} chunks)", flush=True)
    raw_med = statistics.median(r[1] for r in raw)
    srv_med = statistics.median(s[1] for s in served)
    print(f"\n{'path':<34}{'decode tok/s (median)':>24}")
    print(f"{'raw llama-cpp-python create_completion':<34}{raw_med:>24.1f}")
    print(f"{'edgeslm server (openai client, SSE)':<34}{srv_med:>24.1f}")
    print(f"{'ratio server / raw':<34}{srv_med / raw_med:>24.3f}")
    bars(args.chart, f"Decode speed, {entry.id}, {threads} threads (median of {args.runs})", ["decode"],
         {"raw llama-cpp-python": [raw_med], "edgeslm server": [srv_med]}, "tokens/s")
    print(json.dumps({
        "benchmark": "overhead", "machine": {"platform": platform.platform(), **device.describe()},
        "model": entry.id, "threads": threads, "tokens": args.tokens, "runs": args.runs,
        "raw_tok_s": [round(r[1], 2) for r in raw], "server_tok_s": [round(s[1], 2) for s in served],
        "raw_median": round(raw_med, 2), "server_median": round(srv_med, 2), "ratio": round(srv_med / raw_med, 3),
    }))


if __name__ == "__main__":
    main()
