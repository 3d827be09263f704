"""BFCL dev accuracy through the server: every question of ../shared/data/bfcl (simple_python,
multiple) sent with the openai client, scored like BFCL's AST checker (see DESIGN.md).

    python -m benchmarks.bfcl_dev [--limit N] [--tool-choice auto|required] [--parallel on|off|unset]

Prints accuracy, parse-valid and schema-valid rates per category; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import time
from pathlib import Path

import jsonschema
from openai import OpenAI
from rich.progress import Progress

from benchmarks._server import running_server
from edgeslm import device

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bfcl"
CATEGORIES = ["simple_python", "multiple"]
_TYPES = {"dict": "object", "float": "number", "tuple": "array"}


def to_schema(node):
    """BFCL's parameter dialect → JSON Schema."""
    if isinstance(node, list):
        return [to_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k == "type":
            if v == "any":
                continue
            out[k] = _TYPES.get(v, v)
        elif k == "properties":
            out[k] = {name: to_schema(p) for name, p in v.items()}
        elif k in ("items", "additionalProperties", "anyOf", "oneOf"):
            out[k] = to_schema(v)
        elif k == "optional":
            continue
        else:
            out[k] = v
    return out


def to_openai_tool(fn: dict) -> dict:
    return {"type": "function", "function": {"name": fn["name"].replace(".", "_"),
                                             "description": fn.get("description", ""),
                                             "parameters": to_schema(fn["parameters"])}}


def normalize(v):
    if isinstance(v, str):
        return re.sub(r"[ ,./\-_*^]", "", v.lower())
    if isinstance(v, list):
        return [normalize(x) for x in v]
    if isinstance(v, dict):
        return {k: normalize(x) for k, x in v.items()}
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    return v


def score_call(name: str, args: dict, fn: dict, expected: dict) -> bool:
    """One call against one ground-truth entry {fname: {param: [acceptable values]}}."""
    (want_name, want_args), = expected.items()
    if name != want_name:
        return False
    props = fn["parameters"].get("properties", {})
    required = fn["parameters"].get("required", [])
    if any(k not in props for k in args) or any(r not in args for r in required):
        return False
    for param, acceptable in want_args.items():
        if param not in args:
            if "" not in acceptable:
                return False
            continue
        if normalize(args[param]) not in [normalize(a) for a in acceptable if a != ""]:
            return False
    return True


def load(category: str, limit: int | None):
    qs = [json.loads(x) for x in (DATA / f"BFCL_v4_{category}.json").read_text().splitlines() if x.strip()]
    ans = {a["id"]: a for a in map(json.loads, (DATA / "possible_answer" / f"BFCL_v4_{category}.json")
                                   .read_text().splitlines()) if a}
    return [(q, ans[q["id"]]) for q in qs[:limit]]


def run_category(client, items, args, bar, task):
    fig = {"n": 0, "correct": 0, "with_calls": 0, "parse_valid": 0, "schema_valid": 0, "text": 0, "errors": 0}
    latencies, misses = [], []
    for q, a in items:
        fig["n"] += 1
        tools = [to_openai_tool(f) for f in q["function"]]
        names = {t["function"]["name"]: (f, t) for f, t in zip(q["function"], tools)}
        kw = {"tool_choice": args.tool_choice} if args.tool_choice != "auto" else {}
        if args.parallel != "unset":
            kw["parallel_tool_calls"] = args.parallel == "on"
        t0 = time.perf_counter()
        try:
            r = client.chat.completions.create(model=args.model, messages=q["question"][0], tools=tools,
                                               temperature=0, max_tokens=args.max_tokens, **kw)
        except Exception as e:  # counted, never fatal
            fig["errors"] += 1
            misses.append({"id": q["id"], "error": str(e)[:300]})
            bar.advance(task)
            continue
        latencies.append(time.perf_counter() - t0)
        calls = r.choices[0].message.tool_calls or []
        if not calls:
            fig["text"] += 1
        else:
            fig["with_calls"] += 1
            parsed = []
            try:
                parsed = [(c.function.name, json.loads(c.function.arguments)) for c in calls]
                fig["parse_valid"] += all(isinstance(p, dict) for _, p in parsed)
            except json.JSONDecodeError:
                parsed = None
            if parsed:
                try:
                    for n, p in parsed:
                        jsonschema.validate(p, names[n][1]["function"]["parameters"])
                    fig["schema_valid"] += 1
                except (KeyError, jsonschema.ValidationError):
                    pass
            if parsed and len(parsed) == 1:
                n, p = parsed[0]
                fn = names[n][0] if n in names else None
                if fn and score_call(fn["name"], p, fn, a["ground_truth"][0]):
                    fig["correct"] += 1
                    bar.advance(task)
                    continue
        misses.append({"id": q["id"], "expected": a["ground_truth"],
                       "got": [(c.function.name, c.function.arguments) for c in calls] or r.choices[0].message.content})
        bar.advance(task)
    n, wc = fig["n"], max(fig["with_calls"], 1)
    return {
        "n": n, "accuracy": fig["correct"] / n, "parse_valid": fig["parse_valid"] / wc,
        "schema_valid": fig["schema_valid"] / wc, "text_rate": fig["text"] / n, "errors": fig["errors"],
        "median_latency_s": statistics.median(latencies) if latencies else None,
    }, misses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="questions per category")
    ap.add_argument("--categories", nargs="+", default=CATEGORIES, choices=CATEGORIES)
    ap.add_argument("--tool-choice", default="auto", choices=["auto", "required"])
    ap.add_argument("--parallel", default="unset", choices=["unset", "on", "off"])
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--base-url", default=None, help="use a running server instead of starting one")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--misses", type=Path, default=None)
    args = ap.parse_args()

    def run(base):
        client = OpenAI(base_url=base, api_key="unused", max_retries=0, timeout=300)
        results, all_misses = {}, []
        with Progress() as bar:
            for cat in args.categories:
                items = load(cat, args.limit)
                task = bar.add_task(cat, total=len(items))
                results[cat], misses = run_category(client, items, args, bar, task)
                all_misses += misses
        return results, all_misses

    if args.base_url:
        results, misses = run(args.base_url)
    else:
        with running_server(args.model, args.threads) as base:
            results, misses = run(base)
    total = sum(r["n"] for r in results.values())
    overall = {k: sum(r[k] * r["n"] for r in results.values()) / total
               for k in ("accuracy", "parse_valid", "schema_valid", "text_rate")}
    print(f"\n{'category':<16}{'n':>5}{'accuracy':>10}{'parse':>8}{'schema':>8}{'text':>7}{'p50 s':>8}")
    for cat, r in results.items():
        print(f"{cat:<16}{r['n']:>5}{r['accuracy']:>10.3f}{r['parse_valid']:>8.3f}{r['schema_valid']:>8.3f}"
              f"{r['text_rate']:>7.3f}{(r['median_latency_s'] or 0):>8.2f}")
    print(f"{'overall':<16}{total:>5}{overall['accuracy']:>10.3f}{overall['parse_valid']:>8.3f}"
          f"{overall['schema_valid']:>8.3f}{overall['text_rate']:>7.3f}")
    if args.misses:
        args.misses.write_text("\n".join(json.dumps(m) for m in misses))
    line = {"benchmark": "bfcl_dev", "machine": {"platform": platform.platform(), **device.describe()},
            "model": args.model, "tool_choice": args.tool_choice, "parallel": args.parallel,
            "categories": results, "overall": overall}
    if args.out:
        args.out.write_text(json.dumps(line, indent=2))
    print(json.dumps(line))


if __name__ == "__main__":
    main()
