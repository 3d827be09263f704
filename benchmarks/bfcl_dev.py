"""BFCL dev: tool-call accuracy on the held-out dev split of every BFCL category, scored by BFCL's own
AST checker (the `bfcl-eval` package), the bare base and base + "tools" side by side, through the server.

    python -m benchmarks.bfcl_dev [--models default@none default] [--split dev|all] [--limit N]
                                  [--categories simple_python multiple ...] [--threads N | --base-url URL]
                                  [--max-tokens 512] [--out FILE] [--misses FILE]

Every question goes through the official openai client at temperature 0, with its functions prepared as
BFCL's harness prepares them for function-calling models (`edgeslm/pipeline/bfcl.py`: "." in names becomes
"_", Java/JavaScript parameters become strings in that language's syntax) and the server's defaults
(`tool_choice` auto, `parallel_tool_calls` unset). The split is the one the "tools" recipe was trained
without (seed 13, 20% of each category); by default without the dev questions whose text BFCL repeats in
another category's training split (`--split dev-raw` keeps them). Figures per category and model: accuracy (BFCL's checker; an
error or a text answer where a call is due counts as wrong; irrelevance: right when no call comes back),
parse_valid and schema_valid over the answers that hold calls (every call's arguments parse as a JSON
object and validate against the tool's schema), text_rate, truncated_rate, median latency, errors.
The last stdout line is one JSON object.

What it can show: whether calls are right on questions written apart from this project's generators,
with the same checker the leaderboard uses. What it cannot: the split is BFCL's non-live data, the same
distribution the adapter trained on (other questions, other functions); live user requests and
multi-turn work are not in it.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

from edgeslm.pipeline import bfcl


def ask(client, model: str, item: dict, max_tokens: int, check, tool_choice: str = "auto",
        parallel: str = "unset") -> dict:
    """One request and its record (never raises on API errors: an error is a wrong answer).
    `tool_choice` "named" names the answer's (first) function, as instructor-style clients do."""
    import jsonschema
    import openai

    tools = bfcl.openai_tools(item)
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    kwargs = {}
    if tool_choice == "named" and item["ground_truth"]:
        kwargs["tool_choice"] = {"type": "function", "function": {"name": bfcl.tool_name(next(iter(item["ground_truth"][0])))}}
    if parallel != "unset":
        kwargs["parallel_tool_calls"] = parallel == "on"
    t0 = time.perf_counter()
    try:
        resp = client.chat.completions.create(model=model, messages=item["question"][0], tools=tools,
                                              temperature=0, max_tokens=max_tokens, **kwargs)
    except openai.OpenAIError as e:
        return {"error": f"{type(e).__name__}: {e}", "correct": False, "reason": "error"}
    latency = time.perf_counter() - t0
    msg = resp.choices[0].message
    calls = []
    for c in msg.tool_calls or []:
        try:
            args = json.loads(c.function.arguments)
        except (TypeError, ValueError):
            args = None
        calls.append({"name": c.function.name, "arguments": args, "raw": c.function.arguments})
    parse_ok = all(isinstance(c["arguments"], dict) for c in calls)
    schema_ok = parse_ok and all(c["name"] in schemas and jsonschema.Draft202012Validator(
        schemas[c["name"]]).is_valid(c["arguments"]) for c in calls)
    ok, reason = check(item, [c for c in calls if isinstance(c["arguments"], dict)]) if parse_ok else (False, "unparsable")
    return {"latency": latency, "calls": calls, "text": msg.content, "parse_ok": parse_ok, "schema_ok": schema_ok,
            "truncated": bool((resp.choices[0].model_extra or {}).get("truncated")), "correct": ok, "reason": reason}


def figures(records: list[dict]) -> dict:
    answered = [r for r in records if "error" not in r]
    with_calls = [r for r in answered if r["calls"]]

    def frac(k, n):
        return round(k / n, 4) if n else None
    lat = [r["latency"] for r in answered]
    return {"n": len(records), "errors": len(records) - len(answered),
            "accuracy": frac(sum(r["correct"] for r in records), len(records)),
            "parse_valid": frac(sum(r["parse_ok"] for r in with_calls), len(with_calls)),
            "schema_valid": frac(sum(r["schema_ok"] for r in with_calls), len(with_calls)),
            "text_rate": frac(sum(not r["calls"] and not r["truncated"] for r in answered), len(answered)),
            "truncated_rate": frac(sum(r["truncated"] for r in answered), len(answered)),
            "median_latency_s": round(statistics.median(lat), 3) if lat else None}


def machine() -> dict:
    from edgeslm import device
    return {"platform": platform.platform(), **device.describe()}


def print_table(rows: dict[str, dict[str, dict]]) -> None:
    from rich.console import Console
    from rich.table import Table

    cols = ["n", "accuracy", "parse_valid", "schema_valid", "text_rate", "truncated_rate", "median_latency_s", "errors"]
    fmt = lambda v: "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))  # noqa: E731
    table = Table(title="BFCL dev split, BFCL's AST checker")
    table.add_column("category")
    table.add_column("model")
    for c in cols:
        table.add_column(c, justify="right")
    for cat, per_model in rows.items():
        for model, f in per_model.items():
            table.add_row(cat, model, *(fmt(f[c]) for c in cols), style="bold" if cat == "overall" else None)
    Console(width=160).print(table)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="BFCL data folder (default: EDGESLM_BFCL_DIR or ../shared/data/bfcl)")
    ap.add_argument("--categories", nargs="+", default=list(bfcl.CATEGORIES))
    ap.add_argument("--models", nargs="+", default=["default@none", "default"],
                    help="model names to compare (default: the bare base and base + its 'tools' adapter)")
    ap.add_argument("--split", choices=("dev", "dev-raw", "all"), default="dev",
                    help="dev: the dev split without questions that also appear (word for word) in any "
                         "category's training split; dev-raw: with them; all: every question")
    ap.add_argument("--limit", type=int, default=0, help="questions per category (0 = all of the split)")
    ap.add_argument("--max-tokens", type=int, default=512)
    ap.add_argument("--tool-choice", choices=("auto", "named"), default="auto",
                    help="auto: not sent (the server's default); named: the answer's function, by name")
    ap.add_argument("--parallel", choices=("unset", "on", "off"), default="unset", help="parallel_tool_calls to send")
    ap.add_argument("--base-url", help="use a running server (http://HOST:PORT/v1) instead of starting one")
    ap.add_argument("--threads", type=int, default=None, help="--threads for the started server")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/bfcl_dev.json"))
    ap.add_argument("--misses", type=Path, help="write wrong answers as JSONL (model, id, expected, got, reason)")
    ap.add_argument("--chart", type=Path, default=Path("benchmarks/results/bfcl_dev.png"))
    args = ap.parse_args(argv)
    categories = [c.strip() for a in args.categories for c in a.split(",") if c.strip()]
    bad = [c for c in categories if c not in bfcl.CATEGORIES]
    if bad:
        ap.error(f"unknown categories {bad}; the categories are: {', '.join(bfcl.CATEGORIES)}")
    check = bfcl.checker()
    items, removed = {}, {}
    for cat in categories:
        train, dev = bfcl.split(bfcl.load(cat, args.data))
        if args.split == "dev":
            dev, removed[cat] = bfcl.clean_dev(cat, args.data)
        chosen = dev if args.split.startswith("dev") else sorted(train + dev, key=lambda q: q["id"])
        items[cat] = chosen[: args.limit or None]
    if removed:
        print("dev questions left out because a training split holds the same text: "
              + ", ".join(f"{c} {n}" for c, n in removed.items()), flush=True)

    from openai import OpenAI
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from benchmarks._server import running_server

    results: dict[str, dict[str, list[dict]]] = {c: {m: [] for m in args.models} for c in categories}
    ctx = nullcontext(args.base_url) if args.base_url else running_server("default", threads=args.threads)
    progress = Progress(TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("acc {task.fields[acc]}"), TimeElapsedColumn(), transient=False)
    with ctx as base, progress:
        client = OpenAI(base_url=base, api_key="none", max_retries=0, timeout=300)
        for cat in categories:
            for model in args.models:  # alternating per category: machine drift hits both alike
                recs = results[cat][model]
                task = progress.add_task(f"{cat} {model}", total=len(items[cat]), acc="-")
                for item in items[cat]:
                    rec = ask(client, model, item, args.max_tokens, check, args.tool_choice, args.parallel)
                    rec["id"] = item["id"]
                    recs.append(rec)
                    if "error" in rec:
                        print(f"error on {model} {item['id']}: {rec['error']}", file=sys.stderr, flush=True)
                    progress.update(task, advance=1, acc=f"{sum(r['correct'] for r in recs) / len(recs):.3f}")

    rows = {cat: {m: figures(results[cat][m]) for m in args.models} for cat in categories}
    rows["overall"] = {m: figures([r for c in categories for r in results[c][m]]) for m in args.models}
    print_table(rows)
    if args.misses:
        by_id = {q["id"]: q for c in categories for q in items[c]}
        with args.misses.open("w") as f:
            for cat in categories:
                for m in args.models:
                    for r in results[cat][m]:
                        if not r["correct"]:
                            f.write(json.dumps({"model": m, "id": r["id"], "expected": by_id[r["id"]]["ground_truth"],
                                                "got": r.get("error") or {"calls": [{"name": c["name"], "arguments": c["raw"]}
                                                                                    for c in r["calls"]], "text": r["text"]},
                                                "reason": r["reason"]}) + "\n")
    result = {"benchmark": "bfcl_dev", "split": args.split, "left_out_as_duplicates": removed,
              "checker": "bfcl_eval ast_checker",
              "machine": machine(), "models": args.models, "max_tokens": args.max_tokens, "limit": args.limit or None,
              "tool_choice": args.tool_choice, "parallel": args.parallel,
              "categories": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    from benchmarks._chart import bars

    groups = categories + ["overall"]
    bars(args.chart, f"BFCL {args.split} split, accuracy (BFCL's checker)", groups,
         {m: [rows[c][m]["accuracy"] or 0.0 for c in groups] for m in args.models}, "accuracy")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
