"""Soak: minutes of mixed traffic against one real `edgeslm serve` with capture on, a `kill -9` in the middle and
a restart on the same home. Does anything 5xx, does memory grow, is every acknowledged call in the capture log?

    python -m benchmarks.soak [--minutes 10] [--kill-at 6] [--clients 6] [--threads 2] [--parallel 4]
                              [--n-ctx 2048] [--queue-size N] [--home DIR] [--out benchmarks/results]

Owns the traffic, the kill and restart, and the accounting (_server.py starts and stops the server). The server
runs with --capture on EDGESLM_HOME (a fresh temp dir, or --home), whose store gets task adapters soak-a and soak-b
(copies of the packaged tools adapter). --clients threads send, at random: chat to "default", "default@none",
"default@<task>"; tool calls (tool_choice auto, required); json_schema; streams on any of those models (adapters
mixed in one batch); streams hung up after the first chunk; requests given up after ~1 s; bad bodies in turn
(invalid JSON, a JSON array, wrong types, oversize stop, JSON 80 and 5000 deep). Each user message carries a marker
"soak-<hex>". At --kill-at minutes: SIGKILL, and a restart on the same home; clients wait for it. A server that
dies by itself is a crash: reported, and restarted the same way (at most --max-crashes times).
Connection errors of requests in flight at the kill or sent before the restart answered count apart ("cut").
"Acknowledged": a 200 with a body, or a stream that ended with a finish_reason and [DONE]; each acknowledged
marker must have its row in the capture database (settings.capture_db) at the end. Targets: 0 x 5xx (HTTP, or a
server_error event in a stream) and no connection error outside the kill; no crash; RSS growth <= 5% from minute
2 to the kill and from 2 minutes after the restart to the end (medians of the first and last 30 s); 0 acknowledged
calls missing. Prints tables and progress; writes OUT/soak.json and OUT/soak.png (per minute: p95 of the successful
short requests, server RSS); the last line is one JSON object.

What it cannot show: clients and server share the cores, so latency includes the clients' cost; one kill at one
moment tests durability at that moment only; RSS is the whole process (model, KV cells, heap) sampled every 2 s,
so a leak below a few minutes' noise goes unseen, and a side under 1 minute measures nothing (n/a); which kinds
share a batch is chance, so a rare mix may not occur in one run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import re
import shutil
import signal
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import psutil
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from benchmarks._server import start_server, stop_server

TOOLS = [{"type": "function", "function": {"name": n, "description": d, "parameters": {
    "type": "object", "properties": {a: {"type": "string"}}, "required": [a]}}}
    for n, d, a in (("get_weather", "Get the current weather for a city", "city"),
                    ("get_time", "Get the local time in a timezone", "timezone"))]
CITY = {"type": "json_schema", "json_schema": {"name": "city", "strict": True, "schema": {
    "type": "object", "properties": {"city": {"type": "string", "maxLength": 40}, "population": {"type": "integer"}},
    "required": ["city", "population"], "additionalProperties": False}}}
PROMPTS = ["Say hello in three languages.", "Name a fruit that is yellow.", "What is the capital of Italy?",
           "Give me a short tip for sleeping well.", "Write one line about the sea."]
STORY = ["Write a story about a lighthouse keeper.", "Explain how a refrigerator works.",
         "Describe a walk through a night market.", "Tell the history of the bicycle."]
MARKER = re.compile(r"soak-[0-9a-f]{32}")
SHORT = ("chat", "chat_none", "chat_task", "tools_auto", "tools_required", "json_schema")
MIX = {"chat": 3, "chat_none": 2, "chat_task": 3, "tools_auto": 2, "tools_required": 2, "json_schema": 2,
       "stream": 3, "hangup_stream": 1, "hangup_plain": 1, "bad": 2}
COLS = ("2xx", "4xx", "5xx", "stream_5xx", "cut", "crash_cut", "conn_error", "hung_up")
FAILS = ("5xx", "stream_5xx", "crash_cut", "conn_error", "incomplete", "client_error")


def bad_bodies(marker: str) -> dict[str, bytes]:
    ok = {"model": "default", "messages": [{"role": "user", "content": f"[{marker}] hi"}], "max_tokens": 8}
    deep: object = 0
    for _ in range(80):
        deep = [deep]
    return {"bad_invalid_json": b'{"model": "default", "messages": [{"role": "user", "content": "hi"',
            "bad_array": b'[{"model": "default"}]', "bad_types": json.dumps({**ok, "temperature": "hot", "n": []}).encode(),
            "bad_model_type": json.dumps({**ok, "model": {"id": 7}}).encode(),
            "bad_stop": json.dumps({**ok, "stop": ["x" * 700, "y" * 700]}).encode(),
            "bad_deep_80": json.dumps({**ok, "metadata": deep}).encode(), "bad_deep_5000": b"[" * 5000 + b"]" * 5000}


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[max(0, math.ceil(q * len(xs)) - 1)] if xs else float("nan")


class Soak:
    """The run's shared state: the server process, its down windows, every request's record, the RSS samples."""

    def __init__(self, args, home: Path):
        self.args, self.home = args, home
        self.recs: list[dict] = []
        self.samples: list[tuple[float, int, int]] = []  # (t, pid, rss)
        self.windows: list[list] = []  # [t_down, t_ready or None, "kill" | "crash"]
        self.crashes: list[dict] = []
        self.ready, self.stop, self.died = threading.Event(), threading.Event(), threading.Event()
        self.gen, self.tasks, self.logs, self.expect_exit, self.end = 0, [], [], False, 0.0
        self.bad_turn = itertools.count()
        self.env = {**os.environ, "EDGESLM_HOME": str(home)}
        if args.queue_size:
            self.env["EDGESLM_QUEUE_SIZE"] = str(args.queue_size)
        self.extra = ["--capture", "--parallel", str(args.parallel), "--n-ctx", str(args.n_ctx)]
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def start(self, port: int | None = None) -> None:
        try:
            self.proc, self.base, log = start_server("default", self.args.threads, self.extra, self.env, port=port)
        except RuntimeError:  # e.g. the old port still held: any free one
            if port is None:
                raise
            self.proc, self.base, log = start_server("default", self.args.threads, self.extra, self.env)
        self.logs.append(log)
        self.gen += 1
        self.expect_exit = False
        threading.Thread(target=self.watch, args=(self.proc, log), daemon=True).start()

    def watch(self, proc, log: str) -> None:
        """A server that exits without our kill or stop has crashed: clients pause, the main loop restarts it."""
        rc = proc.wait()
        if proc is self.proc and not self.expect_exit:
            self.ready.clear()
            self.windows.append([self.now(), None, "crash"])
            self.crashes.append({"t_s": self.now(), "pid": proc.pid, "returncode": rc, "log": log,
                                 "log_tail": open(log, errors="replace").read()[-1500:]})
            self.died.set()

    def restart(self, kill: bool) -> dict:
        pid, port = self.proc.pid, int(self.base.rsplit(":", 1)[1].split("/")[0])
        if kill:
            self.ready.clear()
            self.expect_exit = True
            self.windows.append([self.now(), None, "kill"])
            os.kill(pid, signal.SIGKILL)
            self.proc.wait()
        self.died.clear()
        self.start(port)
        self.windows[-1][1] = self.now()
        self.ready.set()
        t, r, why = self.windows[-1]
        return {"why": why, "t_down_s": t, "t_ready_s": r, "restart_s": r - t, "old_pid": pid, "new_pid": self.proc.pid,
                "same_port": self.base.endswith(f":{port}/v1")}

    def sample_rss(self) -> None:
        while not self.stop.wait(2):
            try:
                self.samples.append((self.now(), self.proc.pid, psutil.Process(self.proc.pid).memory_info().rss))
            except psutil.Error:
                pass

    def outcome(self, r: dict) -> str:
        """A connection error overlapping a down window (0.5 s slack: a crash is seen just after it) is a cut."""
        if r["outcome"] != "conn_error":
            return r["outcome"]
        for t, ready, why in self.windows:
            if r["start"] <= (ready if ready is not None else math.inf) and r["end"] >= t - 0.5:
                return "cut" if why == "kill" else "crash_cut"
        return "conn_error"

    def add(self, kind: str, start: float, outcome: str, code: int | None = None, marker: str | None = None,
            detail: str = "") -> None:
        self.recs.append({"kind": kind, "start": start, "end": self.now(), "outcome": outcome, "code": code,
                          "acked": marker, "detail": detail[:300] if outcome in FAILS else ""})
        if outcome in ("conn_error", "client_error"):
            time.sleep(0.5)  # no busy loop against a dead port


def body(s: Soak, rng: random.Random, kind: str, marker: str) -> dict:
    def chat(model: str, text: str, **kw) -> dict:
        return {"model": model, "messages": [{"role": "user", "content": f"[{marker}] {text}"}], **kw}

    if kind in ("stream", "hangup_stream"):  # any model: adapters mix in one batch
        return chat(rng.choice(["default", "default@none", *(f"default@{x}" for x in s.tasks)]), rng.choice(STORY),
                    max_tokens=128 if kind == "stream" else 512, temperature=0.7, stream=True,
                    stream_options={"include_usage": True})
    if kind == "hangup_plain":
        return chat("default", rng.choice(STORY), max_tokens=256)
    model = {"chat_none": "default@none", "chat_task": f"default@{rng.choice(s.tasks or ['none'])}"}.get(kind, "default")
    extra = {"tools_auto": {"tools": TOOLS, "tool_choice": "auto"}, "json_schema": {"response_format": CITY},
             "tools_required": {"tools": TOOLS, "tool_choice": "required"}}.get(kind, {})
    text = ("What's the weather in Paris?" if kind.startswith("tools") else "Describe Lisbon as JSON."
            if kind == "json_schema" else rng.choice(PROMPTS))
    return chat(model, text, max_tokens=64 if extra else 24, temperature=0, **extra)


def send(s: Soak, c: httpx.Client, rng: random.Random, kind: str) -> None:
    """One request of `kind`, recorded; a hang-up uses its own client, so that its socket really closes."""
    marker, t = f"soak-{uuid.uuid4().hex}", s.now()
    if kind == "bad":  # in turn: every bad body is sent
        bodies = bad_bodies(marker)
        kind = list(bodies)[next(s.bad_turn) % len(bodies)]
        kw = {"content": bodies[kind], "headers": {"content-type": "application/json"}}
    else:
        kw = {"json": body(s, rng, kind, marker)}
    own = httpx.Client(timeout=rng.uniform(0.5, 1.5) if kind == "hangup_plain" else 300) if "hangup" in kind else None
    try:
        with (own or c).stream("POST", s.base + "/chat/completions", **kw) as r:
            if r.status_code != 200 or "stream" not in kind:
                text = r.read().decode(errors="replace")
                ok = r.status_code == 200 and not kind.startswith("bad") and bool(json.loads(text).get("choices"))
                return s.add(kind, t, f"{r.status_code // 100}xx", r.status_code, marker if ok else None, text)
            finished = done = False
            for line in r.iter_lines():
                if line == "data: [DONE]":
                    done = True
                    break
                if not line.startswith("data: {"):
                    continue
                if kind == "hangup_stream":
                    return s.add(kind, t, "hung_up", 200)
                d = json.loads(line[6:])
                if "error" in d:
                    server = d["error"].get("type") == "server_error"
                    return s.add(kind, t, "stream_5xx" if server else "stream_error", 200, detail=line)
                finished = finished or any(ch.get("finish_reason") for ch in d.get("choices") or [])
        ok = done and finished
        s.add(kind, t, "2xx" if ok else "incomplete", 200, marker if ok else None, f"done={done} finish={finished}")
    except httpx.HTTPError as e:
        hung = kind == "hangup_plain" and isinstance(e, httpx.ReadTimeout)
        s.add(kind, t, "hung_up" if hung else "conn_error", detail=repr(e))
    finally:
        if own is not None:
            own.close()


def client(s: Soak, i: int) -> None:
    rng = random.Random(s.args.seed * 1000 + i)
    kinds = [k for k in MIX if k != "chat_task" or s.tasks]
    gen, c = 0, None
    while not s.stop.is_set():
        s.ready.wait()
        if gen != s.gen:  # a new server: no pooled socket of the old one is reused
            if c is not None:
                c.close()
            gen, c = s.gen, httpx.Client(timeout=300)
        kind, t = rng.choices(kinds, [MIX[k] for k in kinds])[0], s.now()
        try:
            send(s, c, rng, kind)
        except Exception as e:  # noqa: BLE001 - an answer the client could not read (not JSON...) is counted
            s.add(kind, t, "client_error", detail=repr(e))
    if c is not None:
        c.close()


def add_task_adapters(home: Path, names=("soak-a", "soak-b")) -> None:
    """Copies of the packaged tools adapter under other task names (neither trained nor imported: copied)."""
    from edgeslm.config import get_settings
    from edgeslm.store.shipped import SHIPPED

    for src in SHIPPED.glob("*/tools"):
        for task in names:
            dst = get_settings(home=home).adapters_dir / src.parent.name / task
            if not (dst / "manifest.json").is_file():
                dst.mkdir(parents=True, exist_ok=True)
                shutil.copy(src / "adapter.gguf", dst / "adapter.gguf")
                m = {**json.loads((src / "manifest.json").read_text()), "task": task, "source": "benchmarks/soak.py"}
                (dst / "manifest.json").write_text(json.dumps(m, indent=2))


def capture_check(home: Path, acked: list[tuple[str, float]], t_kill: float | None) -> dict:
    from edgeslm.config import get_settings
    from edgeslm.store.capture import CaptureStore

    st = get_settings(home=home)
    store = CaptureStore(st.capture_db, key_env=st.capture_key_env)
    try:
        found = Counter(m for call in store.calls() for m in MARKER.findall(json.dumps(call.get("request"))))
        rows = store.count()
    finally:
        store.close()
    missing = [(m, end) for m, end in acked if m not in found]
    return {"db": str(st.capture_db), "rows": rows, "acknowledged": len(acked), "missing": len(missing),
            "missing_acked_before_kill": sum(1 for _, end in missing if t_kill is not None and end < t_kill),
            "missing_markers": [m for m, _ in missing][:20], "captured_twice": sum(1 for m, _ in acked if found[m] > 1),
            "captured_not_acknowledged": len(set(found) - {m for m, _ in acked})}


def growth(samples: list[tuple[float, int, int]], a: float, b: float) -> float | None:
    """RSS growth from the first 30 s of [a, b) to its last 30 s (medians); None under 1 minute."""
    head = [r for t, _, r in samples if a <= t < a + 30]
    tail = [r for t, _, r in samples if b - 30 <= t < b]
    return statistics.median(tail) / statistics.median(head) - 1 if b - a >= 60 and head and tail else None


def chart(path: Path, title: str, minutes: list[dict], kill: float | None) -> None:
    """p95 of the short requests and server RSS per minute, one panel each, the kill as a dashed line."""
    import matplotlib  # a dependency of edgeslm itself

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, sharex=True, figsize=(8, 5))
    for ax, key, label, color in zip(axes, ("p95_short_s", "rss_mib"), ("p95 short request (s)", "server RSS (MiB)"),
                                     ("tab:blue", "tab:orange"), strict=True):
        ax.plot([m["minute"] - 0.5 for m in minutes], [m[key] for m in minutes], marker="o", color=color)
        ax.set_ylabel(label)
        if kill is not None:
            ax.axvline(kill, color="tab:red", ls="--", label="kill -9")
            ax.legend()
    axes[0].set_title(title)
    axes[1].set_xlabel("minute")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"chart: {path}")


def minute_row(s: Soak, m: int, last: bool = False) -> dict:
    """Minute m+1: the requests that ended in it (the last one also takes those after it), the last RSS sample."""
    done = [r for r in s.recs if m * 60 <= r["end"] < (m + 1) * 60 or (last and r["end"] >= (m + 1) * 60)]
    lat = [r["end"] - r["start"] for r in done if r["kind"] in SHORT and r["outcome"] == "2xx"]
    smp, c = [x for x in s.samples if m * 60 <= x[0] < (m + 1) * 60], Counter(s.outcome(r) for r in done)
    return {"minute": m + 1, "requests": len(done), "2xx": c["2xx"], "4xx": c["4xx"], "5xx": c["5xx"] + c["stream_5xx"],
            "cut": c["cut"] + c["crash_cut"], "conn_error": c["conn_error"], "p95_short_s": pct(lat, .95),
            "n_short": len(lat), "rss_mib": smp[-1][2] / 2**20 if smp else float("nan"), "pids": sorted({x[1] for x in smp})}


def run(args, con: Console) -> tuple[Soak, list[dict]]:
    home = Path(args.home or tempfile.mkdtemp(prefix="edgeslm-soak-")).resolve()
    add_task_adapters(home)
    s = Soak(args, home)
    s.start()
    models = httpx.get(s.base + "/models", timeout=30).json()["data"]
    s.tasks = sorted({m["adapter"] for m in models if m.get("adapter") and m.get("loaded")} - {"tools"})
    s.t0 = time.monotonic()
    s.ready.set()
    threads = [threading.Thread(target=f, args=a, daemon=True) for f, a in
               [(s.sample_rss, ())] + [(client, (s, i)) for i in range(args.clients)]]
    for th in threads:
        th.start()
    downs, duration, minute, killed = [], args.minutes * 60, 0, not 0 < args.kill_at < args.minutes
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=con) as bar:
            job = bar.add_task("soak", total=duration)
            while (t := s.now()) < duration:
                if s.died.is_set():
                    c = s.crashes[-1]
                    bar.console.print(f"{t:6.1f} s: the server CRASHED (pid {c['pid']}, exit {c['returncode']}; log {c['log']})")
                    if len(s.crashes) > args.max_crashes:
                        break
                    downs.append(s.restart(kill=False))
                if not killed and t >= args.kill_at * 60:
                    killed = True
                    downs.append(s.restart(kill=True))
                    bar.console.print(f"{t:6.1f} s: kill -9 pid {downs[-1]['old_pid']}; restarted on {home} as pid "
                                      f"{downs[-1]['new_pid']} in {downs[-1]['restart_s']:.1f} s "
                                      f"({'same' if downs[-1]['same_port'] else 'new'} port)")
                if int(t // 60) > minute:
                    row = minute_row(s, minute)
                    bar.console.print(f"minute {minute + 1}: " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                                                      for k, v in row.items() if k != "minute"))
                    minute = int(t // 60)
                c = Counter(s.outcome(r) for r in s.recs)
                bar.update(job, completed=t, description=f"minute {int(t // 60) + 1}/{args.minutes:g} · {len(s.recs)} req · "
                           f"2xx {c['2xx']} 4xx {c['4xx']} 5xx {c['5xx'] + c['stream_5xx']} cut {c['cut']} "
                           f"crashes {len(s.crashes)} conn {c['conn_error']}")
                time.sleep(1)
    finally:  # also on an error or Ctrl-C: no server is left running
        s.stop.set()
        s.ready.set()
        for th in threads[1:]:  # each client finishes the request it is in
            th.join(330)
        s.end, s.expect_exit = s.now(), True
        stop_server(s.proc)
    return s, downs


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--kill-at", type=float, default=6, help="minute of the kill -9 (0: no kill)")
    ap.add_argument("--clients", type=int, default=6, help="concurrent client threads")
    ap.add_argument("--threads", type=int, default=2, help="the server's decode threads")
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--n-ctx", type=int, default=2048, help="the server's context: small, so that the slots contend "
                    "for KV cells (the server's default is 8192)")
    ap.add_argument("--queue-size", type=int, default=None, help="EDGESLM_QUEUE_SIZE for the server (its default: 64)")
    ap.add_argument("--home", type=Path, default=None, help="EDGESLM_HOME (default: a fresh temp dir)")
    ap.add_argument("--max-crashes", type=int, default=3, help="restarts after crashes before the run stops early")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args(argv)
    s, downs = run(args, Console(width=160, stderr=True))
    recs, kill = s.recs, next((d for d in downs if d["why"] == "kill"), None)
    for r in recs:
        r["outcome"] = s.outcome(r)
    cap = capture_check(s.home, [(r["acked"], r["end"]) for r in recs if r["acked"]], kill and kill["t_down_s"])

    by_kind = Table("kind", "requests", "status codes", *COLS, "other", "acked", title="Requests by kind")
    counts = {}
    for k in [*sorted({r["kind"] for r in recs}), "all"]:
        mine = [r for r in recs if k in ("all", r["kind"])]
        c, codes = Counter(r["outcome"] for r in mine), Counter(r["code"] for r in mine if r["code"])
        counts[k] = {"outcomes": dict(c), "codes": {str(x): v for x, v in sorted(codes.items())},
                     "acked": sum(1 for r in mine if r["acked"])}
        by_kind.add_row(k, str(len(mine)), " ".join(f"{x}:{v}" for x, v in sorted(codes.items())), *(str(c[o]) for o in COLS),
                        str(sum(v for o, v in c.items() if o not in COLS)), str(counts[k]["acked"]),
                        style="bold" if k == "all" else None)
    total = Counter(counts["all"]["outcomes"])
    n_min = max(1, math.ceil(min(s.end, args.minutes * 60) / 60 - 1e-6))
    minutes = [minute_row(s, m, last=m == n_min - 1) for m in range(n_min)]
    per_min = Table(*minutes[0], title="Per minute (by the minute a request ended; RSS: the minute's last sample)")
    for row in minutes:
        per_min.add_row(*(f"{v:.2f}" if isinstance(v, float) else ",".join(map(str, v)) if isinstance(v, list)
                          else str(v) for v in row.values()))
    out = Console(width=160)
    out.print(by_kind, per_min)

    rss = {"before_kill": growth(s.samples, 120, kill["t_down_s"] if kill else s.end),
           "after_restart": growth(s.samples, kill["t_ready_s"] + 120, s.end) if kill else None}
    five = total["5xx"] + total["stream_5xx"]
    checks = {"no_5xx": five == 0, "no_conn_error_outside_kill": total["conn_error"] == 0, "no_crash": not s.crashes,
              **{f"rss_{k}": None if g is None else g <= 0.05 for k, g in rss.items()},
              "capture_complete": cap["missing"] == 0 if cap["acknowledged"] else None}
    passed = all(v for v in checks.values() if v is not None) and cap["acknowledged"] > 0
    for d in downs:
        out.print(f"{d['why']}: server down at {d['t_down_s']:.1f} s (pid {d['old_pid']}), healthy again after "
                  f"{d['restart_s']:.1f} s as pid {d['new_pid']}")
    for c in s.crashes:
        out.print(f"CRASH at {c['t_s']:.1f} s: pid {c['pid']} exited {c['returncode']}; log tail:\n{c['log_tail'][-600:]}",
                  highlight=False, markup=False)
    bad_ok = sum(1 for r in recs if r["kind"].startswith("bad_") and r["outcome"] == "2xx")
    out.print(f"5xx: {total['5xx']} HTTP + {total['stream_5xx']} server_error events in 200 streams; cut by the kill "
              f"{total['cut']}, by crashes {total['crash_cut']}; connection errors outside them {total['conn_error']}; "
              f"incomplete streams {total['incomplete']}; other error events {total['stream_error']}; client errors "
              f"{total['client_error']}; bad bodies answered 2xx {bad_ok}")
    samples = [f"{r['end']:7.1f}s {r['kind']} {r['outcome']} {r['code'] or ''}: {r['detail']}" for r in recs
               if r["outcome"] in FAILS][:20]
    for e in samples:
        out.print(f"  {e}", highlight=False, markup=False)
    out.print(f"capture: {cap['acknowledged']} acknowledged, {cap['missing']} missing from {cap['db']} "
              f"({cap['missing_acked_before_kill']} of them acknowledged before the kill); {cap['rows']} rows, "
              f"{cap['captured_not_acknowledged']} captured but not acknowledged (cut, hung up), "
              f"{cap['captured_twice']} captured twice", highlight=False)
    fmt = lambda g: "n/a (under 1 minute)" if g is None else f"{g:+.1%}"
    out.print(f"RSS growth: minute 2 -> kill {fmt(rss['before_kill'])}, restart + 2 min -> end "
              f"{fmt(rss['after_restart'])} (target <= +5%)")
    tracebacks = {p: open(p, errors="replace").read().count("Traceback") for p in s.logs}
    out.print(f"server logs: {', '.join(f'{p} ({n} tracebacks)' for p, n in tracebacks.items())}", highlight=False)
    out.print("checks: " + ", ".join(f"{k} {'n/a' if v is None else 'PASS' if v else 'FAIL'}" for k, v in checks.items())
              + f" -> {'PASS' if passed else 'FAIL'}")

    from edgeslm import device

    result = {"benchmark": "soak", "machine": device.describe(), "minutes": args.minutes, "ran_s": s.end,
              "kill_at": args.kill_at, "clients": args.clients, "threads": args.threads, "parallel": args.parallel,
              "n_ctx": args.n_ctx, "queue_size": args.queue_size, "tasks": s.tasks, "home": str(s.home), "downs": downs,
              "crashes": [{k: v for k, v in c.items() if k != "log_tail"} for c in s.crashes], "requests": len(recs),
              "outcomes": dict(total), "five_xx": five, "by_kind": counts, "per_minute": minutes, "rss_growth": rss,
              "capture": cap, "server_log_tracebacks": tracebacks, "error_samples": samples, "checks": checks,
              "pass": passed}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "soak.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    chart(path.with_suffix(".png"), f"edgeslm soak: {args.clients} clients, {args.threads} threads, {args.parallel} slots",
          minutes, kill and kill["t_down_s"] / 60)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
