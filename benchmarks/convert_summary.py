"""The convert benchmark over its seeds: every figure's mean and minimum, the chart, and the Markdown table the
README carries (benchmarks/results/convert.{json,png,md}).

    python -m benchmarks.convert_summary [--on default|base]   # from the seeds finished so far, nothing run

Owns nothing that trains or scores: it reads the per-seed result files `benchmarks.convert` writes as each
seed ends (benchmarks/results/convert/{default,base}-sSEED.json), so the table can be made again at any time,
and says which seeds and which commits scored them.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def _spread(xs: list) -> dict:
    xs = [x for x in xs if x is not None]
    return {"mean": round(statistics.mean(xs), 4) if xs else None, "min": round(min(xs), 4) if xs else None, "n": len(xs)}


def over_seeds(runs: list[dict]) -> dict:
    """Per task, each seed's figures; and the mean and minimum over seeds of every figure the README gives."""
    tasks = {}
    for t in runs[0]["tasks"]:
        task = t["true_task"]

        def each(r, key, task=task):
            return next(x.get(key) for x in r["tasks"] if x["true_task"] == task)
        promoted = [each(r, "promoted") for r in runs]
        # a task promoted in one seed and refused in another: each seed's reason, from the gate
        tasks[task] = {"tool": t["task"], "exact_with": [each(r, "exact_with") for r in runs], "promoted": promoted,
                       "why": [each(r, "why") for r in runs] if len(set(promoted)) > 1 else None,
                       **{f"handwritten_{k}": [r["handwritten"].get(task, {}).get(f"exact_{k}") for r in runs]
                          for k in ("with", "tools", "without")}}
    figures = {"pii_recall": _spread([r["pii"]["recall"] for r in runs]),
               "pii_precision": _spread([r["pii"]["precision"] for r in runs]),
               "name_recall": _spread([r["pii"].get("names", {}).get("recall") for r in runs]),
               "name_precision": _spread([r["pii"].get("names", {}).get("precision") for r in runs]),
               "cluster_ari": _spread([r["ari"] for r in runs]),
               "router_accuracy": _spread([r["router_accuracy"] for r in runs])}
    for task, o in tasks.items():
        for k in ("exact_with", "handwritten_with", "handwritten_tools", "handwritten_without"):
            figures[f"{task} {k}"] = _spread(o[k])
    # the bar is per task, over seeds; the mean over every task of a seed says how far the whole is from it
    per_seed = [statistics.mean(x for x in (r["handwritten"][t].get("exact_with") for t in r["handwritten"]) if x is not None)
                for r in runs if any(v.get("exact_with") is not None for v in r["handwritten"].values())]
    figures["handwritten_with, all tasks"] = _spread(per_seed)
    return {"tasks": tasks, "figures": figures}


def _cell(f: dict, bold_from: float | None = None, digits: int = 2) -> str:
    if f["mean"] is None:
        return "–"
    text = f"{f['mean']:.{digits}f}" + (f" ({f['min']:.{digits}f})" if f["n"] > 1 else "")
    return f"**{text}**" if bold_from is not None and f["mean"] >= bold_from and f["min"] >= 0.8 else text


def markdown(summary: dict) -> str:
    """The README's table: per task, the students on the hand-written calls and on the generator's held-out
    calls, mean (min) over seeds, beside the bare `tools` default and the bare base; then the pipeline's own
    figures. Bold where a task meets the issue's bar (mean ≥ 0.9, no seed below 0.8)."""
    o, figs = summary["over_seeds"], summary["over_seeds"]["figures"]
    codes = ", ".join(f"seed {r['seed']} at {r.get('code') or 'an unrecorded commit'}" for r in summary["runs"])
    lines = [f"Seeds {', '.join(map(str, summary['seeds']))} ({codes}); mean (min) over seeds.", "",
             "| task | student | hand-written: student | `tools` default | bare base | held-out exact | promoted |",
             "|---|---|---|---|---|---|---|"]
    for task, t in o["tasks"].items():
        promoted = f"{sum(bool(p) for p in t['promoted'])} of {len(t['promoted'])}"
        lines.append(f"| {task} | `{t.get('tool', '')}` | {_cell(figs[f'{task} handwritten_with'], 0.9)} | "
                     f"{_cell(figs[f'{task} handwritten_tools'])} | {_cell(figs[f'{task} handwritten_without'])} | "
                     f"{_cell(figs[f'{task} exact_with'])} | {promoted} |")
    lines.append(f"| all tasks | | {_cell(figs['handwritten_with, all tasks'])} | | | | |")
    lines += ["", f"PII recall {_cell(figs['pii_recall'], digits=3)}, precision {_cell(figs['pii_precision'], digits=3)} "
              f"(names included; names alone {_cell(figs['name_recall'], digits=3)} / "
              f"{_cell(figs['name_precision'], digits=3)}); cluster ARI "
              f"{_cell(figs['cluster_ari'])}; router accuracy on fresh calls {_cell(figs['router_accuracy'])}."]
    for task, t in o["tasks"].items():
        if t["why"]:
            lines.append(f"- {task} is promoted in some seeds only: " + "; ".join(
                f"seed {s}: {w or 'promoted'}" for s, w in zip(summary["seeds"], t["why"], strict=True)))
    return "\n".join(lines) + "\n"


def chart(s: dict, path: Path) -> None:
    """Hand-written and held-out exact match per task: the mean over seeds, a whisker down to the minimum."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = s["over_seeds"]["figures"]
    names = list(s["over_seeds"]["tasks"])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8))
    series = [("handwritten_with", "task student"), ("handwritten_tools", "default (tools adapter)"),
              ("handwritten_without", "bare base")]
    for j, (key, label) in enumerate(series):
        mean = [figs[f"{n} {key}"]["mean"] or 0 for n in names]
        low = [m - (figs[f"{n} {key}"]["min"] or 0) for m, n in zip(mean, names, strict=True)]
        a1.bar([i + (j - 1) * 0.27 for i in range(len(names))], mean, 0.27, yerr=[low, [0] * len(names)], label=label, capsize=2)
    mean = [figs[f"{n} exact_with"]["mean"] or 0 for n in names]
    low = [m - (figs[f"{n} exact_with"]["min"] or 0) for m, n in zip(mean, names, strict=True)]
    a2.bar(range(len(names)), mean, 0.5, yerr=[low, [0] * len(names)], capsize=2, color="#72b7b2")
    for ax, title in ((a1, "Hand-written requests (15 per task)"), (a2, "Generator's held-out calls (value-disjoint)")):
        ax.axhline(0.9, color="gray", ls="--", lw=1)
        ax.set_xticks(range(len(names)), names, fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("exact tool-call match")
        ax.set_title(f"{title}, seeds {s['seeds']}", fontsize=9)
    a1.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(runs: list[dict], results: Path = RESULTS) -> dict:
    """convert.json, .png and .md from the seeds' runs, in the order given; returns the summary."""
    summary = {**runs[0], "seeds": [r["seed"] for r in runs], "runs": runs, "over_seeds": over_seeds(runs)}
    (results / "convert.json").write_text(json.dumps(summary, indent=2))
    (results / "convert.md").write_text(markdown(summary))
    chart(summary, results / "convert.png")
    return summary


def finished(on: str = "default", results: Path = RESULTS) -> list[dict]:
    """The per-seed result files written so far, by seed."""
    found = [(int(m.group(1)), p) for p in (results / "convert").glob(f"{on}-s*.json")
             if (m := re.fullmatch(rf"{on}-s(\d+)\.json", p.name))]
    return [json.loads(p.read_text()) for _, p in sorted(found)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--on", choices=["default", "base"], default="default")
    args = ap.parse_args()
    runs = finished(args.on)
    if not runs:
        raise SystemExit(f"no finished seed under {RESULTS / 'convert'} for --on {args.on}; run python -m benchmarks.convert")
    write(runs)
    print((RESULTS / "convert.md").read_text(), end="")


if __name__ == "__main__":
    main()
