"""The conversion report: one run of `edgeslm convert run` as JSON, as Markdown, and as three charts
(cluster sizes and cohesion; held-out exact match per task without and with its adapter; latency and
cost per task against the teacher). Owns only presentation: it reads the result dict convert.py builds.
"""

from __future__ import annotations

import json
from pathlib import Path


def _pct(v) -> str:
    return "-" if v is None else f"{v:.1%}"


def _s(v) -> str:
    return "-" if v is None else f"{v:.2f} s"


def zero_shot(t: dict) -> dict:
    return ((t.get("select") or {}).get("zero_shot") or {}).get(t.get("model")) or {}


def markdown(r: dict, charts: list[Path]) -> str:
    d, cur = r["drift"], r["curate"]
    lines = ["# edgeslm conversion report", "",
             f"Calls captured: {cur['calls']}, curated: {cur['kept']} ({cur['duplicates']} duplicates, "
             f"{sum(cur['dropped'].values())} broken records dropped).",
             "Personal data replaced: " + ", ".join(f"{k} {v}" for k, v in cur["pii"].items() if v) +
             f" (not covered: {', '.join(cur['not_covered'])}).", "",
             f"Drift: {_pct(d['unsure'])} of {d['n']} new calls routed below the confidence threshold "
             f"(limit {_pct(d['limit'])}); new tasks: {', '.join(d['new_tasks']) or 'none'}; "
             f"retrained: {'yes' if d['retrain'] else 'no'}.", "",
             f"## Tasks ({r['clusters']['k']} clusters)", "",
             "| task | calls | cohesion | model | trained on (captured + augmented) | exact zero-shot "
             "| exact with adapter | AST | valid | promoted | why |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    cohesion = {c["id"]: c["cohesion"] for c in r["clusters"]["clusters"]}
    for t in r["tasks"]:
        s, n = t.get("student") or {}, t.get("training_examples") or {}
        trained = f"{n['capture']} + {n['augmented']}" if n else "-"
        lines.append(f"| {t['task']} | {t['size']} | {cohesion.get(t['cluster'], 0):.2f} | {t.get('model') or 'teacher'} "
                     f"| {trained} | {_pct(zero_shot(t).get('exact'))} | {_pct(s.get('exact'))} | {_pct(s.get('ast'))} "
                     f"| {_pct(s.get('valid'))} | {'yes' if t.get('promoted') else 'no'} | {t.get('why', '')} |")
    lines += ["", "## Latency and cost against the teacher", "",
              "| task | teacher p50 | student p50 | tokens/call | teacher $/1k calls | after |", "|---|---|---|---|---|---|"]
    for t in r["tasks"]:
        s, c = t.get("student") or {}, t.get("cost") or {}
        lines.append(f"| {t['task']} | {_s((t.get('teacher') or {}).get('latency_p50_s'))} | {_s(s.get('latency_p50_s'))} "
                     f"| {c.get('tokens_per_call', 0):.0f} | {c.get('teacher_usd_per_1k_calls', 0):.3f} "
                     f"| {c.get('student_usd_per_1k_calls', 0):.3f} |")
    lines.append(f"\nTeacher price assumed: ${r['teacher_usd_per_mtok']} per million tokens (set yours with "
                 "--teacher-usd-per-mtok); a promoted task costs nothing per call locally.")
    rt = r.get("router") or {}
    lines += ["", "## Router", "",
              f"Held-out accuracy {_pct(rt.get('accuracy'))} on {rt.get('n', 0)} calls; {_pct(rt.get('confident'))} "
              f"routed with confidence ≥ {rt.get('threshold')}.", "", "## Stage wall times", "",
              "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in r["stages"].items()]
    lines += [""] + [f"![{p.stem}]({p.name})" for p in charts]
    return "\n".join(lines) + "\n"


def charts(r: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    cl = r["clusters"]["clusters"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar([c["label"] for c in cl], [c["size"] for c in cl], color="#4c78a8")
    for i, c in enumerate(cl):
        ax.text(i, c["size"], f"cohesion {c['cohesion']:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("curated calls")
    ax.set_title("Tasks found (clusters)")
    plt.setp(ax.get_xticklabels(), rotation=15, fontsize=8)
    fig.tight_layout()
    paths.append(out / "clusters.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    tasks = [t for t in r["tasks"] if t.get("student")]
    if tasks:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.5))
        x = range(len(tasks))
        a1.bar([i - 0.2 for i in x], [zero_shot(t).get("exact", 0) for t in tasks], 0.4, label="without adapter")
        a1.bar([i + 0.2 for i in x], [t["student"]["exact"] for t in tasks], 0.4, label="with adapter")
        a1.axhline(r["target"], color="gray", ls="--", lw=1, label="target")
        a1.set_xticks(list(x), [t["task"] for t in tasks], fontsize=8, rotation=15)
        a1.set_ylim(0, 1.05)
        a1.set_title("Held-out exact tool-call match")
        a1.legend(fontsize=8)
        a2.bar([i - 0.2 for i in x], [(t.get("teacher") or {}).get("latency_p50_s") or 0 for t in tasks], 0.4,
               label="teacher (captured)")
        a2.bar([i + 0.2 for i in x], [t["student"]["latency_p50_s"] or 0 for t in tasks], 0.4, label="student (local)")
        a2.set_xticks(list(x), [t["task"] for t in tasks], fontsize=8, rotation=15)
        a2.set_ylabel("p50 latency (s)")
        a2.set_title("Latency against the teacher")
        a2.legend(fontsize=8)
        fig.tight_layout()
        paths.append(out / "accuracy_latency.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)

        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.bar([i - 0.2 for i in x], [(t.get("cost") or {}).get("teacher_usd_per_1k_calls", 0) for t in tasks], 0.4,
               label="all on the teacher")
        ax.bar([i + 0.2 for i in x], [(t.get("cost") or {}).get("student_usd_per_1k_calls", 0) for t in tasks], 0.4,
               label="after conversion")
        ax.set_xticks(list(x), [t["task"] for t in tasks], fontsize=8, rotation=15)
        ax.set_ylabel(f"$ per 1k calls (at ${r['teacher_usd_per_mtok']}/M tokens)")
        ax.set_title("Teacher cost per task")
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(out / "cost.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths


def save(r: dict, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    pics = charts(r, out)
    slim = json.loads(json.dumps(r, default=str))
    for c in slim["clusters"]["clusters"]:
        c.pop("centroid", None)
    slim["clusters"].pop("assignments", None)
    (out / "report.json").write_text(json.dumps(slim, indent=2))
    (out / "report.md").write_text(markdown(r, pics))
    return [out / "report.json", out / "report.md", *pics]
