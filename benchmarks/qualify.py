"""Qualify every model and quantization in the local store, with and without each of its adapters,
side by side on this machine.

    python -m benchmarks.qualify [--profile interactive-agent] [--runs 5] [--threads N] [--n-ctx 8192]
                                 [--models ID ...] [--chart FILE]

Each qualification runs `edgeslm qualify MODEL --json` in its own process (so peak RSS is that model's
alone) with the same threads and context. Prints a comparison table, draws a chart and ends with one
JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks._chart import bars
from edgeslm import device
from edgeslm.config import Settings
from edgeslm.store.adapters import AdapterStore
from edgeslm.store.registry import Catalog


def targets(settings: Settings, only: list[str]) -> list[tuple[str, str | None]]:
    cat, store = Catalog(settings), AdapterStore(settings.adapters_dir)
    out = []
    for e in cat.entries:
        if only and e.id not in only and not set(e.aliases) & set(only):
            continue
        if e.source.kind == "pypi" or cat.is_local(e):
            out.append((e.id, None))
            out += [(e.id, task) for task in store.tasks(e.id)]
    return out


def run_one(model: str, adapter: str | None, args) -> dict | None:
    cmd = [sys.executable, "-m", "edgeslm", "qualify", model, "--json", "--runs", str(args.runs),
           "--profile", args.profile, "--threads", str(args.threads), "--n-ctx", str(args.n_ctx)]
    if adapter:
        cmd += ["--adapter", adapter]
    r = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
    if r.returncode not in (0, 1):
        print(f"{model}{'@' + adapter if adapter else ''}: {r.stderr.strip().splitlines()[-1]}", file=sys.stderr)
        return None
    return json.loads(r.stdout)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="interactive-agent")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--n-ctx", type=int, default=8192)
    ap.add_argument("--models", nargs="*", default=[], help="catalog ids (default: everything local)")
    ap.add_argument("--chart", type=Path, default=Path("benchmarks/results/qualify.png"))
    args = ap.parse_args(argv)
    args.threads = args.threads or device.default_threads()
    settings = Settings()
    results = []
    for model, adapter in targets(settings, args.models):
        print(f"qualifying {model}{' @ ' + adapter if adapter else ''} ...", file=sys.stderr)
        if (r := run_one(model, adapter, args)) is not None:
            results.append(r)
    table = Table("model", "quant", "adapter", "TTFT 512", "TTFT tools cold/warm", "prefill 2k tok/s",
                  "decode tok/s (p90 ms)", "tool call", "peak RSS", "plan", "verdict",
                  title=f"edgeslm qualify, profile {args.profile}, {args.threads} threads, n_ctx {args.n_ctx}")
    rows = []
    for r in results:
        f, m, mem = r["figures"], r["measured"], r["memory"]
        big = m["prefill"][-1]
        row = {"model": r["model"]["id"], "quantization": r["model"]["quantization"],
               "adapter": (r["adapter"] or {}).get("task"), **f, "peak_rss_mib": mem["peak_rss"] / 2**20,
               "plan_mib": mem["plan"]["total"] / 2**20, "prefill_2k_tps": big["prefill_tps"],
               "ttft_tools_warm_s": m["tools"]["ttft_warm_s"], "verdict": r["verdict"]["overall"]}
        rows.append(row)
        table.add_row(row["model"], row["quantization"], row["adapter"] or "—", f"{f['ttft_512_s']:.2f} s",
                      f"{f['ttft_tools_s']:.2f} / {row['ttft_tools_warm_s']:.2f} s", f"{big['prefill_tps']:.0f}",
                      f"{f['decode_tps']:.1f} ({m['decode']['ms_per_token_p90']:.1f})", f"{f['tool_call_s']:.2f} s",
                      f"{row['peak_rss_mib']:.0f} MiB", f"{row['plan_mib']:.0f} MiB ({mem['plan_error']:+.0%})",
                      row["verdict"])
    Console().print(table)
    if rows:
        groups = [r["model"] + (f"@{r['adapter']}" if r["adapter"] else "") for r in rows]
        bars(args.chart, f"edgeslm qualify ({args.threads} threads, n_ctx {args.n_ctx})", groups,
             {"TTFT 512 (s)": [r["ttft_512_s"] for r in rows], "tool call (s)": [r["tool_call_s"] for r in rows],
              "decode (100 tok/s)": [r["decode_tps"] / 100 for r in rows],
              "peak RSS (GiB)": [r["peak_rss_mib"] / 1024 for r in rows]}, "value")
    print(json.dumps({"benchmark": "qualify", "machine": {"platform": platform.platform(), **device.describe()},
                      "profile": args.profile, "threads": args.threads, "n_ctx": args.n_ctx, "results": rows}))


if __name__ == "__main__":
    main()
