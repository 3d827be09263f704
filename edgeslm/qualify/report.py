"""Qualification reports: kept in the store as JSON, shown as a rich table, drawn as a PNG, listed
and compared (`edgeslm qualify --history`).

Owns the file layout under EDGESLM_HOME/reports/qualify/ and every presentation of a report.
Knows nothing about measuring.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from rich.table import Table

from edgeslm.errors import InvalidRequest, NotFound

MIB = 1 << 20
_LABELS = {
    "ttft_512_s": ("time to first token, 512-token prompt", "s"),
    "ttft_tools_s": ("time to first token, tool prompt, cold", "s"),
    "decode_tps": ("decode speed (median)", "tok/s"),
    "tool_call_s": ("constrained tool call (median, warm)", "s"),
    "memory_ram_fraction": ("peak memory / RAM", ""),
    "load_s": ("load time", "s"),
}


def report_dir(home: Path) -> Path:
    return home / "reports" / "qualify"


def save(report: dict, home: Path, out: Path | None = None) -> list[Path]:
    """Write the report (JSON + PNG) into the store, and into `out` too when given. Returns the JSON paths."""
    stamp = re.sub(r"[^0-9T]", "", report["created"])[:15]
    name = report["model"]["id"] + (f"@{report['adapter']['task']}" if report["adapter"] else "") + f"-{stamp}"
    written = []
    for d in [report_dir(home)] + ([out] if out else []):
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{name}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(report, indent=2))
        tmp.replace(path)
        chart(report, path.with_suffix(".png"))
        written.append(path)
    return written


def _fmt(value, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "":
        return f"{value:.1%}"
    return f"{value:.3g} {unit}".strip()


def tables(report: dict) -> list[Table]:
    """The terminal view: measurements, memory, and the verdict."""
    m = report["measured"]
    meas = Table(title=f"{report['model']['id']}" + (f" @ {report['adapter']['task']}" if report["adapter"] else "")
               + f" on {report['device']['cpu']} ({report['settings']['threads']} threads, n_ctx "
               f"{report['settings']['n_ctx']})", title_justify="left")
    for col in ("measure", "median", "p90 / spread", "detail"):
        meas.add_column(col)
    for x in m["prefill"]:
        meas.add_row(f"TTFT, {x['prompt_tokens']}-token prompt (cold)", f"{x['ttft_s'] * 1000:.0f} ms",
                     f"±{x['noise']:.0%}", f"prefill {x['prefill_tps']:.0f} tok/s")
    d, t = m["decode"], m["tools"]
    meas.add_row("decode", f"{d['tokens_per_s']:.1f} tok/s", f"p90 {d['ms_per_token_p90']:.1f} ms/token",
                 f"{d['ms_per_token_median']:.1f} ms/token")
    restored = t.get("ttft_restored_s")
    meas.add_row(f"TTFT, tool prompt ({t['prompt_tokens']} tokens, {t['tools']} tools)",
                 f"cold {t['ttft_cold_s'] * 1000:.0f} ms",
                 (f"restored {restored * 1000:.0f} ms" if restored is not None else "restored: n/a")
                 + f", warm {t['ttft_warm_s'] * 1000:.0f} ms",
                 "restored = prefix loaded from disk (after a restart); warm = in memory"
                 + ("" if restored is not None else f"; {t.get('restored_note')}"))
    meas.add_row("constrained tool call, request → final JSON", f"{t['call_s_median'] * 1000:.0f} ms",
                 f"p90 {t['call_s_p90'] * 1000:.0f} ms",
                 f"{t['calls_made']}/{t['runs']} calls, {t['forced_share']:.0%} tokens forced")
    meas.add_row("load", f"{m['load_s']:.2f} s", "", "")
    mem = report["memory"]
    plan = mem["plan"]
    meas.add_row("memory plan (before loading)", f"{plan['total'] / MIB:.0f} MiB", "",
                 ", ".join(f"{k} {v / MIB:.0f}" for k, v in plan["terms"].items() if v))
    meas.add_row("peak RSS (measured)", f"{mem['peak_rss'] / MIB:.0f} MiB", f"plan {mem['plan_error']:+.1%}",
                 f"budget {ram_budget(mem) / MIB:.0f} MiB")
    gpu = report.get("gpu") or {}
    if gpu.get("measured"):
        peak = gpu.get("vram_peak")
        meas.add_row("VRAM: plan / peak (NVML)", f"{gpu['vram_plan'] / MIB:.0f} MiB",
                     "not measured (no NVML)" if peak is None else f"peak {peak / MIB:.0f} MiB ({gpu['vram_plan_error']:+.1%})",
                     gpu.get("reason", ""))
    elif gpu:
        meas.add_row("GPU", "not measured", "", gpu.get("not_measured") or "")
    cpu = report.get("cpu_run")
    if cpu:
        f = cpu["figures"]
        meas.add_row("CPU only, side by side", f"decode {f['decode_tps']:.1f} tok/s",
                     f"tool call {f['tool_call_s'] * 1000:.0f} ms", f"TTFT 512 {(f['ttft_512_s'] or 0) * 1000:.0f} ms")
    v = report["verdict"]
    on = f" on {v['device']}" if v.get("device") else ""
    ver = Table(title=f"WD1 profile '{v['profile']['name']}'{on}: {v['overall'].upper()}", title_justify="left")
    for col in ("criterion", "measured", "threshold", "margin", "noise", "result"):
        ver.add_column(col)
    for c in v["criteria"]:
        label, unit = _LABELS.get(c["figure"], (c["figure"], ""))
        op = "≤" if c["kind"] == "max" else "≥"
        noise = report["noise"].get(c["figure"])
        ver.add_row(label, _fmt(c["measured"], unit), f"{op} {_fmt(c['threshold'], unit)}",
                    "—" if c["margin"] is None else f"{c['margin']:+.0%}",
                    "—" if noise is None else f"±{noise:.0%}",
                    "[green]pass[/]" if c["passed"] else "[red]FAIL[/]" if c["measured"] is not None else "not measured")
    return [meas, ver]


def ram_budget(mem: dict) -> int:
    """The RAM budget of a report (reports before the GPU split stored a number)."""
    b = mem["budget"]
    return b["ram"] if isinstance(b, dict) else b


def chart(report: dict, path: Path) -> Path | None:
    """TTFT and prefill speed against prompt length, decode and tool-call speed, memory against the
    budget. None when matplotlib is missing (it is an optional extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    m, mem = report["measured"], report["memory"]
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.5))
    n = [x["prompt_tokens"] for x in m["prefill"]]
    ax[0].plot(n, [x["ttft_s"] for x in m["prefill"]], "o-", label="TTFT (s)")
    ax[0].set_xlabel("prompt tokens")
    ax[0].set_ylabel("time to first token (s)")
    ax[0].set_xscale("log", base=2)
    twin = ax[0].twinx()
    twin.plot(n, [x["prefill_tps"] for x in m["prefill"]], "s--", color="tab:orange", label="prefill tok/s")
    twin.set_ylabel("prefill tok/s")
    ax[0].set_title("Prefill (cold)")
    d, t = m["decode"], m["tools"]
    ax[1].bar(["decode\nmedian", "decode\np90"], [d["tokens_per_s"], 1000 / d["ms_per_token_p90"] if d["ms_per_token_p90"] else 0],
              color=["tab:blue", "tab:cyan"])
    ax[1].set_ylabel("tokens/s")
    twin1 = ax[1].twinx()
    twin1.bar(["tool call\nmedian (s)", "TTFT tools\ncold (s)", "TTFT tools\nwarm (s)"],
              [t["call_s_median"], t["ttft_cold_s"], t["ttft_warm_s"]], color=["tab:green", "tab:red", "tab:olive"])
    twin1.set_ylabel("seconds")
    ax[1].set_title("Decode and tool calls")
    terms = mem["plan"]["terms"]
    bottom = 0.0
    for k, v in terms.items():
        if v:
            ax[2].bar(["plan"], [v / MIB], bottom=bottom, label=k)
            bottom += v / MIB
    ax[2].bar(["peak RSS"], [mem["peak_rss"] / MIB], color="black")
    top = max(bottom, mem["peak_rss"] / MIB) * 1.6
    budget = ram_budget(mem)
    if budget / MIB <= top:
        ax[2].axhline(budget / MIB, color="red", linestyle="--", label="budget")
    else:  # a budget far above the model would flatten the bars: say it instead of drawing it
        ax[2].annotate(f"budget {budget / MIB:,.0f} MiB ↑", (0.98, 0.97), xycoords="axes fraction",
                       ha="right", va="top", color="red")
    gpu = report.get("gpu") or {}
    if gpu.get("measured"):  # VRAM beside RAM: the plan's VRAM and NVML's peak
        ax[2].bar(["VRAM plan"], [gpu["vram_plan"] / MIB], color="tab:purple")
        if gpu.get("vram_peak") is not None:
            ax[2].bar(["VRAM peak"], [gpu["vram_peak"] / MIB], color="indigo")
    ax[2].set_ylim(0, top)
    ax[2].set_ylabel("MiB")
    ax[2].legend(fontsize=7, loc="upper left", ncol=2)
    ax[2].set_title(f"Memory (budget {budget / MIB / 1024:.1f} GiB)")
    cpu = report.get("cpu_run")
    if cpu:  # the CPU-only run beside the GPU one
        ax[1].bar(["decode\nCPU only"], [cpu["figures"]["decode_tps"]], color="tab:gray")
        twin1.bar(["tool call\nCPU only (s)"], [cpu["figures"]["tool_call_s"]], color="tab:brown")
    v = report["verdict"]
    where = v.get("device") or report["device"]["cpu"]
    fig.suptitle(f"edgeslm qualify: {report['model']['id']} on {where}, "
                 f"{report['settings']['threads']} threads — {v['profile']['name']}: {v['overall'].upper()}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def history(home: Path) -> list[dict]:
    """Past reports, oldest first: file, model, adapter, date, verdict."""
    rows = []
    for path in sorted(report_dir(home).glob("*.json"), key=lambda p: p.stat().st_mtime):
        try:
            r = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        rows.append({"report": path.stem, "path": str(path), "model": r["model"]["id"],
                     "adapter": (r.get("adapter") or {}).get("task"), "created": r["created"],
                     "profile": r["verdict"]["profile"]["name"], "verdict": r["verdict"]["overall"],
                     "figures": r["figures"]})
    return rows


def load(home: Path, name: str) -> dict:
    """A report by file path, by name (as `--history` lists it) or by a unique prefix of the name."""
    p = Path(name)
    if p.is_file():
        return json.loads(p.read_text())
    rows = history(home)
    matches = [r for r in rows if r["report"] == name] or [r for r in rows if r["report"].startswith(name)]
    if len(matches) != 1:
        known = ", ".join(r["report"] for r in rows) or "none yet"
        what = "no" if not matches else "more than one"
        raise NotFound(f"{what} report matches '{name}'; reports: {known}", param="report")
    return json.loads(Path(matches[0]["path"]).read_text())


def compare(a: dict, b: dict) -> list[dict]:
    """Figure by figure: both values, the relative change, and whether it lies within the noise both
    reports state (the larger of the two)."""
    if a.get("schema") != b.get("schema"):
        raise InvalidRequest(f"reports have different schemas ({a.get('schema')} vs {b.get('schema')})")
    rows = []
    for key in _LABELS:
        x, y = a["figures"].get(key), b["figures"].get(key)
        na, nb = a["noise"].get(key), b["noise"].get(key)
        change = (y - x) / x if x and y is not None else None
        noise = max(na or 0, nb or 0) if (na is not None or nb is not None) else None
        rows.append({"figure": key, "a": x, "b": y, "change": change, "noise": noise,
                     "within_noise": None if change is None or noise is None else abs(change) <= noise})
    return rows
