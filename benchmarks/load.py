"""Serving under load: does a short tool call stay fast while the server is busy, does nothing 5xx, and are all
slots free once the load stops?

    python -m benchmarks.load [--threads 2] [--parallel 4] [--duration 120] [--n-ctx 8192] [--out benchmarks/results]

One real `edgeslm serve` (default model), driven over HTTP only, with httpx so that hang-ups are real socket closes.
Short request: a get_weather(city) tool call, tool_choice "required", max_tokens 32, non-streaming.
  A. solo: one warm-up, then --solo short requests one after another, nothing else running.
  B. under load, for --duration seconds, all at once: 8 streaming clients looping ~256-token generations
     (temperature 0.7, each its own prompt); a streaming client that hangs up after a few chunks and a
     non-streaming one (max_tokens 512) that gives up after 1 s, both in a loop; one request with the largest
     max_tokens the context allows (n_ctx - its prompt tokens; re-sent when it ends, halved on a 400); and the
     short requests, sequential. Then the load stops (every connection closed), and after --settle seconds:
     /health, 3 short requests and a burst of --parallel concurrent ones, compared with the same burst in A.
Reported: p50/p95 of the short request solo and under load (and under load, where its time went: the
server's timings of prefill and decode, and the rest before decoding started), p95_load/p50_solo and p95_load/p95_solo
(target <= 3), per client kind the 2xx / 4xx / 5xx / connection errors / in-stream error events (target:
no 5xx, no connection error, no server_error event; the "short" row counts all phases), streaming tokens/s,
and whether the slots are free afterwards: /health ok, and its occupancy counts (slots running / paused /
waiting, "busy" fields) all 0 when the server reports them, else the after-load latencies within 2x of solo.
Last line: one JSON object; also written with a chart to OUT/load.json and OUT/load.png.

What it cannot show: it runs on one machine, so client and server share the CPUs (on a small machine the
clients' own cost is in the figures); latencies are end to end, without a split into queueing, prefill and
decode; a slot freed late but before the settle time ends looks free; and a few minutes of load find leaks only when they are fast.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import time
from collections import Counter
from pathlib import Path

import httpx

from benchmarks._chart import bars
from benchmarks._server import running_server

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
SHORT = {"messages": [{"role": "user", "content": "What's the weather in Paris?"}], "tools": [WEATHER],
         "tool_choice": "required", "max_tokens": 32}
PROMPTS = ["Write a story about a lighthouse keeper and a storm.", "Explain how a refrigerator works.",
           "Describe a walk through a night market.", "Write a letter from a sailor to his sister.",
           "Explain the rules of chess to a child.", "Describe the life cycle of a star.",
           "Write a recipe for bread, step by step.", "Tell the history of the bicycle."]
HUGE = "Write a very long novel about a family of clockmakers over five generations. Do not stop early."
# the huge request's answer is a JSON string the grammar cannot end before 40,000 characters: it really
# runs to its max_tokens and holds its KV cells (a model's own end of text would end it early)
LONG = {"type": "json_schema", "json_schema": {"name": "novel", "schema": {
    "type": "object", "properties": {"text": {"type": "string", "minLength": 40000, "maxLength": 40000}},
    "required": ["text"]}}}
KINDS = ("short", "stream", "hangup_stream", "hangup_plain", "huge")


def chat(content: str, **kw) -> dict:
    return {"messages": [{"role": "user", "content": content}], **kw}


def pct(xs: list[float], q: float) -> float:
    """Nearest-rank percentile (NaN when empty)."""
    xs = sorted(xs)
    return xs[max(0, math.ceil(q * len(xs)) - 1)] if xs else float("nan")


class Tally:
    """Outcome counts per client kind, and the first few error messages of each kind."""

    def __init__(self):
        self.counts = {k: Counter() for k in KINDS}
        self.samples: dict[str, list[str]] = {k: [] for k in KINDS}

    def add(self, kind: str, outcome: str, detail: str = "") -> None:
        self.counts[kind][outcome] += 1
        if detail and len(self.samples[kind]) < 5:
            self.samples[kind].append(f"{outcome}: {detail[:300]}")

    def response(self, kind: str, r: httpx.Response, text: str = "") -> bool:
        if r.status_code < 300:
            self.add(kind, "2xx")
        else:
            self.add(kind, "5xx" if r.status_code >= 500 else "4xx", f"{r.status_code} {text}")
        return r.status_code < 300

    async def streamed(self, kind: str, r: httpx.Response) -> bool:
        """The status of a streamed response (its body read when it is an error)."""
        return self.response(kind, r, (await r.aread()).decode() if r.status_code >= 300 else "")

    def event(self, kind: str, line: str) -> dict:
        """One SSE data line, parsed; an error event is counted (type server_error or not)."""
        d = json.loads(line.removeprefix("data: "))
        if "error" in d:
            self.add(kind, "server_error_event" if d["error"].get("type") == "server_error" else "error_event", line)
        return d


async def short(c: httpx.AsyncClient, tally: Tally, split: list | None = None) -> float | None:
    """One short tool call; its latency in seconds, None when it failed. `split` collects where the time
    went: the server's own timings (from the start of decoding: prefill, first token, decode) and the rest
    (HTTP, preparation and the wait for a slot)."""
    t = time.perf_counter()
    try:
        r = await c.post("/chat/completions", json=SHORT, timeout=180)
    except httpx.HTTPError as e:
        tally.add("short", "conn_error", repr(e))
        return None
    ok = tally.response("short", r, r.text)
    if ok and not r.json()["choices"][0]["message"].get("tool_calls"):
        tally.add("short", "no_tool_call", r.text)
    total = time.perf_counter() - t
    timings = r.json().get("timings") if ok else None
    if ok and split is not None and timings:
        engine = timings.get("ttft_s", 0.0) + timings.get("decode_s", 0.0)
        split.append({"total": total, "before_start": total - engine, "prefill": timings.get("prefill_s", 0.0),
                      "decode": timings.get("decode_s", 0.0)})
    return total if ok else None


async def burst(c: httpx.AsyncClient, tally: Tally, n: int) -> float:
    """Seconds until n concurrent short requests have all answered."""
    t = time.perf_counter()
    await asyncio.gather(*(short(c, tally) for _ in range(n)))
    return time.perf_counter() - t


async def streamer(c, tally, prompt, rates):
    body = chat(prompt, max_tokens=256, temperature=0.7, stream=True, stream_options={"include_usage": True})
    while True:
        t = time.perf_counter()
        try:
            async with c.stream("POST", "/chat/completions", json=body, timeout=300) as r:
                if not await tally.streamed("stream", r):
                    await asyncio.sleep(0.5)
                    continue
                async for line in r.aiter_lines():
                    if line.startswith("data: {"):
                        usage = tally.event("stream", line).get("usage")
                        if usage:
                            rates.append((usage["completion_tokens"], time.perf_counter() - t))
        except httpx.HTTPError as e:
            tally.add("stream", "conn_error", repr(e))
            await asyncio.sleep(0.5)


async def hangup_stream(base, tally):
    """Streams, reads a few chunks, closes its connection (own client, so the socket really goes)."""
    body = chat(PROMPTS[0], max_tokens=512, stream=True)
    while True:
        try:
            async with httpx.AsyncClient(base_url=base, timeout=120) as c, \
                    c.stream("POST", "/chat/completions", json=body) as r:
                if await tally.streamed("hangup_stream", r):
                    chunks = 0
                    async for line in r.aiter_lines():
                        if line.startswith("data: {"):
                            tally.event("hangup_stream", line)
                            chunks += 1
                        if chunks == 4:
                            tally.add("hangup_stream", "hung_up")
                            break
        except httpx.HTTPError as e:
            tally.add("hangup_stream", "conn_error", repr(e))
            await asyncio.sleep(0.5)


async def hangup_plain(base, tally):
    """Non-streaming, max_tokens 512, gives up after 1 s without an answer (httpx closes the socket)."""
    while True:
        try:
            async with httpx.AsyncClient(base_url=base, timeout=1.0) as c:
                r = await c.post("/chat/completions", json=chat(PROMPTS[1], max_tokens=512))
                tally.response("hangup_plain", r, r.text)
        except httpx.ReadTimeout:
            tally.add("hangup_plain", "hung_up")
        except httpx.HTTPError as e:
            tally.add("hangup_plain", "conn_error", repr(e))
            await asyncio.sleep(0.5)


async def huge(c, tally, max_tokens, done):
    while max_tokens >= 16:
        t = time.perf_counter()
        try:
            r = await c.post("/chat/completions", json=chat(HUGE, max_tokens=max_tokens, temperature=0.7, response_format=LONG),
                               timeout=None)
        except httpx.HTTPError as e:
            tally.add("huge", "conn_error", repr(e))
            await asyncio.sleep(0.5)
            continue
        if tally.response("huge", r, r.text):
            done.append({"max_tokens": max_tokens, "tokens": r.json()["usage"]["completion_tokens"],
                         "s": time.perf_counter() - t})
        elif r.status_code == 400:
            max_tokens //= 2


BUSY = ("busy", "running", "paused", "waiting", "queued", "active")  # /health keys that count occupied slots


def busy_slots(health: dict) -> int | None:
    """Sum of the numbers under keys naming occupancy in /health, e.g. {"slots": {MODEL: {"running": 0,
    "paused": 0, "waiting": 0}}} or {"slots_busy": 0}; None when the server reports none."""
    found = []

    def walk(x, key=""):
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, k)
        elif isinstance(x, list):
            for v in x:
                walk(v, key)
        elif any(b in key.lower() for b in BUSY) and isinstance(x, (int, float)) and not isinstance(x, bool):
            found.append(x)

    walk(health)
    return int(sum(found)) if found else None


async def run(base: str, args) -> dict:
    tally = Tally()
    root = base.removesuffix("/v1")
    async with httpx.AsyncClient(base_url=base) as c:
        await short(c, tally)  # warm-up: the tool prompt's prefix is cached from here on
        solo = [await short(c, tally) for _ in range(args.solo)]
        burst_solo = await burst(c, tally, args.parallel)
        r = await c.post("/chat/completions", json=chat(HUGE, max_tokens=1, response_format=LONG), timeout=120)
        prompt_tokens = r.json()["usage"]["prompt_tokens"]
    print(f"solo: p50 {pct(solo, .5):.3f} s, burst of {args.parallel}: {burst_solo:.3f} s; huge prompt "
          f"{prompt_tokens} tokens -> max_tokens {args.n_ctx - prompt_tokens}", flush=True)

    loaded, rates, huge_done, split = [], [], [], []
    async with httpx.AsyncClient(base_url=base, limits=httpx.Limits(max_connections=None)) as c:
        async def shorts():
            while True:
                loaded.append(await short(c, tally, split))

        tasks = [asyncio.create_task(x) for x in (
            *(streamer(c, tally, p, rates) for p in PROMPTS), hangup_stream(base, tally), hangup_plain(base, tally),
            huge(c, tally, args.n_ctx - prompt_tokens, huge_done), shorts())]
        await asyncio.sleep(args.duration)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    # the load's client is closed: every connection it held is gone; the server now has to free its slots

    await asyncio.sleep(args.settle)
    async with httpx.AsyncClient(base_url=base) as c:
        t = time.perf_counter()
        h = await c.get(root + "/health", timeout=10)
        health = {"status_code": h.status_code, "s": time.perf_counter() - t, "body": h.json()}
        after = [await short(c, tally) for _ in range(3)]
        burst_after = await burst(c, tally, args.parallel)
    solo, loaded, after = ([x for x in xs if x is not None] for xs in (solo, loaded, after))
    busy = busy_slots(health["body"])
    fast = bool(after) and statistics.median(after) <= 2 * pct(solo, .5) and burst_after <= 2 * burst_solo
    free = health["status_code"] == 200 and health["body"].get("status") == "ok" and (
        busy == 0 if busy is not None else fast)
    return {"solo": solo, "load": loaded, "after": after, "burst_solo_s": burst_solo, "burst_after_s": burst_after,
            "health_after": health, "busy_after": busy, "slots_free": free, "after_fast": fast,
            "huge_prompt_tokens": prompt_tokens, "huge": huge_done,
            "short_split": {k: {"p50": pct([x[k] for x in split], .5), "p95": pct([x[k] for x in split], .95)}
                            for k in ("total", "before_start", "prefill", "decode")} if split else {},
            "short_p95_split": sorted(split, key=lambda x: x["total"])[int(.95 * (len(split) - 1))] if split else {},
            "stream_requests": [{"tokens": n, "s": s} for n, s in rates],
            "counts": {k: dict(v) for k, v in tally.counts.items()}, "error_samples": tally.samples}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--n-ctx", type=int, default=None, help="passed to the server (its default: 8192)")
    ap.add_argument("--duration", type=float, default=120)
    ap.add_argument("--solo", type=int, default=10)
    ap.add_argument("--settle", type=float, default=3)
    ap.add_argument("--model", default="default")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args(argv)
    extra = ["--parallel", str(args.parallel)] + (["--n-ctx", str(args.n_ctx)] if args.n_ctx else [])
    args.n_ctx = args.n_ctx or 8192
    with running_server(args.model, args.threads, extra) as base:
        res = asyncio.run(run(base, args))

    solo, load, after = res["solo"], res["load"], res["after"]
    ratio = {"p95_load/p50_solo": pct(load, .95) / pct(solo, .5), "p95_load/p95_solo": pct(load, .95) / pct(solo, .95)}
    print(f"\n{'short tool call':<16}{'n':>5}{'p50 s':>9}{'p95 s':>9}{'max s':>9}")
    for name, xs in (("solo", solo), ("under load", load), ("after load", after)):
        print(f"{name:<16}{len(xs):>5}{pct(xs, .5):>9.3f}{pct(xs, .95):>9.3f}{max(xs, default=float('nan')):>9.3f}")
    print(f"p95_load/p50_solo {ratio['p95_load/p50_solo']:.2f}x, p95_load/p95_solo {ratio['p95_load/p95_solo']:.2f}x "
          "(target <= 3)")
    cols = ("2xx", "4xx", "5xx", "conn_error", "server_error_event", "error_event", "hung_up", "no_tool_call")
    print(f"\n{'client kind':<15}" + "".join(f"{c:>20}" if "event" in c else f"{c:>13}" for c in cols))
    for k, cnt in res["counts"].items():
        print(f"{k:<15}" + "".join(f"{cnt.get(c, 0):>20}" if "event" in c else f"{cnt.get(c, 0):>13}" for c in cols))
    bad = sum(cnt.get(c, 0) for cnt in res["counts"].values() for c in ("5xx", "conn_error", "server_error_event"))
    print(f"5xx + connection errors + server_error events: {bad} (target 0)")
    for k, msgs in res["error_samples"].items():
        for m in msgs:
            print(f"  {k}: {m}")
    sr = res["stream_requests"]
    tok_s = {"per_request_median": statistics.median(x["tokens"] / x["s"] for x in sr) if sr else 0.0,
             "aggregate": sum(x["tokens"] for x in sr) / args.duration}
    print(f"\nstreaming: {len(sr)} finished requests, median {tok_s['per_request_median']:.1f} tok/s each, "
          f"{tok_s['aggregate']:.1f} tok/s together (finished requests only)")
    print(f"huge request (max_tokens {args.n_ctx - res['huge_prompt_tokens']}): {len(res['huge'])} finished "
          f"{[(h['tokens'], round(h['s'], 1)) for h in res['huge']]}")
    if res["short_split"]:
        sp = res["short_split"]
        print("short call under load, where the time went (server timings; 'before start' = HTTP, preparation "
              "and the wait for a slot): " + ", ".join(f"{k} p50 {v['p50']:.3f} s / p95 {v['p95']:.3f} s"
                                                         for k, v in sp.items()))
    h = res["health_after"]
    print(f"after load: /health {h['status_code']} in {h['s']:.3f} s {json.dumps(h['body'])}; occupancy: "
          f"{res['busy_after']}; short p50 {pct(after, .5):.3f} s; burst of {args.parallel} "
          f"{res['burst_after_s']:.3f} s (solo {res['burst_solo_s']:.3f} s) -> slots free: {res['slots_free']}")

    from edgeslm import device

    result = {"benchmark": "load", "machine": device.describe(), "threads": args.threads, "parallel": args.parallel,
              "n_ctx": args.n_ctx, "duration_s": args.duration,
              "short": {n: {"n": len(xs), "p50": pct(xs, .5), "p95": pct(xs, .95)}
                        for n, xs in (("solo", solo), ("load", load), ("after", after))},
              "ratio": ratio, "server_errors": bad, "stream_tok_s": tok_s, **res}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "load.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    bars(path.with_suffix(".png"), "Short tool call latency: solo vs under load", ["p50", "p95", "max"],
         {n: [pct(xs, .5), pct(xs, .95), max(xs, default=float("nan"))]
          for n, xs in (("solo", solo), ("under load", load), ("after load", after))}, "seconds")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
