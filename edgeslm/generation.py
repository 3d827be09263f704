"""Generation: one request decoding in a slot, from sampled tokens to text or tool-call events.

Owns the per-request decode step (sampling, grammar masks and forced tokens, the answered-call
fallback), output parsing (auto-mode text vs calls, repeated calls, stop strings in linear time) and
the final Generation with its timings. The scheduler (scheduling.py) decides when each step runs; the
worker (engine.py) prepares the job.
"""

from __future__ import annotations

import codecs
import dataclasses
import json
import logging
import time
from collections.abc import Callable

import jsonschema

from edgeslm.backends.base import adapter_key, common_prefix
from edgeslm.decoding.sampler import Sampler
from edgeslm.decoding.tools import CallParser, Envelope, as_grammar_writes, new_call_id, validate_arguments
from edgeslm.errors import BackendError, EdgeError
from edgeslm.types import Generation, Message, OutputSpec, ToolCall, Usage

log = logging.getLogger("edgeslm.generation")
SHARE_MIN = 16  # a shared prefix must save at least this many tokens over the slot's own cache

# Events a job emits, in order: ("text", str) | ("call", index, id, name) | ("args", index, str)
# and finally exactly one of ("done", Generation) | ("error", EdgeError).
Emit = Callable[[tuple], None]


class Run:
    """One request decoding in a slot: sampling, forced tokens, output parsing and the result.

    `history` is every token its sequence must hold before the next sample (prompt, then each step);
    `feed` is the tail of it not evaluated yet. The scheduler feeds it in chunks, and may take the
    sequence away and give another: `start` then brings the new one up to `history` again."""

    def __init__(self, worker, job, arrival: int):
        self.w, self.job, self.arrival = worker, job, arrival
        self.b = worker.backend
        self.key = adapter_key(job.adapter_set)
        self.slot: int | None = None
        p = job.params
        self.sampler = Sampler(p.temperature, p.top_p, p.seed)
        self.out = Output(job.spec, worker.envelope, p.stop, job.emit, job.answered)
        self.constraint = job.constraint
        self.finish: str = "length"
        self.n, self.forced = 0, 0
        self.t_first: float | None = None
        self.single_s, self.single_n = 0.0, 0  # time of the steps that sampled one token and forced none
        self.t_step: float | None = None
        self.t0: float | None = None
        self.t_prefill: float | None = None
        self.history: list[int] = list(job.prompt)
        self.feed: list[int] = []
        self.since, self.last_step, self.cached = 0, 0, 0
        self.started = self.done = self.prefilling = False

    def start(self) -> None:
        """(Re)start in `self.slot`: keep what the sequence shares with `history` and leave the rest in
        `feed`, evaluated by the scheduler's next rounds (nothing is evaluated here)."""
        first = not self.started
        if first:
            self.t0, self.started = time.perf_counter(), True
            if self.job.fresh:
                self.b.reset(self.slot)
        self._borrow_prefix()
        k, toks = self.b.cached(self.slot)
        keep = min(common_prefix(toks, self.history) if k == self.key else 0, len(self.history) - 1)
        keep = self.b.rewind(self.slot, keep) if keep > 0 else 0
        if keep == 0:
            self.b.reset(self.slot)
        if first:
            self.cached = keep
        self.feed, self.since, self.prefilling = self.history[keep:], 0, True

    def _borrow_prefix(self) -> None:
        """Where another sequence (under the same adapters) holds a longer prefix of `history` than this
        slot does, share its KV cells instead of evaluating that prefix again: agents send the same
        system prompt and tools with every request."""
        b = self.b
        if not b.capabilities.prefix_share or self.job.fresh:
            return
        k, toks = b.cached(self.slot)
        own = common_prefix(toks, self.history) if k == self.key else 0
        best, src = own + SHARE_MIN, None
        for s in range(b.n_seq):
            k2, t2 = b.cached(s)
            if s != self.slot and k2 == self.key and len(t2) > best:
                c = common_prefix(t2, self.history)
                if c > best:
                    best, src = c, s
        if src is not None:
            b.share(src, self.slot, min(best, len(self.history) - 1))

    def next_tokens(self, n: int | None = None) -> list[int]:
        """The next tokens to evaluate: all of a step, or up to `n` while prefilling."""
        n = len(self.feed) if n is None else n
        step, self.feed = self.feed[:n], self.feed[n:]
        return step

    def unstep(self, step: list[int]) -> None:
        self.feed = step + self.feed

    def advance(self) -> None:
        """After an evaluation: feed on, or sample from this slot's fresh logits and either leave the
        next tokens in `feed` or end."""
        if self.feed:
            return
        self.prefilling = False
        if self.t_prefill is None:
            self.t_prefill = time.perf_counter()
        try:
            if not self._step():
                self._end(("done", self._result()))
        except Exception as e:  # noqa: BLE001 - never let one request take the worker down
            self.fail(e)

    def cancel(self) -> None:
        self.finish = "cancelled"
        self._end(("done", self._result()))

    def fail(self, e: Exception) -> None:
        if not isinstance(e, EdgeError):
            log.error("generation failed", exc_info=e)
            e = BackendError(f"generation failed: {type(e).__name__}: {e}")
        self._end(("error", e))

    def _end(self, event: tuple) -> None:
        if self.done:
            return
        if self.job.constraint is not None:
            self.job.constraint.close()
        self.done = True
        self.job.emit(event)

    def _step(self) -> bool:
        p, spec, constraint = self.job.params, self.job.spec, self.constraint
        now = time.perf_counter()
        if self.t_step is not None and self.last_step == 1:
            self.single_s, self.single_n = self.single_s + now - self.t_step, self.single_n + 1
        self.t_step = now
        if self.n >= p.max_tokens:
            return False
        if self.job.cancelled.is_set():
            self.finish = "cancelled"
            return False
        if constraint is not None and constraint.samples:
            token = constraint.sample(self.slot)
        else:
            token = self.sampler.sample(self.b.logits(self.slot), constraint.mask() if constraint else None)
        if self.t_first is None:
            self.t_first = time.perf_counter()
        if token in self.b.eog_tokens:
            self.finish = "stop"
            return False
        step = [token]
        if constraint is not None:
            constraint.consume(token)
            # tokens the grammar forces go in with this one, as a batch, without sampling
            if self.w.settings.fast_forward:
                step += constraint.forced(p.max_tokens - self.n - 1)
        if any(self.out.feed(self.b.piece(t)) for t in step):
            self.n += len(step)
            self.finish = "stop"
            if self.out.repeated_answered and not self.out.parser.calls and self.job.text_constraint:
                return self._answer_in_text()
            return False
        self.n, self.forced = self.n + len(step), self.forced + len(step) - 1
        if constraint is not None:
            if constraint.finished:
                self.finish = "stop"
                return False
            if self.out.mode == "text" and spec.kind == "tools":
                self.constraint = None  # decided for plain text: nothing left to constrain
        self.history += step
        self.feed, self.last_step, self.since = list(step), len(step), self.since + len(step)
        return True

    def _answer_in_text(self) -> bool:
        """The model's first call repeats one whose result the conversation already holds (agent loops):
        that call is not offered again; the answer is decoded again from the prompt as text. The slot is
        cut back to the prompt and its last token goes in with the next batch, so the requests decoding
        beside this one keep their logits (nothing is evaluated here)."""
        self.job.constraint.close()
        self.job.constraint = self.constraint = self.job.text_constraint()
        self.out = Output(dataclasses.replace(self.job.spec, tool_choice="none"), self.w.envelope,
                           self.job.params.stop, self.job.emit)
        self.finish, self.n, self.forced = "length", 0, 0
        keep = self.b.rewind(self.slot, len(self.job.prompt) - 1)
        self.history, self.feed = list(self.job.prompt), self.job.prompt[keep:]
        self.prefilling = True
        return True

    def _result(self) -> Generation:
        job, spec, n = self.job, self.job.spec, self.n
        t_end, t_first, finish = time.perf_counter(), self.t_first, self.finish
        t0 = self.t0 or t_end
        t_prefill = self.t_prefill or t_end
        content, calls = self.out.finish()
        if calls and finish == "stop":
            finish = "tool_calls"
        if spec.kind == "json" and finish == "stop":
            try:
                jsonschema.validate(json.loads(content or ""), spec.schema)
            except (ValueError, jsonschema.ValidationError) as e:  # a grammar bug, never the caller's fault
                raise BackendError(f"decoded JSON fails its schema: {e}") from e
        for c in calls:
            tool = next(t for t in spec.tools if t.name == c.name)
            problem = validate_arguments(c.arguments, tool.parameters)
            if problem:  # the grammar makes this impossible; if it happens it is our bug, not the caller's
                raise BackendError(f"decoded arguments of {c.name} fail their schema: {problem}")
        return Generation(
            model=self.w.entry.id + "".join(f"@{a.task}" for a in job.adapters),
            content=content,
            tool_calls=calls,
            finish_reason=finish,  # type: ignore[arg-type]  # one of the Literal's values by construction
            truncated=finish == "length" and self.out.mode in ("calls", "json"),
            usage=Usage(len(job.prompt), n, self.cached),
            timings={
                "prefill_s": t_prefill - t0,
                "ttft_s": (t_first or t_end) - t0,
                "decode_s": t_end - (t_first or t_end),
                "tokens_per_s": (n - 1) / (t_end - t_first) if t_first and n > 1 and t_end > t_first else 0.0,
                "forced_tokens": self.forced,
                "sampled_step_s": self.single_s / self.single_n if self.single_n else 0.0,
            },
        )


class Output:
    """Turns sampled bytes into text or tool-call events; decides auto-mode text vs calls."""

    def __init__(self, spec: OutputSpec, env: Envelope, stop: list[str], emit: Emit, answered: tuple | list = ()):
        self.env, self.emit = env, emit
        self.answered = list(answered)
        self.repeated_answered = False
        self.stop = stop if spec.kind != "json" else []  # stop strings never cut grammar-bound JSON
        self.stopper, self.scanned = StopMatcher(self.stop), 0
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.text = ""  # everything decoded so far
        self.sent = 0  # how much of self.text has been emitted as content
        self.parser = CallParser(env)  # used once the output turns out to be calls
        self.ids: list[str] = []
        self._seen: list[str] = list(self.answered)  # completed calls as "name\0arguments"
        self._current: str = ""
        self._held: list[tuple] = []
        if spec.kind == "tools" and spec.tool_choice not in ("auto", "none"):
            self.mode = "calls"
            self.parser = CallParser(env)
        elif spec.kind == "tools":
            self.mode = "undecided"
        else:
            self.mode = spec.kind  # "text" or "json"

    def _could_call(self) -> bool:
        return self.env.start.startswith(self.text.lstrip(" \t\r\n"))

    def feed(self, data: bytes) -> bool:
        """Take a token's bytes; True when a stop string ended the output."""
        delta = self.decoder.decode(data)
        self.text += delta
        if self.mode == "undecided":
            if self.text.startswith(self.env.start):
                self.mode, self.parser = "calls", CallParser(self.env)
                delta = self.text
            elif self._could_call():
                return False
            else:
                self.mode = "text"
        if self.mode == "calls":
            return self._feed_calls(delta)
        if self.mode == "text" and self.stop:
            hit = self.stopper.feed(self.text, self.scanned)
            self.scanned = len(self.text)
            if hit >= 0:
                self.text = self.text[:hit]
                self._flush(len(self.text))
                return True
            self._flush(len(self.text) - self.stopper.hold)
            return False
        self._flush(len(self.text))
        return False

    def _feed_calls(self, delta: str) -> bool:
        """Stream call events, holding back a call while it repeats an earlier one so far.

        Small models loop on calls; an exact repeat within one response is never useful, so the
        output ends before it (and a streaming client never sees it)."""
        for ev in self.parser.feed(delta):
            if ev[0] == "name":
                self.ids.append(new_call_id())
                self._current, self._held = ev[2] + "\0", [("call", ev[1], self.ids[ev[1]], ev[2])]
            elif ev[0] == "args":
                self._current += ev[2]
                self._held.append(ev)
            elif self._current in self._seen:  # complete, and identical to an earlier call
                self.parser.calls.pop()
                self.repeated_answered = self._current in self.answered
                return True
            else:
                self._seen.append(self._current)
            if self._held and not any(c.startswith(self._current) for c in self._seen):
                for held in self._held:
                    self.emit(held)
                self._held = []
        return False

    def _flush(self, upto: int) -> None:
        if upto > self.sent:
            self.emit(("text", self.text[self.sent : upto]))
            self.sent = upto

    def finish(self) -> tuple[str | None, list[ToolCall]]:
        self.text += self.decoder.decode(b"", final=True)
        if self.mode == "calls":
            calls = [ToolCall(self.ids[i], name, args) for i, (name, args) in enumerate(self.parser.calls)]
            return None, calls
        self._flush(len(self.text))
        return self.text, []


class StopMatcher:
    """Finds the first stop string in text that grows at its end, in time linear in the text: one
    Knuth-Morris-Pratt automaton per stop string, each fed every new character once."""

    def __init__(self, stops: list[str]):
        self.stops = [s for s in stops if s]
        self.fail = [self._table(s) for s in self.stops]
        self.state = [0] * len(self.stops)

    @staticmethod
    def _table(s: str) -> list[int]:
        fail, k = [0] * len(s), 0
        for i in range(1, len(s)):
            while k and s[i] != s[k]:
                k = fail[k - 1]
            if s[i] == s[k]:
                k += 1
            fail[i] = k
        return fail

    def feed(self, text: str, start: int) -> int:
        """Scan text[start:]; the index where the earliest-ending stop string begins, or -1."""
        for pos in range(start, len(text)):
            c, hit = text[pos], -1
            for i, s in enumerate(self.stops):
                k, fail = self.state[i], self.fail[i]
                while k and s[k] != c:
                    k = fail[k - 1]
                if s[k] == c:
                    k += 1
                if k == len(s):  # of the stops ending here, the longest (earliest start) wins
                    hit = pos + 1 - len(s) if hit < 0 else min(hit, pos + 1 - len(s))
                    k = fail[k - 1]
                self.state[i] = k
            if hit >= 0:
                return hit
        return -1

    @property
    def hold(self) -> int:
        """Characters at the end that may begin a stop string (held back from the stream)."""
        return max(self.state, default=0)


def answered_calls(messages: list[Message], tools: list) -> list[str]:
    """The calls made since the user's last message that a tool message answered, as "name\0arguments"
    the way the grammar writes them (keys in the schema's order, ", " and ": " separators), for the
    repeat check. Calls from earlier user turns may be made again (polling, a question asked again)."""
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    recent = messages[last_user + 1:]
    results = {m.tool_call_id for m in recent if m.role == "tool" and m.tool_call_id}
    schemas = {t.name: t.parameters for t in tools}
    out = []
    for m in recent:
        for c in (m.tool_calls or []) if m.role == "assistant" else []:
            if c.id in results:
                try:
                    args = json.loads(c.arguments or "{}")
                except ValueError:
                    continue
                if isinstance(args, dict):
                    out.append(f"{c.name}\0{as_grammar_writes(args, schemas.get(c.name))}")
    return out
