"""Measuring a model on this machine, through the engine's own decode path: load time and peak
memory, time to first token and prefill speed by prompt length, decode speed, constrained tool-call
latency, and cold, restored-from-disk and warm (prefix-cached) time to first token.

Owns the measurement protocol (prompts, repeats, what counts as cold). Knows nothing about verdicts
or report formats: it returns plain figures.
"""

from __future__ import annotations

import resource
import statistics
import time
import uuid
from collections.abc import Callable

import psutil

from edgeslm.types import Message, OutputSpec, SamplingParams, ToolSpec

PROMPT_LENGTHS = (128, 512, 2048)

_FILLER = (
    "The agent keeps a log of every task it runs: which files it read, which tools it called, what each "
    "call returned and how long the whole job took. Reviewing that log each morning shows which tasks "
    "repeat, which fail, and where a small local model could take over from the large hosted one. "
)

# A realistic agent tool set: what a coding/office assistant sends with every request.
AGENT_TOOLS = [
    ToolSpec("get_weather", "Current weather and a short forecast for a city.", {
        "type": "object", "properties": {
            "city": {"type": "string", "description": "City name, e.g. Paris"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7, "description": "Forecast days"}},
        "required": ["city"]}),
    ToolSpec("create_event", "Create a calendar event.", {
        "type": "object", "properties": {
            "title": {"type": "string"}, "start": {"type": "string", "format": "date-time"},
            "duration_minutes": {"type": "integer", "minimum": 5, "maximum": 1440},
            "attendees": {"type": "array", "items": {"type": "string", "format": "email"}, "maxItems": 20}},
        "required": ["title", "start"]}),
    ToolSpec("send_email", "Send an e-mail on the user's behalf.", {
        "type": "object", "properties": {
            "to": {"type": "string", "format": "email"}, "subject": {"type": "string", "maxLength": 200},
            "body": {"type": "string"}, "cc": {"type": "array", "items": {"type": "string", "format": "email"}}},
        "required": ["to", "subject", "body"]}),
    ToolSpec("search_files", "Search the workspace for files whose content matches a query.", {
        "type": "object", "properties": {
            "query": {"type": "string"}, "glob": {"type": "string", "description": "e.g. src/**/*.py"},
            "max_results": {"type": "integer", "minimum": 1, "maximum": 100}},
        "required": ["query"]}),
    ToolSpec("run_sql", "Run a read-only SQL query against the analytics database.", {
        "type": "object", "properties": {
            "query": {"type": "string", "description": "A single SELECT statement"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000}},
        "required": ["query"]}),
    ToolSpec("get_stock_price", "Latest price of a stock by ticker symbol.", {
        "type": "object", "properties": {"ticker": {"type": "string", "pattern": "^[A-Z]{1,5}$"}},
        "required": ["ticker"]}),
]
_SYSTEM = "You are a helpful assistant for a small company. Use the tools when they help; answer briefly."
_QUESTIONS = ["What's the weather in Paris?", "What's the weather in Berlin in celsius?",
              "Weather forecast for Tokyo for the next 3 days, please.", "Is it raining in London?",
              "How warm is it in Madrid today?", "What's the weather like in Oslo?"]


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else 0.0


def _p90(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=10, method="inclusive")[8] if len(xs) > 1 else (xs[0] if xs else 0.0)


def _spread(xs: list[float]) -> float:
    """Relative spread of repeated runs, (max - min) / median: the noise the report states."""
    m = _median(xs)
    return (max(xs) - min(xs)) / m if xs and m else 0.0


class VramPeak:
    """The peak of the first GPU's used VRAM over a run, less what was in use when it started (NVML,
    sampled every 50 ms in a thread). `peak` is None where NVML is not there (no NVIDIA GPU, or no
    nvidia-ml-py): the run then says VRAM was not measured."""

    def __init__(self, interval: float = 0.05):
        import threading

        self.peak: int | None = None
        self.source: str | None = None
        self._stop = threading.Event()
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            self._used = lambda: int(pynvml.nvmlDeviceGetMemoryInfo(self._handle).used)
        except Exception:  # no library, driver or device
            return
        self.source, self._base, self.peak = "nvml", self._used(), 0
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.peak = max(self.peak or 0, self._used() - self._base)

    def stop(self) -> None:
        if self.source:
            self._stop.set()
            self._thread.join(timeout=1)
            self.peak = max(self.peak or 0, self._used() - self._base)


def peak_rss() -> int:
    """This process's peak resident memory so far (bytes). Linux's VmHWM belongs to this program's own
    address space; ru_maxrss survives exec, so a process started by a big parent would report the
    parent's peak (seen: 3.2 GB under a pytest that had loaded torch)."""
    try:
        for line in open("/proc/self/status", encoding="ascii", errors="replace"):
            if line.startswith("VmHWM:"):
                return max(int(line.split()[1]) * 1024, psutil.Process().memory_info().rss)
    except (OSError, ValueError, IndexError):
        pass
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(kb * 1024, psutil.Process().memory_info().rss)


class Profiler:
    """Runs the measurements on a loaded ModelWorker. `step(label)` is called before each stage."""

    def __init__(self, worker, runs: int = 5, step: Callable[[str], None] | None = None):
        self.worker, self.runs = worker, max(runs, 1)
        self.step = step or (lambda label: None)
        self.b = worker.backend

    def _filler_message(self, target: int) -> list[Message]:
        """A user message making the whole prompt about `target` tokens, unique to this call."""
        nonce = f"[{uuid.uuid4().hex[:8]}] "
        base = self.worker.template.render([Message("user", nonce)], [])
        room = max(target - len(self.b.tokenize(base, add_bos=not base.startswith(self.b.bos_text or "\0"),
                                                special=True)), 1)
        filler = self.b.tokenize(_FILLER * (room // 40 + 2), add_bos=False)[:room]
        text = b"".join(self.b.piece(t) for t in filler).decode("utf-8", "replace")
        return [Message("user", nonce + text)]

    def _text(self, messages, max_tokens: int, fresh: bool):
        return self.worker.run(messages, OutputSpec("text"), SamplingParams(max_tokens=max_tokens, temperature=0),
                               fresh=fresh)

    def prefill(self) -> list[dict]:
        out = []
        for n in PROMPT_LENGTHS:
            if n >= self.b.n_ctx:
                continue
            self.step(f"prefill, {n}-token prompts")
            ttft, tps, tokens = [], [], 0
            for _ in range(max(self.runs // 2, 2)):
                g = self._text(self._filler_message(n), 1, fresh=True)
                tokens = g.usage.prompt_tokens
                ttft.append(g.timings["ttft_s"])
                tps.append(tokens / g.timings["prefill_s"] if g.timings["prefill_s"] else 0.0)
            out.append({"target_tokens": n, "prompt_tokens": tokens, "ttft_s": _median(ttft),
                        "prefill_tps": _median(tps), "noise": _spread(ttft), "runs_s": ttft})
        return out

    def decode(self, max_tokens: int = 128) -> dict:
        self.step("decode speed")
        prompt = [Message("user", "Write a long, detailed story about a lighthouse keeper and a storm.")]
        per_token, tps, n = [], [], []
        for _ in range(self.runs):
            g = self._text(prompt, max_tokens, fresh=False)
            if g.usage.completion_tokens > 1 and g.timings["tokens_per_s"]:
                tps.append(g.timings["tokens_per_s"])
                per_token.append(1000.0 / g.timings["tokens_per_s"])
                n.append(g.usage.completion_tokens)
        return {"tokens_per_s": _median(tps), "ms_per_token_median": _median(per_token),
                "ms_per_token_p90": _p90(per_token), "completion_tokens": n, "noise": _spread(tps), "runs_tps": tps}

    def tools(self) -> dict:
        """Cold and warm time to first token on the tool prompt (tool_choice auto), then warm
        constrained tool calls (tool_choice required: the grammar decides the whole answer)."""
        spec = OutputSpec("tools", AGENT_TOOLS, "auto", parallel=False)
        params = SamplingParams(max_tokens=128, temperature=0)

        def ask(q: str, fresh: bool, disk: bool | None = None):
            t0 = time.perf_counter()
            g = self.worker.run([Message("system", _SYSTEM), Message("user", q)], spec, params, fresh=fresh, disk=disk)
            return g, time.perf_counter() - t0

        self.step("tool prompt, cold vs restored from disk vs warm")
        cold, restored, warm, prompt_tokens = [], [], [], 0
        disk = self.worker.prefixes
        for i in range(max(self.runs // 2, 2)):
            g, _ = ask(_QUESTIONS[i % len(_QUESTIONS)], fresh=True)  # nothing reused; its state is kept on disk
            cold.append(g.timings["ttft_s"])
            prompt_tokens = g.usage.prompt_tokens
            if disk is not None:  # as after a restart: nothing in memory, the prefix from disk
                disk.flush()
                g, _ = ask(_QUESTIONS[(i + 2) % len(_QUESTIONS)], fresh=True, disk=True)
                if g.timings["restored_tokens"]:
                    restored.append(g.timings["ttft_s"])
            g, _ = ask(_QUESTIONS[(i + 1) % len(_QUESTIONS)], fresh=False)
            warm.append(g.timings["ttft_s"])
        self.step("constrained tool calls")
        spec = OutputSpec("tools", AGENT_TOOLS, "required", parallel=False)  # a call, every time
        wall, forced, tokens, calls, valid = [], [], [], 0, 0
        for i in range(self.runs):
            g, s = ask(_QUESTIONS[i % len(_QUESTIONS)], fresh=False)
            wall.append(s)
            tokens.append(g.usage.completion_tokens)
            forced.append(g.timings["forced_tokens"] / max(g.usage.completion_tokens, 1))
            calls += bool(g.tool_calls)
            valid += bool(g.tool_calls) and g.finish_reason == "tool_calls"
        return {
            "prompt_tokens": prompt_tokens, "tools": len(AGENT_TOOLS),
            "ttft_cold_s": _median(cold), "ttft_warm_s": _median(warm), "noise_cold": _spread(cold),
            "ttft_restored_s": _median(restored) if restored else None,
            "restored_note": None if restored else ("the prefix cache on disk is off or this backend keeps none"
                                                    if disk is None else "the prompt is shorter than "
                                                    f"--prefix-disk-min-tokens ({disk.min_tokens}): not kept"),
            "call_s_median": _median(wall), "call_s_p90": _p90(wall), "noise_call": _spread(wall),
            "calls_made": calls, "calls_valid": valid, "runs": self.runs,
            "completion_tokens": tokens, "forced_share": _median(forced),
        }
