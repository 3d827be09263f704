"""BFCL dev check: tool-call accuracy on BFCL v4 `simple_python` and `multiple` through the server.

    python -m benchmarks.bfcl_dev [--limit N] [--categories simple_python multiple] [--tool-choice auto|required]
                                  [--parallel unset|on|off] [--base-url URL | --model ID --threads N]
                                  [--max-tokens 256]
                                  [--data DIR] [--out FILE] [--misses FILE]

Every question goes through the official openai client at temperature 0 with its functions as OpenAI
tools ("." in names becomes "_", BFCL types become JSON Schema). Scoring follows BFCL's AST checker for
these single-call categories: exactly one call, right function, required parameters present, no
parameter outside the function's properties or the answer, every value among the acceptable ones
(strings lower-cased without spaces and ",./-_*^"; "" means the parameter may be left out), int
accepted for float. One deliberate leniency: numbers are compared numerically inside lists and dicts
too (BFCL rejects ints in a float list). Figures per category: accuracy (over all questions, errors
count as wrong); over answers with calls: parse_valid (every call's arguments parse as a JSON object)
and schema_valid (every call names a given tool and its arguments validate against the converted
schema); over answered requests: text_rate (a text answer, no call) and truncated_rate (max_tokens
cut the call short: no call returned, the response flags `truncated`); mean and median latency; errors.
The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared/data/bfcl"
CATEGORIES = ("simple_python", "multiple")

# --- conversion -------------------------------------------------------------------------------------

_TYPES = {"dict": "object", "float": "number", "tuple": "array", "any": None}
_KEEP = {"description", "required", "enum", "default", "format", "title", "const", "examples", "pattern",
         "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
         "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties"}


def to_json_schema(s: dict) -> dict:
    """BFCL parameter schema -> JSON Schema (recursively); drops keys that are not JSON Schema."""
    out: dict = {}
    for k, v in s.items():
        if k == "type":
            t = _TYPES.get(v, v) if isinstance(v, str) else v
            if t:
                out["type"] = t
        elif k == "properties" and isinstance(v, dict):
            out[k] = {name: to_json_schema(sub) for name, sub in v.items()}
        elif k in ("items", "additionalProperties") and isinstance(v, dict):
            out[k] = to_json_schema(v)
        elif k == "items" and isinstance(v, list):
            out[k] = [to_json_schema(x) for x in v]
        elif k in _KEEP:
            out[k] = v
    return out


def tool_name(name: str) -> str:
    """An OpenAI-legal function name (^[a-zA-Z0-9_-]{1,64}$) for a BFCL one."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", name)[:64] or "_"


def to_openai_tool(fn: dict) -> dict:
    return {"type": "function", "function": {
        "name": tool_name(fn["name"]), "description": fn.get("description", ""),
        "parameters": to_json_schema(fn.get("parameters") or {"type": "dict", "properties": {}})}}


# --- scoring ----------------------------------------------------------------------------------------

_STRIP = re.compile(r"[ ,./\-_*^]")


def normalize(value):
    """BFCL's string standardisation, applied through lists and dicts."""
    if isinstance(value, str):
        return _STRIP.sub("", value).lower().replace("'", '"')
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    return value


def _is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _type_ok(value, bfcl_type) -> bool:
    return {
        "string": lambda: isinstance(value, str),
        "integer": lambda: isinstance(value, int) and not isinstance(value, bool),
        "float": lambda: _is_num(value),
        "number": lambda: _is_num(value),
        "boolean": lambda: isinstance(value, bool),
        "array": lambda: isinstance(value, list),
        "tuple": lambda: isinstance(value, list),
        "dict": lambda: isinstance(value, dict),
        "object": lambda: isinstance(value, dict),
    }.get(bfcl_type, lambda: True)()


def _matches(value, want) -> bool:
    """One acceptable value. A dict in an answer maps each key to its list of acceptable values."""
    if isinstance(want, dict):
        return isinstance(value, dict) and all(
            k in want and _any_match(v, want[k]) for k, v in value.items()) and all(
            k in value or "" in (w if isinstance(w, list) else [w]) for k, w in want.items())
    if isinstance(want, list):
        return isinstance(value, list) and len(value) == len(want) and all(map(_matches, value, want))
    if isinstance(want, str):
        return isinstance(value, str) and normalize(value) == normalize(want)
    if isinstance(want, bool) or isinstance(value, bool):
        return value is want
    if _is_num(want):
        return _is_num(value) and value == want
    return value == want


def _any_match(value, acceptable) -> bool:
    return any(_matches(value, w) for w in (acceptable if isinstance(acceptable, list) else [acceptable]))


def score_call(name: str, args, function: dict, answer: dict) -> tuple[bool, str]:
    """One call (BFCL name, parsed arguments) against the expected BFCL function spec and its answer
    {fname: {param: [acceptable values]}}. Returns (correct, reason)."""
    (fname, expected), = answer.items()
    if name not in (fname, tool_name(fname)):
        return False, f"wrong function {name!r}, expected {fname!r}"
    if not isinstance(args, dict):
        return False, "arguments are not an object"
    params = function.get("parameters") or {}
    props = params.get("properties") or {}
    for p in params.get("required") or []:
        if p not in args:
            return False, f"missing required parameter {p!r}"
    for p, v in args.items():
        if p not in props or p not in expected:
            return False, f"unexpected parameter {p!r}"
        acceptable = expected[p]
        if not _type_ok(v, props[p].get("type")):
            # BFCL's "variable" case: the answer itself holds a value of another type than declared
            sample = next((a for a in acceptable if a != ""), None)
            if sample is None or type(sample) is not type(v):
                return False, f"wrong type for {p!r}: {v!r}"
        if not _any_match(v, acceptable):
            return False, f"wrong value for {p!r}: {v!r}, expected one of {acceptable!r}"
    for p, acceptable in expected.items():
        if p not in args and "" not in acceptable:
            return False, f"missing parameter {p!r}"
    return True, "ok"


# --- data and run -----------------------------------------------------------------------------------

def load(data: Path, category: str) -> list[dict]:
    def rows(path: Path) -> list[dict]:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    name = f"BFCL_v4_{category}.json"
    answers = {a["id"]: a["ground_truth"] for a in rows(data / "possible_answer" / name)}
    return [{**q, "ground_truth": answers[q["id"]]} for q in rows(data / name)]


def ask(client, model: str, item: dict, tool_choice: str, max_tokens: int, parallel: str = "unset") -> dict:
    """One request; returns the record used for the figures (never raises on API errors)."""
    import jsonschema
    import openai

    tools = [to_openai_tool(f) for f in item["function"]]
    back = {t["function"]["name"]: f for t, f in zip(tools, item["function"])}
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    kwargs = {"tool_choice": tool_choice} if tool_choice != "auto" else {}
    if parallel != "unset":
        kwargs["parallel_tool_calls"] = parallel == "on"
    t0 = time.perf_counter()
    try:
        resp = client.chat.completions.create(model=model, messages=item["question"][0], tools=tools,
                                              temperature=0, max_tokens=max_tokens, **kwargs)
    except openai.OpenAIError as e:
        return {"error": f"{type(e).__name__}: {e}"}
    latency = time.perf_counter() - t0
    msg = resp.choices[0].message
    calls = []
    for c in msg.tool_calls or []:
        try:
            args = json.loads(c.function.arguments)
        except (TypeError, ValueError):
            args = None
        calls.append({"name": c.function.name, "arguments": c.function.arguments, "parsed": args})
    parse_ok = bool(calls) and all(isinstance(c["parsed"], dict) for c in calls)
    schema_ok = None
    if calls:
        schema_ok = all(c["name"] in schemas and isinstance(c["parsed"], dict)
                        and jsonschema.Draft202012Validator(schemas[c["name"]]).is_valid(c["parsed"])
                        for c in calls)
    expected = item["ground_truth"][0]
    if len(calls) != 1:
        ok, reason = False, f"{len(calls)} tool calls"
    elif calls[0]["parsed"] is None:
        ok, reason = False, "arguments are not JSON"
    else:
        fname = next(iter(expected))
        fn = next((f for f in item["function"] if f["name"] == fname), item["function"][0])
        got_name = back[calls[0]["name"]]["name"] if calls[0]["name"] in back else calls[0]["name"]
        ok, reason = score_call(got_name, calls[0]["parsed"], fn, expected)
    truncated = bool((resp.choices[0].model_extra or {}).get("truncated"))
    return {"latency": latency, "calls": calls, "text": msg.content, "parse_ok": parse_ok, "truncated": truncated,
            "schema_ok": schema_ok, "correct": ok, "reason": reason}


def figures(records: list[dict]) -> dict:
    answered = [r for r in records if "error" not in r]
    with_calls = [r for r in answered if r["calls"]]

    def frac(k, n):
        return round(k / n, 4) if n else None
    return {
        "n": len(records), "errors": len(records) - len(answered),
        "accuracy": frac(sum(r["correct"] for r in answered), len(records)),
        "parse_valid": frac(sum(r["parse_ok"] for r in with_calls), len(with_calls)),
        "schema_valid": frac(sum(r["schema_ok"] for r in with_calls), len(with_calls)),
        "text_rate": frac(sum(not r["calls"] and not r["truncated"] for r in answered), len(answered)),
        "truncated_rate": frac(sum(r["truncated"] for r in answered), len(answered)),
        "mean_latency_s": round(statistics.fmean(r["latency"] for r in answered), 3) if answered else None,
        "median_latency_s": round(statistics.median(r["latency"] for r in answered), 3) if answered else None,
    }


def machine() -> dict:
    try:
        from edgeslm import device
        return {"platform": platform.platform(), **device.describe()}
    except Exception:  # the benchmark must not depend on the package internals
        return {"platform": platform.platform(), "machine": platform.machine(),
                "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}


def print_table(rows: dict[str, dict]) -> None:
    cols = ["n", "accuracy", "parse_valid", "schema_valid", "text_rate", "truncated_rate", "mean_latency_s",
            "median_latency_s",
            "errors"]
    fmt = lambda v: "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))  # noqa: E731
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(f"{'category':<16}" + "".join(f"{c:>16}" for c in cols))
        for name, f in rows.items():
            print(f"{name:<16}" + "".join(f"{fmt(f[c]):>16}" for c in cols))
        return
    table = Table(title="BFCL dev")
    table.add_column("category")
    for c in cols:
        table.add_column(c, justify="right")
    for name, f in rows.items():
        table.add_row(name, *(fmt(f[c]) for c in cols), style="bold" if name == "overall" else None)
    Console(width=max(120, Console().width)).print(table)


def run(client, args, categories: list[str]) -> dict[str, list[dict]]:
    try:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        progress = Progress(TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("acc {task.fields[acc]}"), TimeElapsedColumn(),
                            console=Console(stderr=True))
    except ImportError:
        progress = None
    shown, results = 0, {}
    with progress or nullcontext():
        for cat in categories:
            items = load(args.data, cat)[: args.limit or None]
            task = progress.add_task(cat, total=len(items), acc="-") if progress else None
            results[cat] = recs = []
            for i, item in enumerate(items, 1):
                rec = ask(client, args.model, item, args.tool_choice, args.max_tokens, args.parallel)
                rec["id"] = item["id"]
                recs.append(rec)
                if "error" in rec and shown < 5:
                    shown += 1
                    print(f"error on {item['id']}: {rec['error']}", file=sys.stderr, flush=True)
                acc = f"{sum(r.get('correct', False) for r in recs) / i:.3f}"
                if progress:
                    progress.update(task, advance=1, acc=acc)
                elif i % 25 == 0 or i == len(items):
                    print(f"{cat}: {i}/{len(items)} acc {acc}", file=sys.stderr, flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help=f"BFCL data folder (default {DATA})")
    ap.add_argument("--categories", nargs="+", default=list(CATEGORIES),
                    help="space- or comma-separated (default: %(default)s)")
    ap.add_argument("--limit", type=int, default=0, help="questions per category (0 = all)")
    ap.add_argument("--tool-choice", choices=("auto", "required"), default="auto",
                    help="auto sends no tool_choice (server default)")
    ap.add_argument("--parallel", choices=("unset", "on", "off"), default="unset",
                    help="parallel_tool_calls to send (unset = not sent)")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--model", default="default")
    ap.add_argument("--base-url", help="use a running server (http://HOST:PORT/v1) instead of starting one")
    ap.add_argument("--threads", type=int, default=None, help="--threads for the started server")
    ap.add_argument("--out", type=Path, help="also write the result JSON here")
    ap.add_argument("--misses", type=Path, help="write wrong answers as JSONL (id, expected, got, reason)")
    ap.add_argument("--chart", type=Path, default=Path("benchmarks/results/bfcl_dev.png"))
    args = ap.parse_args(argv)
    categories = [c.strip() for arg in args.categories for c in arg.split(",") if c.strip()]
    for c in categories:
        if not (args.data / f"BFCL_v4_{c}.json").is_file():
            ap.error(f"no data for category {c!r} in {args.data}")

    from openai import OpenAI

    from benchmarks._server import running_server

    ctx = nullcontext(args.base_url) if args.base_url else running_server(args.model, threads=args.threads)
    with ctx as base:
        client = OpenAI(base_url=base, api_key="none", max_retries=0, timeout=300)
        results = run(client, args, categories)

    rows = {cat: figures(recs) for cat, recs in results.items()}
    rows["overall"] = figures([r for recs in results.values() for r in recs])
    print_table(rows)
    if args.misses:
        items = {it["id"]: it for cat in categories for it in load(args.data, cat)}
        with args.misses.open("w") as f:
            for recs in results.values():
                for r in recs:
                    if not r.get("correct"):
                        got = r.get("error") or {"calls": [{"name": c["name"], "arguments": c["arguments"]}
                                                           for c in r["calls"]], "text": r["text"]}
                        f.write(json.dumps({"id": r["id"], "expected": items[r["id"]]["ground_truth"],
                                            "got": got, "reason": r.get("reason", "error")}) + "\n")
    result = {"benchmark": "bfcl_dev", "machine": machine(), "model": args.model,
              "tool_choice": args.tool_choice, "parallel": args.parallel, "max_tokens": args.max_tokens, "limit": args.limit or None,
              "categories": {c: rows[c] for c in categories}, "overall": rows["overall"]}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    from benchmarks._chart import bars

    keys = ("accuracy", "parse_valid", "schema_valid", "text_rate", "truncated_rate")
    bars(args.chart, f"BFCL dev, {args.model}, tool_choice={args.tool_choice}, parallel={args.parallel}",
         list(rows), {k: [rows[c][k] or 0.0 for c in rows] for k in keys}, "fraction of questions")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
