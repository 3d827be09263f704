"""Constrained decoding: edgeslm (llguidance masks + forced tokens + native sampler) against
llama-cpp-python's GBNF path (`LlamaGrammar.from_json_schema`), same model, threads and prompt, greedy.

    python -m benchmarks.constrained [--runs 3] [--threads N]

For five schema shapes it reports the end-to-end latency of one tool call (request to final JSON,
both sides with the prompt's prefix cached), the share of forced (fast-forwarded) tokens, and the
time of a sampled model step (mask + sample + decode of one token) against an unconstrained one on
the same prompt (tool_choice "none": free text once the first tokens rule out a call). Runs alternate between the two sides; medians are reported. Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

from llama_cpp.llama_grammar import LlamaGrammar
from openai import OpenAI

from benchmarks._chart import bars
from benchmarks._raw import raw_default
from benchmarks._server import running_server
from benchmarks.bfcl_dev import DATA, to_openai_tool
from edgeslm import device
from edgeslm.types import Message, ToolSpec


def fn(name, description, properties, required):
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": required}}}


def bfcl_four() -> tuple[str, list[dict]]:
    for line in (DATA / "BFCL_v4_multiple.json").read_text().splitlines():
        item = json.loads(line)
        if len(item["function"]) == 4:
            return item["question"][0][0]["content"], [to_openai_tool(f) for f in item["function"]]
    raise RuntimeError("no BFCL multiple question with 4 functions")


def shapes() -> dict[str, tuple[str, list[dict]]]:
    langs = ["en", "fr", "de", "es", "it", "pt", "nl", "sv", "pl", "ja", "zh", "ko"]
    return {
        "flat": ("Forecast for Paris for the next 3 days, in celsius.", [fn(
            "get_forecast", "Weather forecast for a city", {
                "city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 14},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, ["city", "days", "unit"])]),
        "nested": ("Book a flight for Ada Lovelace, age 36, from London to Paris on 2026-12-24.", [fn(
            "book_flight", "Book a flight", {
                "passenger": {"type": "object", "properties": {"name": {"type": "string"},
                                                               "age": {"type": "integer", "minimum": 0, "maximum": 130}},
                              "required": ["name", "age"]},
                "route": {"type": "object", "properties": {"from": {"type": "string"}, "to": {"type": "string"},
                                                           "date": {"type": "string", "format": "date"}},
                          "required": ["from", "to", "date"]}}, ["passenger", "route"])]),
        "enum-heavy": ("Set my language to French, dark theme, metric units, and weekly email digests.", [fn(
            "set_preferences", "Update user preferences", {
                "language": {"type": "string", "enum": langs},
                "theme": {"type": "string", "enum": ["light", "dark", "system"]},
                "units": {"type": "string", "enum": ["metric", "imperial"]},
                "digest": {"type": "string", "enum": ["never", "daily", "weekly", "monthly"]},
                "notifications": {"type": "boolean"}},
            ["language", "theme", "units", "digest", "notifications"])]),
        "array": ("Add 2 apples, 1 bread and 6 eggs to my shopping list.", [fn(
            "add_items", "Add items to the shopping list", {
                "items": {"type": "array", "minItems": 1, "maxItems": 5, "items": {
                    "type": "object", "properties": {"name": {"type": "string", "maxLength": 30},
                                                     "quantity": {"type": "integer", "minimum": 1, "maximum": 99}},
                    "required": ["name", "quantity"]}}}, ["items"])]),
        "bfcl-multiple-4": bfcl_four(),
    }


def body_schema(tools: list[dict]) -> dict:
    """The call body {"name", "arguments"} as one JSON Schema, for the GBNF path."""
    return {"anyOf": [{"type": "object", "properties": {
        "name": {"const": t["function"]["name"]}, "arguments": t["function"]["parameters"]},
        "required": ["name", "arguments"], "additionalProperties": False} for t in tools]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--chart", type=Path, default=Path("benchmarks/results/constrained.png"))
    args = ap.parse_args()
    threads = args.threads or device.default_threads()
    entry, llm, env, template = raw_default(threads)
    rows = {}
    with running_server(threads=threads) as base:
        client = OpenAI(base_url=base, api_key="unused", max_retries=0, timeout=300)


        for name, (question, tools) in shapes().items():
            specs = [ToolSpec(t["function"]["name"], t["function"]["description"], t["function"]["parameters"])
                     for t in tools]
            prompt = template.render([Message("user", question)], specs) + env.open
            tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
            grammar = LlamaGrammar.from_json_schema(json.dumps(body_schema(tools)), verbose=False)

            def ours():
                t0 = time.perf_counter()
                r = client.chat.completions.create(
                    model="default", messages=[{"role": "user", "content": question}], tools=tools,
                    tool_choice="required", parallel_tool_calls=False, temperature=0, max_tokens=256)
                dt = time.perf_counter() - t0
                call = r.choices[0].message.tool_calls[0]
                json.loads(call.function.arguments)
                t = r.model_extra["timings"]
                n = r.usage.completion_tokens
                return dt, t["forced_tokens"] / n, t["sampled_step_s"], call.function.arguments

            def free_text():
                # the same prompt (so the same context length and cache) answered in free text
                r = client.chat.completions.create(
                    model="default", messages=[{"role": "user", "content": question}], tools=tools,
                    tool_choice="none", temperature=0, max_tokens=48)
                return r.model_extra["timings"]["sampled_step_s"]

            def gbnf():
                t0 = time.perf_counter()
                out = llm.create_completion(tokens, max_tokens=256, temperature=0, grammar=grammar)
                dt = time.perf_counter() - t0
                body = json.loads(out["choices"][0]["text"])
                return dt, json.dumps(body["arguments"])

            ours(), gbnf()  # warm caches on both sides
            a, g, free = [], [], []
            for _ in range(args.runs):
                a.append(ours())
                free.append(free_text())
                g.append(gbnf())
            med = lambda xs: statistics.median(xs)  # noqa: E731
            rows[name] = {
                "edgeslm_s": med(x[0] for x in a), "gbnf_s": med(x[0] for x in g),
                "forced_share": med(x[1] for x in a),
                "step_ms": 1000 * med(x[2] for x in a), "free_step_ms": 1000 * med(free),
                "arguments": a[-1][3], "gbnf_arguments": g[-1][1],
            }
            r = rows[name]
            r["latency_ratio"] = r["edgeslm_s"] / r["gbnf_s"]
            r["step_speed_ratio"] = r["free_step_ms"] / r["step_ms"]
            print(f"{name}: edgeslm {r['edgeslm_s']:.2f}s  gbnf {r['gbnf_s']:.2f}s  forced {r['forced_share']:.0%}",
                  flush=True)
    print(f"\n{'shape':<18}{'edgeslm s':>10}{'GBNF s':>9}{'ratio':>7}{'forced':>8}{'ms/step':>9}{'free ms':>9}{'speed':>7}")
    for name, r in rows.items():
        print(f"{name:<18}{r['edgeslm_s']:>10.2f}{r['gbnf_s']:>9.2f}{r['latency_ratio']:>7.2f}{r['forced_share']:>8.0%}"
              f"{r['step_ms']:>9.2f}{r['free_step_ms']:>9.2f}{r['step_speed_ratio']:>7.2f}")
    bars(args.chart, f"Tool-call latency, {entry.id}, {threads} threads (median of {args.runs})", list(rows),
         {"edgeslm (llguidance)": [r["edgeslm_s"] for r in rows.values()],
          "llama-cpp-python GBNF": [r["gbnf_s"] for r in rows.values()]}, "seconds, request to final JSON")
    print(json.dumps({"benchmark": "constrained", "machine": {"platform": platform.platform(), **device.describe()},
                      "model": entry.id, "threads": threads, "runs": args.runs, "shapes": rows}))


if __name__ == "__main__":
    main()
