"""What the shipped "tools" adapter costs at serve time: decode speed and tool-call latency of the default
model with it (base + "tools") and without it (base@none), side by side in one process, alternating.

    python -m benchmarks.tools_adapter [--runs 7] [--threads 2]

Decode: the cost of one decode step on the same tokens (the bare base's own 128-token greedy continuation
of a story prompt, fed back one token per step): the bare base, base + the LoRA applied at decode time,
and the served copy with the LoRA folded into its weights (edgeslm/store/folded.py: the adapted weights
at Q8_0, the rest byte for byte), which is how `serve` runs the default adapter unless --no-fold.
It runs on a backend opened as the server's worker opens it (n_ctx, sequences, batch, threads), in this
one thread, before any worker starts. That matters: llama.cpp computes with OpenMP, and once two live
threads have each run a team, libgomp counts more threads than cores and stops spinning at its barriers.
Decode steps timed from a second thread then ran at 0.6x their speed, and the LoRA, whose small extra
products add barriers, lost most (this benchmark's earlier 0.74x). The server decodes on one worker thread
per model, so it does not pay that (benchmarks/overhead.py: 0.975x raw llama.cpp).

Tool call: a request with four tools through the engine (prefix cached on both sides after a warm-up),
request to final JSON, `tool_choice` auto. The two sides answer with their own tokens, so the tool-call
figure also reflects how many tokens each side writes (both are printed). Medians of the runs; the decode ratio
is the median of each run's ratio (its sides timed back to back), the tool-call ratio
is with / without. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from benchmarks._chart import bars

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Get the current weather for a city.",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                     "required": ["city"]}}},
    {"type": "function", "function": {"name": "get_time", "description": "Current local time in a city.",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                     "required": ["city"]}}},
    {"type": "function", "function": {"name": "convert_currency", "description": "Convert money.",
                                      "parameters": {"type": "object", "properties": {
                                          "amount": {"type": "number"}, "from_currency": {"type": "string"},
                                          "to_currency": {"type": "string"}},
                                          "required": ["amount", "from_currency", "to_currency"]}}},
    {"type": "function", "function": {"name": "send_email", "description": "Send an e-mail.",
                                      "parameters": {"type": "object", "properties": {
                                          "to": {"type": "string"}, "subject": {"type": "string"},
                                          "body": {"type": "string"}}, "required": ["to", "subject", "body"]}}},
]


CHUNK = 16  # tokens a side decodes before the next side's turn


def _chunk(side: tuple, tokens: list[int]) -> float:
    """Seconds for one side to decode `tokens[1:]` (the first, untimed, absorbs an adapter switch's
    graph re-reserve) on its own sequence."""
    backend, adapters, seq = side
    backend.set_adapters(adapters)
    backend.decode([tokens[0]], seq)
    backend.logits(seq)
    t0 = time.perf_counter()
    for t in tokens[1:]:
        backend.decode([t], seq)
        backend.logits(seq)
    return time.perf_counter() - t0


def _decode_rates(settings, base: Path, sha: str, lora: Path, runs: int) -> dict[str, list[float]]:
    """Decode rates of the three sides, alternating, `runs` each, all in this thread."""
    import numpy as np

    from edgeslm.backends import memory, open_backend
    from edgeslm.store import folded

    merged = folded.find(settings.cache, sha, lora) or folded.build(base, lora, folded.path_for(settings.cache, sha, lora))
    kw = {"n_ctx": settings.n_ctx, "n_threads": settings.threads, "n_batch": settings.n_batch,
          "n_seq": memory.sequences(settings)}
    backends = {"base": open_backend(base, "gguf", **kw), "merged": open_backend(merged, "gguf", **kw)}
    try:
        b = backends["base"]
        prompt = b.tokenize("Write a long story about a lighthouse keeper and a storm.\n\n", add_bos=True)
        b.prefill(prompt, 0)
        tokens: list[int] = []
        for _ in range(128):  # the bare base's own greedy continuation
            tokens.append(int(np.argmax(b.logits(0))))
            b.decode([tokens[-1]], 0)
        backends["merged"].prefill(prompt + tokens, 1)  # as many cells in use as on the base's backend
        sides = {"base": (b, [], 0), "base + tools LoRA": (b, [(lora, 1.0)], 1),
                 "base + tools folded": (backends["merged"], [], 0)}
        rates: dict[str, list[float]] = {s: [] for s in sides}
        names = list(sides)
        for i in range(runs):
            spent = dict.fromkeys(sides, 0.0)
            for backend, adapters, seq in sides.values():
                backend.set_adapters(adapters)
                backend.reset(seq)
                backend.prefill(prompt, seq)
            # the sides take turns every CHUNK tokens, in a rotating order: this machine's speed drifts
            # by 2x within seconds, and a side timed in one stretch measures the drift
            for c, at in enumerate(range(0, len(tokens), CHUNK)):
                for k in range(len(names)):
                    side = names[(c + k) % len(names)]
                    spent[side] += _chunk(sides[side], tokens[at:at + CHUNK])
            for side in names:
                rates[side].append((len(tokens) - len(tokens) // CHUNK) / spent[side])
            print(f"run {i + 1} decode: " + ", ".join(f"{s} {r[-1]:.1f} tok/s" for s, r in rates.items()), flush=True)
        return rates
    finally:
        for backend in backends.values():
            backend.close()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/tools_adapter.json"))
    args = ap.parse_args(argv)

    from edgeslm.config import Settings
    from edgeslm.engine import Engine
    from edgeslm.pipeline import data
    from edgeslm.store.adapters import AdapterStore

    settings = Settings(threads=args.threads, parallel=1)
    engine = Engine(settings)
    entry = engine.resolve("default")
    base = engine.catalog.ensure_local(entry)
    lora = AdapterStore(settings.adapters_dir).get(entry.id, "tools", entry.sha256).gguf
    rates = _decode_rates(settings, base, entry.sha256, lora, args.runs)  # before any worker thread: see the docstring
    worker = engine.worker("default")
    call = {"messages": [{"role": "user", "content": "What is the weather in Buenos Aires right now?"}], "tools": TOOLS}
    sides = {"base": (worker, "none"), "base + tools LoRA": (worker, "tools"),
             "base + tools folded": (engine.worker_for("default", None), None)}
    figs = {s: {"tool_call_s": [], "call_tokens": []} for s in sides}
    try:
        for w, adapter in sides.values():  # warm-up: adapters loaded, tool prefix cached
            w.run(*data.request(call, settings, max_tokens=64), adapter=adapter)
        for i in range(args.runs):
            for side, (w, adapter) in (sides.items() if i % 2 == 0 else reversed(list(sides.items()))):
                t0 = time.perf_counter()
                g = w.run(*data.request(call, settings, max_tokens=64), adapter=adapter)
                figs[side]["tool_call_s"].append(time.perf_counter() - t0)
                figs[side]["call_tokens"].append(g.usage.completion_tokens)
                print(f"run {i + 1} {side}: tool call {figs[side]['tool_call_s'][-1]:.3f} s "
                      f"({g.usage.completion_tokens} tokens, {[c.name for c in g.tool_calls]})", flush=True)
    finally:
        engine.close()
    med = {s: {"decode_tok_s": statistics.median(r)} for s, r in rates.items()}
    for s, f in figs.items():
        med[s].update({k: statistics.median(v) for k, v in f.items()})
    # this machine's speed drifts within a run (x2 over minutes): each run's sides are timed back to back,
    # so the median of per-run ratios is the steadier figure
    paired = {s: statistics.median(x / y for x, y in zip(rates[s], rates["base"], strict=True))
              for s in ("base + tools folded", "base + tools LoRA")}
    ratio = {"decode": paired["base + tools folded"], "decode_lora": paired["base + tools LoRA"],
             "decode_of_medians": med["base + tools folded"]["decode_tok_s"] / med["base"]["decode_tok_s"],
             "tool_call": med["base + tools folded"]["tool_call_s"] / med["base"]["tool_call_s"],
             "tool_call_lora": med["base + tools LoRA"]["tool_call_s"] / med["base"]["tool_call_s"]}
    print(f"\n{'side':<24}{'decode tok/s':>14}{'tool call s':>13}{'call tokens':>13}")
    for s, m in med.items():
        print(f"{s:<24}{m['decode_tok_s']:>14.1f}{m.get('tool_call_s', float('nan')):>13.3f}"
              f"{m.get('call_tokens', float('nan')):>13.0f}")
    print(f"with/without (median of per-run ratios): decode folded (served) {ratio['decode']:.3f}x (target >= 0.90), as a LoRA "
          f"{ratio['decode_lora']:.3f}x; tool call folded {ratio['tool_call']:.3f}x, as a LoRA {ratio['tool_call_lora']:.3f}x")
    from edgeslm import device

    result = {"benchmark": "tools_adapter", "machine": device.describe(), "threads": args.threads, "runs": args.runs,
              "medians": med, "ratio": ratio, "raw": {"decode_tok_s": rates, **figs}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    bars(args.out.with_suffix(".png"), "The tools adapter's cost (medians, with / without)", ["decode tok/s", "tool call s"],
         {s: [m["decode_tok_s"] / med["base"]["decode_tok_s"], m.get("tool_call_s", 0.0) / med["base"]["tool_call_s"]]
          for s, m in med.items()}, "relative to the bare base")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
