"""What the shipped "tools" adapter costs at serve time: decode speed and tool-call latency of the default
model with it (base + "tools") and without it (base@none), side by side in one process, alternating.

    python -m benchmarks.tools_adapter [--runs 7] [--threads 2]

Decode: the cost of one decode step with and without the LoRA on the same tokens: the bare base's own
128-token greedy continuation of a story prompt, fed back one token per step through the backend on
both sides (the adapter's own answer is 10 tokens long, too short to time). Tool call: a request with
four tools (prefix cached on both sides after a warm-up), request to final JSON, `tool_choice` auto. The
two sides answer with their own tokens, so the tool-call figure also reflects how many tokens each side
writes (both are printed). Medians of the runs; the ratio is with / without. Last line: one JSON object.
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


def _decode_rate(worker, prompt: list[int], tokens: list[int], adapter_set: list) -> float:
    """Tokens/s of single-token decode steps over `tokens` after `prompt`, under `adapter_set`. Runs on
    the worker's thread's backend while no request is queued (the benchmark sends none meanwhile)."""
    b = worker.backend
    b.set_adapters(adapter_set)
    b.reset(0)
    b.prefill(prompt, 0)
    t0 = time.perf_counter()
    for t in tokens:
        b.decode([t], 0)
        b.logits(0)
    rate = len(tokens) / (time.perf_counter() - t0)
    b.reset(0)
    return rate


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/tools_adapter.json"))
    args = ap.parse_args(argv)

    from edgeslm.config import Settings
    from edgeslm.engine import Engine
    from edgeslm.pipeline import data

    settings = Settings(threads=args.threads, parallel=1)
    engine = Engine(settings)
    worker = engine.worker("default")
    story = {"messages": [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]}
    call = {"messages": [{"role": "user", "content": "What is the weather in Buenos Aires right now?"}], "tools": TOOLS}
    sides = {"base": "none", "base + tools": "tools"}
    figs = {s: {"decode_tok_s": [], "tool_call_s": [], "call_tokens": [], "decode_tokens": []} for s in sides}
    try:
        for adapter in sides.values():  # warm-up: adapters loaded, tool prefix cached
            worker.run(*data.request(call, settings, max_tokens=64), adapter=adapter)
        messages, spec, params = data.request(story, settings, max_tokens=128)
        prompt = worker.prompt_tokens(messages, spec)
        g = worker.run(messages, spec, params, adapter="none")
        continuation = worker.backend.tokenize(g.content, add_bos=False)[:128]
        tools_set = [(worker.adapter("tools").gguf, 1.0)]
        for i in range(args.runs):
            for side, adapter in (sides.items() if i % 2 == 0 else reversed(list(sides.items()))):
                figs[side]["decode_tok_s"].append(_decode_rate(worker, prompt, continuation,
                                                               tools_set if adapter == "tools" else []))
                figs[side]["decode_tokens"].append(len(continuation))
                t0 = time.perf_counter()
                g = worker.run(*data.request(call, settings, max_tokens=64), adapter=adapter)
                figs[side]["tool_call_s"].append(time.perf_counter() - t0)
                figs[side]["call_tokens"].append(g.usage.completion_tokens)
                print(f"run {i + 1} {side}: decode {figs[side]['decode_tok_s'][-1]:.1f} tok/s, tool call "
                      f"{figs[side]['tool_call_s'][-1]:.3f} s ({g.usage.completion_tokens} tokens, "
                      f"{[c.name for c in g.tool_calls]})", flush=True)
    finally:
        engine.close()
    med = {s: {k: statistics.median(v) for k, v in f.items()} for s, f in figs.items()}
    ratio = {"decode": med["base + tools"]["decode_tok_s"] / med["base"]["decode_tok_s"],
             "tool_call": med["base + tools"]["tool_call_s"] / med["base"]["tool_call_s"]}
    print(f"\n{'side':<14}{'decode tok/s':>14}{'tool call s':>13}{'call tokens':>13}")
    for s, m in med.items():
        print(f"{s:<14}{m['decode_tok_s']:>14.1f}{m['tool_call_s']:>13.3f}{m['call_tokens']:>13.0f}")
    print(f"with/without: decode {ratio['decode']:.3f}x (target >= 0.90), tool call {ratio['tool_call']:.3f}x "
          "(target <= 1.10)")
    from edgeslm import device

    result = {"benchmark": "tools_adapter", "machine": device.describe(), "threads": args.threads, "runs": args.runs,
              "medians": med, "ratio": ratio, "raw": figs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    bars(args.out.with_suffix(".png"), "The tools adapter's cost (medians, with / without)", ["decode tok/s", "tool call s"],
         {s: [med[s]["decode_tok_s"] / med["base"]["decode_tok_s"], med[s]["tool_call_s"] / med["base"]["tool_call_s"]]
          for s in sides}, "relative to the bare base")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
