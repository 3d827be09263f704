"""BFCL dev: tool-call accuracy on the held-out dev part of BFCL's function split, scored by BFCL's own
AST checker (the `bfcl-eval` package), the bare base and base + "tools" side by side, through the server,
beside FunctionGemma's model-card figures. The one command behind the README's BFCL table.

    python -m benchmarks.bfcl_dev [--models default@none default] [--split dev|val|dev-raw|legacy|all]
                                  [--limit N] [--categories simple_python multiple ...]
                                  [--threads N | --base-url URL] [--max-tokens 512] [--temperature 0|unset]
                                  [--lean COPY:TOOL ...]
                                  [--out FILE] [--chart FILE] [--misses FILE]

Every question goes through the official openai client (temperature 0 unless `--temperature unset`,
which leaves it to the server's defaults), with its functions prepared as BFCL's harness prepares them for
function-calling models (`edgeslm/pipeline/bfcl.py`: "." in names becomes "_", Java/JavaScript parameters
become strings in that language's syntax) and the server's defaults (`tool_choice` auto,
`parallel_tool_calls` unset). `--split dev` (the default) is the function split's dev part (seed 13, about
20% of each category; no function offered there is offered in training or val) without questions whose
text repeats a trained one; `val` is the slice of train that chooses steps and recipes; `dev-raw` keeps the
repeats; `legacy` is the old split by question id, whose dev functions are also in training.

Scoring: BFCL's checker; an error, a text answer where a call is due, an answer cut off at `max_tokens`
(finish_reason "length"), arguments that do not parse, or a tool-call envelope left in `content` count as
wrong, on irrelevance too (a call cut off at the cap is not a refusal). Figures per category and model:
accuracy, parse_valid and schema_valid over the answers that hold calls, text_rate, truncated_rate, median
latency, errors. Aggregates: `simple` (the mean of simple_python, simple_java and simple_javascript, as
FunctionGemma's card reports it), `overall` (every question pooled), and `legacy_unseen` (overall over the
questions that the legacy split did not train on: the only fair reading of an adapter trained on it).
The last stdout line is one JSON object.

What it can show: whether calls are right on questions and functions the adapter never trained on, with
the leaderboard's own checker. What it cannot: the split is BFCL's non-live data, the same distribution
the adapter trained on; live user requests and multi-turn work are not in it; FunctionGemma's figures are
its card's (BFCL's full categories, its own harness), not measured here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

from edgeslm.pipeline import bfcl

# FunctionGemma (the same Gemma 3 270M base), its model card's BFCL figures; simple is the card's mean of
# simple python, java and javascript
CARD = {"simple": 0.616, "multiple": 0.635, "parallel": 0.39, "parallel_multiple": 0.295, "irrelevance": 0.737}
SIMPLE = ("simple_python", "simple_java", "simple_javascript")
ENVELOPE_MARKERS = ("<tool_call>", '{"name": "')


def ask(client, model: str, item: dict, max_tokens: int, check, tool_choice: str = "auto",
        parallel: str = "unset", temperature: float | None = 0.0, lean: dict | None = None) -> dict:
    """One request and its record (never raises on API errors: an error is a wrong answer).
    `tool_choice` "named" names the answer's (first) function, as instructor-style clients do."""
    import jsonschema
    import openai

    tools = bfcl.openai_tools(item)
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    kwargs: dict = {}
    if tool_choice == "named" and item["ground_truth"]:
        kwargs["tool_choice"] = {"type": "function", "function": {"name": bfcl.tool_name(next(iter(item["ground_truth"][0])))}}
    if parallel != "unset":
        kwargs["parallel_tool_calls"] = parallel == "on"
    if temperature is not None:
        kwargs["temperature"] = temperature
    if lean:
        kwargs["extra_body"] = lean
    t0 = time.perf_counter()
    try:
        resp = client.chat.completions.create(model=model, messages=item["question"][0], tools=tools,
                                              max_tokens=max_tokens, **kwargs)
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
    truncated = bool((resp.choices[0].model_extra or {}).get("truncated")) or resp.choices[0].finish_reason == "length"
    ok, reason = judge(item, calls, msg.content, truncated, check)
    return {"latency": latency, "calls": calls, "text": msg.content, "parse_ok": parse_ok, "schema_ok": schema_ok,
            "truncated": truncated, "correct": ok, "reason": reason}


def _lean(text: str) -> tuple[float, ...]:
    try:
        c, t, *k = (float(x) for x in text.split(":"))
        if len(k) > 4:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give copy_bias:tool_bias[:call_bias[:more_bias[:arg_bias[:close_bias]]]], "
                                         "e.g. 2:3, 2:3:2 or 2:3:4:10:2:2") from None
    return c, t, *k, *[0.0] * (4 - len(k))


def judge(item: dict, calls: list[dict], content: str | None, truncated: bool, check) -> tuple[bool, str]:
    """(right, why): BFCL's checker on the calls, after the honest refusals: an answer cut off at the
    token cap, arguments that do not parse, or an envelope left in the text are wrong whatever the
    category (an irrelevance answer cut off mid-call is not a refusal)."""
    if truncated:
        return False, "cut off at max_tokens"
    if not all(isinstance(c["arguments"], dict) for c in calls):
        return False, "unparsable arguments"
    if content and any(m in content for m in ENVELOPE_MARKERS):
        return False, "tool-call envelope in content"
    return check(item, calls)


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


def aggregates(rows: dict[str, dict[str, dict]], results: dict, models: list[str], unseen: set) -> None:
    """Adds `simple` (mean of the three simple categories' accuracies, when all three ran), `overall`
    (pooled) and `legacy_unseen` (pooled over ids the legacy split did not train on) to `rows`."""
    cats = list(rows)
    if all(c in rows for c in SIMPLE):
        rows["simple"] = {m: {"n": sum(rows[c][m]["n"] for c in SIMPLE),
                              "accuracy": round(sum(rows[c][m]["accuracy"] or 0 for c in SIMPLE) / 3, 4)}
                          for m in models}
    rows["overall"] = {m: figures([r for c in cats for r in results[c][m]]) for m in models}
    rows["legacy_unseen"] = {m: figures([r for c in cats for r in results[c][m] if r["id"] in unseen]) for m in models}


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
            table.add_row(cat, model, *(fmt(f.get(c)) for c in cols), style="bold" if cat == "overall" else None)
        if cat in CARD:
            table.add_row(cat, "FunctionGemma (card)", "", fmt(CARD[cat]), style="dim")
    Console(width=160).print(table)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="BFCL data folder (default: EDGESLM_BFCL_DIR or ../shared/data/bfcl)")
    ap.add_argument("--categories", nargs="+", default=list(bfcl.CATEGORIES))
    ap.add_argument("--models", nargs="+", default=["default@none", "default"],
                    help="model names to compare (default: the bare base and base + its 'tools' adapter)")
    ap.add_argument("--split", choices=("dev", "val", "dev-raw", "legacy", "all"), default="dev",
                    help="dev: the function split's dev part without questions whose text a trained part repeats; "
                         "val: the slice of train that picks steps and recipes; dev-raw: dev with the repeats; "
                         "legacy: the old split by question id (its dev functions are also in training); all: every question")
    ap.add_argument("--limit", type=int, default=0, help="questions per category (0 = all of the split)")
    ap.add_argument("--max-tokens", type=int, default=512)
    ap.add_argument("--lean", type=_lean, nargs="+", default=[(None,) * 6],
                    metavar="COPY:TOOL[:CALL[:MORE[:ARG[:CLOSE]]]]",
                    help="copy_bias:tool_bias[:call_bias[:more_bias[:arg_bias[:close_bias]]]] to send (each model runs once "
                    "per lean; default: none sent, the server's defaults)")
    ap.add_argument("--temperature", default="0", help="temperature to send, or 'unset' for the server's defaults")
    ap.add_argument("--tool-choice", choices=("auto", "named"), default="auto",
                    help="auto: not sent (the server's default); named: the answer's function, by name")
    ap.add_argument("--parallel", choices=("unset", "on", "off"), default="unset", help="parallel_tool_calls to send")
    ap.add_argument("--base-url", help="use a running server (http://HOST:PORT/v1) instead of starting one")
    ap.add_argument("--threads", type=int, default=None, help="--threads for the started server")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/bfcl_dev.json"))
    ap.add_argument("--misses", type=Path, help="write wrong answers as JSONL (model, id, expected, got, reason)")
    ap.add_argument("--chart", type=Path, help="the chart's file (default: --out's, as .png)")
    ap.add_argument("--redraw", type=Path, metavar="RESULT.json", help="only draw this result file's chart (to --chart, "
                    "else beside it), as after a run whose categories were scored again and merged")
    args = ap.parse_args(argv)
    if args.redraw:
        return chart(json.loads(args.redraw.read_text()), args.chart or args.redraw.with_suffix(".png"))
    args.chart = args.chart or args.out.with_suffix(".png")  # a run written elsewhere never redraws the README's
    categories = [c.strip() for a in args.categories for c in a.split(",") if c.strip()]
    bad = [c for c in categories if c not in bfcl.CATEGORIES]
    if bad:
        ap.error(f"unknown categories {bad}; the categories are: {', '.join(bfcl.CATEGORIES)}")
    check = bfcl.checker()
    items, removed = {}, {}
    parts = bfcl.function_split(args.data)
    unseen = set()  # ids the legacy split (what the adapter of issue 13 trained on) left out of training
    for cat in categories:
        old_train, old_dev = bfcl.split(bfcl.load(cat, args.data))
        unseen |= {q["id"] for q in old_dev}
        if args.split in ("dev", "val"):
            chosen, removed[cat] = bfcl.clean_dev(cat, args.data, part=args.split)
        elif args.split == "dev-raw":
            chosen = parts["dev"][cat]
        elif args.split == "legacy":
            chosen = old_dev
        else:
            chosen = sorted(old_train + old_dev, key=lambda q: q["id"])
        items[cat] = chosen[: args.limit or None]
    temperature = None if args.temperature == "unset" else float(args.temperature)
    if removed:
        print(f"{args.split} questions left out because a trained part holds the same text: "
              + ", ".join(f"{c} {n}" for c, n in removed.items()), flush=True)

    from openai import OpenAI
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from benchmarks._server import running_server

    # each model once per lean asked for (labelled MODEL+copyC+toolT+callK[+moreM][+argA][+closeZ]; none
    # asked: the server's defaults)
    variants = {m + (f"+copy{c:g}+tool{t:g}+call{k:g}" + (f"+more{x:g}" if x else "") + (f"+arg{a:g}" if a else "")
                     + (f"+close{z:g}" if z else "") if c is not None else ""):
                (m, {} if c is None else {"copy_bias": c, "tool_bias": t, "call_bias": k, "more_bias": x, "arg_bias": a,
                                          "close_bias": z})
                for m in args.models for c, t, k, x, a, z in args.lean}
    args.models = list(variants)
    results: dict[str, dict[str, list[dict]]] = {c: {m: [] for m in args.models} for c in categories}
    # no prefix states from the disk: one restored from an earlier run is evaluated otherwise than whole, and
    # a greedy near-tie then depends on what ran before (val moved by a question or two between reruns)
    env = {**os.environ, "EDGESLM_PREFIX_DISK_MB": "0"}
    ctx = nullcontext(args.base_url) if args.base_url else running_server("default", threads=args.threads, env=env)
    progress = Progress(TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("acc {task.fields[acc]}"), TimeElapsedColumn(), transient=False)
    with ctx as base, progress:
        client = OpenAI(base_url=base, api_key="none", max_retries=0, timeout=300)
        for cat in categories:
            for model in args.models:  # alternating per category: machine drift hits both alike
                recs = results[cat][model]
                task = progress.add_task(f"{cat} {model}", total=len(items[cat]), acc="-")
                for item in items[cat]:
                    rec = ask(client, variants[model][0], item, args.max_tokens, check, args.tool_choice, args.parallel,
                              temperature, variants[model][1])
                    rec["id"] = item["id"]
                    recs.append(rec)
                    if "error" in rec:
                        print(f"error on {model} {item['id']}: {rec['error']}", file=sys.stderr, flush=True)
                    progress.update(task, advance=1, acc=f"{sum(r['correct'] for r in recs) / len(recs):.3f}")

    rows = {cat: {m: figures(results[cat][m]) for m in args.models} for cat in categories}
    aggregates(rows, results, args.models, unseen)
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
              "tool_choice": args.tool_choice, "parallel": args.parallel, "temperature": temperature,
              "split_sizes": {c: len(items[c]) for c in categories}, "functiongemma_card": CARD,
              "categories": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    chart(result, args.chart)
    print(json.dumps(result), flush=True)


def chart(result: dict, path: Path) -> None:
    """Each category's accuracy per model beside FunctionGemma's card (`--redraw` draws a result file's)."""
    from benchmarks._chart import bars

    rows = result["categories"]
    groups = [c for c in ("simple", "multiple", "parallel", "parallel_multiple", "irrelevance") if c in rows]
    groups += [c for c in rows if c not in groups and c not in SIMPLE and c not in ("overall", "legacy_unseen")] + ["overall"]
    series = {m: [rows[c][m]["accuracy"] or 0.0 for c in groups] for m in result["models"]}
    series["FunctionGemma (card)"] = [CARD.get(c, 0.0) for c in groups]
    bars(path, f"BFCL {result['split']} (function split), accuracy by BFCL's checker", groups, series, "accuracy")


if __name__ == "__main__":
    main()
