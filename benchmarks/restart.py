"""An agent's first call after a restart: is it warm? Time to first token (TTFT) on a 24-tool agent prompt,
cold, warm and after a restart, through a real `edgeslm serve`, side by side in one run.

    python -m benchmarks.restart [--threads 2] [--rounds 3] [--out benchmarks/results]

Per round (each on a fresh EDGESLM_HOME; questions differ per round):
  1. cold: a server with the disk cache off (EDGESLM_PREFIX_DISK_MB=0) answers question Z: TTFT cold and
     the reference answer. Then question Y on the same server: TTFT warm (system + tools from memory).
  2. a server with the disk cache on answers question X (cold; its state is kept on disk), and stops.
  3. restart: a new server on the same home answers Z: TTFT restored, and its answer, which must equal
     the reference (temperature 0, byte for byte: content and calls).
TTFT is the client's time from sending the request to the first streamed chunk that carries content or a
tool call (the openai client, streaming, tool_choice auto, temperature 0).
Targets (issue 26): restored <= 2x warm and <= 0.25x cold, as medians over the rounds; answers identical.
Last line: one JSON object; also written with a chart to OUT/restart.json and OUT/restart.png.

What it cannot show: a restart here is a process restart with the files in the page cache (a cold boot reads
the state from disk: about 10-40 MB per prompt); the prompts are one agent's; one machine runs client and server.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from openai import OpenAI

from benchmarks._chart import bars
from benchmarks._server import running_server


def _tool(name: str, desc: str, props: dict, required: list[str]) -> dict:
    return {"type": "function", "function": {"name": name, "description": desc, "parameters": {
        "type": "object", "properties": props, "required": required}}}


S, INT = {"type": "string"}, {"type": "integer"}
TOOLS = [
    _tool("get_weather", "Current weather and a short forecast for a city.",
          {"city": {**S, "description": "City name, e.g. Paris"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
           "days": {**INT, "minimum": 1, "maximum": 7, "description": "Forecast days"}}, ["city"]),
    _tool("create_event", "Create a calendar event.", {"title": S, "start": {**S, "description": "ISO date-time"},
          "duration_minutes": {**INT, "minimum": 5, "maximum": 1440}, "attendees": {"type": "array", "items": S}}, ["title", "start"]),
    _tool("send_email", "Send an e-mail on the user's behalf.", {"to": S, "subject": S, "body": S,
          "cc": {"type": "array", "items": S}}, ["to", "subject", "body"]),
    _tool("search_files", "Search the workspace for files whose content matches a query.",
          {"query": S, "glob": {**S, "description": "e.g. src/**/*.py"}, "max_results": {**INT, "minimum": 1, "maximum": 100}}, ["query"]),
    _tool("run_sql", "Run a read-only SQL query against the analytics database.",
          {"query": {**S, "description": "A single SELECT statement"}, "limit": {**INT, "minimum": 1, "maximum": 1000}}, ["query"]),
    _tool("get_stock_price", "Latest price of a stock by ticker symbol.", {"ticker": S}, ["ticker"]),
    _tool("read_file", "Read a text file from the workspace.", {"path": S, "max_bytes": INT}, ["path"]),
    _tool("write_file", "Write text to a file in the workspace, replacing it.", {"path": S, "content": S}, ["path", "content"]),
    _tool("list_directory", "List the entries of a workspace directory.", {"path": S, "recursive": {"type": "boolean"}}, ["path"]),
    _tool("create_ticket", "Open a ticket in the issue tracker.", {"title": S, "body": S,
          "priority": {"type": "string", "enum": ["low", "medium", "high", "urgent"]}, "assignee": S}, ["title"]),
    _tool("update_ticket", "Change the status or assignee of a ticket.", {"ticket_id": INT,
          "status": {"type": "string", "enum": ["open", "in_progress", "done", "closed"]}, "assignee": S}, ["ticket_id"]),
    _tool("search_web", "Search the web and return the top results.",
          {"query": S, "num_results": {**INT, "minimum": 1, "maximum": 10}}, ["query"]),
    _tool("translate_text", "Translate text into another language.", {"text": S, "target_language": {**S, "description": "ISO 639-1 code"}},
          ["text", "target_language"]),
    _tool("convert_currency", "Convert an amount between currencies at today's rate.", {"amount": {"type": "number"},
          "from_currency": {**S, "description": "ISO 4217 code"}, "to_currency": S}, ["amount", "from_currency", "to_currency"]),
    _tool("book_meeting_room", "Reserve a meeting room.", {"room": S, "start": S, "end": S, "attendees": INT}, ["room", "start", "end"]),
    _tool("get_contact", "Look up a colleague's contact details by name.", {"name": S}, ["name"]),
    _tool("post_message", "Post a message to a team chat channel.", {"channel": S, "text": S}, ["channel", "text"]),
    _tool("set_reminder", "Remind the user of something at a given time.",
          {"text": S, "at": {**S, "description": "ISO date-time"}}, ["text", "at"]),
    _tool("get_invoice", "Fetch an invoice by its number.", {"invoice_number": S}, ["invoice_number"]),
    _tool("create_invoice", "Create an invoice for a customer.", {"customer": S, "amount": {"type": "number"}, "currency": S,
          "due_date": S}, ["customer", "amount"]),
    _tool("get_order_status", "Status of a customer order.", {"order_id": S}, ["order_id"]),
    _tool("refund_order", "Refund all or part of an order.", {"order_id": S, "amount": {"type": "number"}, "reason": S}, ["order_id"]),
    _tool("summarize_document", "Summarize a document in the workspace.",
          {"path": S, "max_words": {**INT, "minimum": 10, "maximum": 500}}, ["path"]),
    _tool("get_time", "Current local time in a time zone.",
          {"timezone": {**S, "description": "IANA name, e.g. Europe/Paris"}}, ["timezone"]),
]
SYSTEM = ("You are the operations assistant of a small company. You can read and write workspace files, query the "
          "analytics database, manage tickets, e-mail, calendar, chat, invoices and orders. Use a tool whenever it "
          "answers the request; ask when a required value is missing; otherwise answer briefly.")
# per round: (X: fills the disk cache, Y: warm, Z: cold reference and restored)
QUESTIONS = [
    ("What's the weather in Lisbon?", "Refund order A-1043, it arrived broken.", "What time is it in Tokyo?"),
    ("Convert 250 euros to dollars.", "Open an urgent ticket: the VPN is down.", "Read the file notes/todo.md"),
    ("Post 'standup moved to 10' in #team.", "Status of order 7781?", "Look up Dana Whitfield's contact details."),
]


def ask(base: str, question: str) -> tuple[float, dict, int]:
    """TTFT, the answer (content and calls) and the prompt tokens served from cache."""
    client = OpenAI(base_url=base, api_key="x", max_retries=0, timeout=300)
    t0 = time.perf_counter()
    ttft, content, calls, cached = None, "", {}, 0
    stream = client.chat.completions.create(
        model="default", messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
        tools=TOOLS, temperature=0, max_tokens=96, stream=True, stream_options={"include_usage": True})
    for ch in stream:
        if ch.usage is not None and ch.usage.prompt_tokens_details is not None:
            cached = ch.usage.prompt_tokens_details.cached_tokens or 0
        if not ch.choices:
            continue
        d = ch.choices[0].delta
        if ttft is None and (d.content or d.tool_calls):
            ttft = time.perf_counter() - t0
        content += d.content or ""
        for tc in d.tool_calls or []:
            c = calls.setdefault(tc.index, {"name": "", "arguments": ""})
            c["name"] += (tc.function.name or "") if tc.function else ""
            c["arguments"] += (tc.function.arguments or "") if tc.function else ""
    return ttft if ttft is not None else time.perf_counter() - t0, {"content": content, "calls": calls}, cached


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, choices=range(1, len(QUESTIONS) + 1))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    a = ap.parse_args()
    rows = []
    for r in range(a.rounds):
        x, y, z = QUESTIONS[r]
        home = tempfile.mkdtemp(prefix="edgeslm-restart-")
        env = {**os.environ, "EDGESLM_HOME": home}
        with running_server(threads=a.threads, env={**env, "EDGESLM_PREFIX_DISK_MB": "0"}) as base:
            cold, ref, _ = ask(base, z)
            warm, _, warm_cached = ask(base, y)
        with running_server(threads=a.threads, env=env) as base:
            ask(base, x)
        t_start = time.perf_counter()
        with running_server(threads=a.threads, env=env) as base:
            startup = time.perf_counter() - t_start
            restored, got, restored_cached = ask(base, z)
        row = {"round": r, "ttft_cold_s": cold, "ttft_warm_s": warm, "ttft_restored_s": restored,
               "warm_cached_tokens": warm_cached, "restored_cached_tokens": restored_cached,
               "identical": got == ref, "startup_s": startup, "answer": ref}
        rows.append(row)
        print(f"round {r}: cold {cold:.2f} s, warm {warm:.2f} s ({warm_cached} cached), restored {restored:.2f} s "
              f"({restored_cached} cached), identical {got == ref}; start-up {startup:.1f} s", flush=True)
        if got != ref:
            print(f"  reference {json.dumps(ref)}\n  restored  {json.dumps(got)}")
    med = {k: statistics.median(row[k] for row in rows) for k in ("ttft_cold_s", "ttft_warm_s", "ttft_restored_s")}
    out = {"rounds": len(rows), "threads": a.threads, "tools": len(TOOLS), **med,
           "restored_over_warm": med["ttft_restored_s"] / med["ttft_warm_s"],
           "restored_over_cold": med["ttft_restored_s"] / med["ttft_cold_s"],
           "identical": all(row["identical"] for row in rows), "per_round": rows}
    print(f"\nmedian TTFT over {len(rows)} rounds: cold {med['ttft_cold_s']:.2f} s, warm {med['ttft_warm_s']:.2f} s, "
          f"restored {med['ttft_restored_s']:.2f} s; restored/warm {out['restored_over_warm']:.2f} (target <= 2), "
          f"restored/cold {out['restored_over_cold']:.3f} (target <= 0.25); answers identical: {out['identical']}")
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "restart.json").write_text(json.dumps(out, indent=1))
    bars(a.out / "restart.png", "TTFT of a 24-tool agent prompt (median of rounds)",
         ["cold", "warm (memory)", "after restart (disk)"],
         {"TTFT": [med["ttft_cold_s"], med["ttft_warm_s"], med["ttft_restored_s"]]}, "seconds")
    print(json.dumps({k: v for k, v in out.items() if k != "per_round"}))


if __name__ == "__main__":
    main()
