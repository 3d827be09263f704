"""Flash attention and KV cache types on this CPU, for the default model (with its default adapter), side by
side in one run: speed, KV memory, and whether greedy outputs stay identical to today's default.

    python -m benchmarks.kvtypes [--threads 2] [--repeats 3] [--out benchmarks/results]

Configurations: flash attention off/on x KV cache f16/q8_0 (llama.cpp refuses a quantized V cache without
flash attention; such a row says so). Per configuration, one engine (n_ctx 4096, parallel 1):
  - prefill: a ~1k-token prompt evaluated cold (nothing reused), tokens/s, median of --repeats;
  - decode: 128 greedy text tokens, tokens/s, median of --repeats;
  - KV bytes per token, from the memory plan (what `serve` counts);
  - greedy identity: the 16 prompts below (8 tool calls on 6 tools, 8 text answers), temperature 0, cold:
    how many give exactly the output of flash off + f16.
A setting may become a default only with 16/16 identical and no loss of speed.
Last line: one JSON object; also written with a chart to OUT/kvtypes.json and OUT/kvtypes.png.

What it cannot show: identity on 16 prompts is not quality on a task (a changed output may be as good); the
speeds are this machine's, with one sequence; long contexts (where flash attention and q8_0 matter most) are
measured only at ~1k tokens.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from benchmarks._chart import bars
from edgeslm.backends import memory
from edgeslm.config import get_settings
from edgeslm.engine import Engine
from edgeslm.errors import EdgeError
from edgeslm.qualify.profile import _FILLER, AGENT_TOOLS
from edgeslm.types import Message, OutputSpec, SamplingParams

CONFIGS = [(False, "f16"), (True, "f16"), (True, "q8_0"), (False, "q8_0")]
CALLS = ["What's the weather in Lisbon?", "Weather in Kyoto for the next 3 days, in celsius.",
         "Email dana@example.org that the report is late.", "Search the files for 'quarterly report'.",
         "What's AAPL trading at?", "Book a meeting called Budget review tomorrow at 10:00 for 30 minutes.",
         "Run a query that counts the orders of last week.", "Find Python files mentioning retry under src/"]
TEXTS = ["Explain in two sentences why the sky is blue.", "Write a haiku about a lighthouse.",
         "List three uses of a paperclip.", "What is the capital of Portugal?", "Translate 'good morning' into French.",
         "Summarize: the meeting moved to Friday because the room was taken.", "Give me a name for a grey cat.",
         "What is 12 times 7?"]


def measure(flash: bool, kv: str, threads: int, repeats: int) -> dict:
    st = get_settings(threads=threads, n_ctx=4096, parallel=1, flash_attn=flash, kv_type=kv, prefix_disk_mb=0)
    try:
        e = Engine(st)
        w = e.worker("default")
    except EdgeError as err:
        return {"flash_attn": flash, "kv_type": kv, "error": err.message}
    try:
        greedy = SamplingParams(max_tokens=64, temperature=0)
        outs = []
        for q in CALLS:
            g = w.run([Message("user", q)], OutputSpec("tools", AGENT_TOOLS, "auto", parallel=False), greedy, fresh=True)
            outs.append([g.content, [(c.name, c.arguments) for c in g.tool_calls]])
        for q in TEXTS:
            g = w.run([Message("user", q)], OutputSpec(kind="text"), greedy, fresh=True)
            outs.append([g.content, []])
        prefill, decode = [], []
        for i in range(repeats):
            g = w.run([Message("user", f"[{i}] " + _FILLER * 16 + "Summarize.")], OutputSpec(kind="text"),
                      SamplingParams(max_tokens=1, temperature=0), fresh=True)
            prefill.append(g.usage.prompt_tokens / g.timings["prefill_s"])
            g = w.run([Message("user", "Write a long story about a lighthouse keeper.")], OutputSpec(kind="text"),
                      SamplingParams(max_tokens=128, temperature=0), fresh=True)
            decode.append(g.timings["tokens_per_s"])
        plan = memory.plan_for("gguf", w.backend.path, st)
        return {"flash_attn": flash, "kv_type": kv, "prefill_tok_s": statistics.median(prefill),
                "decode_tok_s": statistics.median(decode), "kv_bytes_per_token": plan.kv_bytes_per_token, "outputs": outs}
    finally:
        e.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    a = ap.parse_args()
    rows = []
    for flash, kv in CONFIGS:
        r = measure(flash, kv, a.threads, a.repeats)
        base = rows[0]["outputs"] if rows and "outputs" in rows[0] else r.get("outputs")
        if "outputs" in r and base is not None:
            r["identical"] = sum(x == y for x, y in zip(r["outputs"], base, strict=True))
            r["changed"] = [(q, y, x) for q, x, y in zip(CALLS + TEXTS, r["outputs"], base, strict=True) if x != y]
        rows.append(r)
        name = f"flash {'on ' if flash else 'off'} KV {kv:<5}"
        if "error" in r:
            print(f"{name}: refused: {r['error']}", flush=True)
        else:
            print(f"{name}: prefill {r['prefill_tok_s']:.0f} tok/s, decode {r['decode_tok_s']:.1f} tok/s, "
                  f"KV {r['kv_bytes_per_token']} B/token, greedy identical {r['identical']}/{len(r['outputs'])}", flush=True)
    ok = [r for r in rows if "error" not in r]
    out = {"threads": a.threads, "repeats": a.repeats, "rows": rows}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "kvtypes.json").write_text(json.dumps(out, indent=1))
    names = [f"FA {'on' if r['flash_attn'] else 'off'}\n{r['kv_type']}" for r in ok]
    bars(a.out / "kvtypes.png", "Flash attention and KV types (default model, this CPU)", names,
         {"prefill tok/s / 10": [r["prefill_tok_s"] / 10 for r in ok], "decode tok/s": [r["decode_tok_s"] for r in ok],
          "identical of 16": [r["identical"] for r in ok]}, "value")
    print(json.dumps([{k: v for k, v in r.items() if k not in ("outputs", "changed")} for r in rows]))


if __name__ == "__main__":
    main()
