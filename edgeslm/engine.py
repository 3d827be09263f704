"""The engine: resident models, one worker thread per model with a fair FIFO queue, and the decode
loop that ties a backend, a constraint and the output parsers together.

Owns: model residency (LRU), request preparation (prompt, limits, grammar) and generation with
streaming events. Knows nothing about HTTP: the serving layer turns events into OpenAI JSON.
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import json
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import jsonschema

from edgeslm import device
from edgeslm.backends import memory, open_backend
from edgeslm.backends.base import adapter_key, common_prefix, file_identity
from edgeslm.config import Settings
from edgeslm.decoding import constraints
from edgeslm.decoding.sampler import Sampler
from edgeslm.decoding.templates import ChatTemplate
from edgeslm.scheduling import Scheduler
from edgeslm.decoding.tools import (
    Bounds,
    CallParser,
    Envelope,
    as_grammar_writes,
    digit_limits,
    envelope_for,
    new_call_id,
    validate_arguments,
)
from edgeslm.errors import (
    BackendError,
    WorkerGone,
    Busy,
    ContextTooLong,
    EdgeError,
    GrammarError,
    InvalidRequest,
    NotFound,
)
from edgeslm.store.adapters import NONE, Adapter, AdapterStore
from edgeslm.store.registry import Catalog, ModelEntry
from edgeslm.types import (
    Generation,
    Message,
    OutputSpec,
    SamplingParams,
    ToolCall,
    Usage,
)

log = logging.getLogger("edgeslm.engine")
SHARE_MIN = 16  # a shared prefix must save at least this many tokens over the slot's own cache

# Events a job emits, in order: ("text", str) | ("call", index, id, name) | ("args", index, str)
# and finally exactly one of ("done", Generation) | ("error", EdgeError).
Emit = Callable[[tuple], None]


@dataclass
class Job:
    prompt: list[int]
    params: SamplingParams
    spec: OutputSpec
    constraint: constraints.Constraint | None
    emit: Emit
    cancelled: threading.Event = field(default_factory=threading.Event)
    fresh: bool = False  # drop the prefix cache first (cold-start measurements)
    adapters: list[Adapter] = field(default_factory=list)
    # earlier calls of the conversation whose results it holds ("name\0arguments", as the grammar writes them)
    answered: list[str] = field(default_factory=list)
    text_constraint: Callable[[], constraints.Constraint] | None = None  # for the answered-repeat fallback

    def __post_init__(self):
        # the files as the request found them: a file replaced later is another adapter (base.adapter_key)
        self._adapter_set = [(a.gguf, file_identity(a.gguf), 1.0) for a in self.adapters]

    @property
    def adapter_set(self) -> list[tuple]:
        """(GGUF LoRA path, file identity, scale) of the adapters this job decodes under."""
        return self._adapter_set


class ModelWorker:
    """One resident model and the thread that decodes its jobs: up to `settings.parallel` at once,
    one slot (backend sequence) each, admitted in arrival order."""

    def __init__(self, entry: ModelEntry, settings: Settings, catalog: Catalog, adapters: list[Adapter] = ()):
        """Load `entry`; `adapters` are applied to every request (per-request selection is the server's)."""
        self.entry, self.settings, self.adapters = entry, settings, list(adapters)
        path = catalog.ensure_local(entry)
        self.threads = settings.threads or device.default_threads()
        # twice as many sequences as slots: a preempted request keeps its cache while another decodes
        n_seq = min(2 * settings.parallel, 64)
        if entry.format == "gguf":
            self.plan = memory.plan(path, n_ctx=settings.n_ctx, n_batch=settings.n_batch, n_seq=n_seq,
                                    model=entry.id, adapters=[a.gguf for a in self.adapters])
        else:
            self.plan = memory.plan_folder(path, n_ctx=settings.n_ctx, model=entry.id)
        memory.check_fits(self.plan, memory.budget_of(settings.memory_budget))
        t0 = time.perf_counter()
        self.backend = open_backend(path, entry.format, n_ctx=settings.n_ctx, n_threads=self.threads,
                                    n_batch=settings.n_batch, n_seq=n_seq)
        self.envelope: Envelope = envelope_for(entry.tool_format)
        self.template = ChatTemplate(self.backend.metadata.get("tokenizer.chat_template"), entry.chat_format,
                                     self.envelope, self.backend.bos_text)
        self.tokenizer = constraints.build_tokenizer(self.backend, settings.home / "cache" / "llguidance")
        self.load_s = time.perf_counter() - t0
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=settings.queue_size)
        # submit and prepare vs the thread's exit: no job lands after it, and the backend is freed only
        # once no request is being prepared on it
        self._state = threading.Condition()
        self.closed, self.dead, self._users = False, None, 0
        self.thread = threading.Thread(target=self._run, name=f"worker-{entry.id}", daemon=True)
        self.thread.start()
        log.info("loaded %s in %.2fs with %d threads", entry.id, self.load_s, self.threads)

    # ---- preparation: everything that can fail because of the request happens here ------------

    def adapter(self, task: str) -> Adapter:
        """A task adapter of this model, looked up in the store now (adapters added while serving work)."""
        if not self.backend.capabilities.lora:
            raise InvalidRequest(f"the backend of '{self.entry.id}' cannot apply adapters", param="adapter")
        return AdapterStore(self.settings.adapters_dir).get(self.entry.id, task, self.entry.sha256)

    def task_for(self, task: str | None) -> str | None:
        """The adapter task a request runs under: the one it names, none for `none`, else the catalog's
        default adapter of this model (when this backend applies adapters and none are fixed)."""
        if task == NONE:
            return None
        if task:
            return task
        d = self.entry.default_adapter
        if d and not self.adapters and self.backend.capabilities.lora:
            if AdapterStore(self.settings.adapters_dir).has(self.entry.id, d):
                return d
            if not getattr(self, "_warned_default", False):
                self._warned_default = True
                log.warning("default adapter '%s' of %s is neither in the store nor shipped; serving the bare base",
                            d, self.entry.id)
        return None

    def prompt_tokens(self, messages: list[Message], spec: OutputSpec) -> list[int]:
        """The tokens this model evaluates for these messages (what fine-tuning trains on, too)."""
        text = self.template.render(messages, spec.tools if spec.kind == "tools" else [])
        add_bos = self.backend.add_bos and not (self.backend.bos_text and text.startswith(self.backend.bos_text))
        return self.backend.tokenize(text, add_bos=add_bos)

    def turn_end(self) -> int:
        """The end-of-generation token the chat template closes an assistant turn with."""
        marker = "EDGESLM_TURN_MARKER"
        text = self.template.render([Message("user", "x"), Message("assistant", marker)], [])
        after = self.backend.tokenize(text.split(marker, 1)[1], add_bos=False)
        for t in after:
            if t in self.backend.eog_tokens:
                return t
        return next(iter(sorted(self.backend.eog_tokens)))

    @contextlib.contextmanager
    def _in_use(self):
        with self._state:
            if self.closed or self.dead:
                raise WorkerGone(f"'{self.entry.id}' was unloaded; retry", code="worker_gone")
            self._users += 1
        try:
            yield
        finally:
            with self._state:
                self._users -= 1
                self._state.notify_all()

    def prepare(self, messages: list[Message], spec: OutputSpec, params: SamplingParams, emit: Emit,
                adapter: str | None = None) -> Job:
        with self._in_use():
            return self._prepare(messages, spec, params, emit, adapter)

    def _prepare(self, messages: list[Message], spec: OutputSpec, params: SamplingParams, emit: Emit,
                 adapter: str | None) -> Job:
        task = self.task_for(adapter)
        adapters = [self.adapter(task)] if task else ([] if adapter == NONE else self.adapters)
        tools = spec.tools if spec.kind == "tools" else []
        prompt = self.prompt_tokens(messages, spec)
        room = self.backend.n_ctx - len(prompt)
        if room < 1:
            raise ContextTooLong(
                f"the prompt is {len(prompt)} tokens, but the context of '{self.entry.id}' holds "
                f"{self.backend.n_ctx} (including at least 1 completion token); shorten the messages",
                param="messages",
            )
        if params.max_tokens_given and params.max_tokens > room:
            raise ContextTooLong(
                f"max_tokens is {params.max_tokens}, but the context of '{self.entry.id}' holds {self.backend.n_ctx} "
                f"tokens and the prompt takes {len(prompt)}: at most {room} can be generated; lower max_tokens "
                "or leave it out", param="max_tokens")
        params.max_tokens = min(params.max_tokens, room)
        st = self.settings
        limits = Bounds(st.max_string_chars, st.max_int_digits, st.max_fraction_digits)
        if st.constraint_engine == "gbnf":
            gbnf = constraints.gbnf_for(spec, self.envelope, limits, st.max_parallel_calls)
            if gbnf is not None:
                return Job(prompt, params, spec, constraints.GbnfConstraint(
                    self.backend, gbnf, params.temperature, params.top_p, params.seed), emit, adapters=adapters)
        limits = dataclasses.replace(limits, numbers_in_schema=False)
        answered = answered_calls(messages, tools) if spec.kind == "tools" and spec.tool_choice == "auto" else []
        text_grammar = (constraints.grammar_for(dataclasses.replace(spec, tool_choice="none"), self.envelope, limits, 1)
                        if answered else None)
        grammar = constraints.grammar_for(spec, self.envelope, limits, st.max_parallel_calls)
        constraint = None
        if grammar is not None:
            schemas = [spec.schema] if spec.kind == "json" else [t.parameters for t in tools]
            try:
                constraint = constraints.Constraint(self.tokenizer, grammar, digit_limits(schemas, limits))
            except GrammarError as e:
                e.param = e.param or ("response_format" if spec.kind == "json" else "tools")
                raise
        return Job(prompt, params, spec, constraint, emit, adapters=adapters, answered=answered,
                   text_constraint=(lambda: constraints.Constraint(self.tokenizer, text_grammar)) if answered else None)

    def run(self, messages: list[Message], spec: OutputSpec, params: SamplingParams, fresh: bool = False,
            adapter: str | None = None) -> Generation:
        """Prepare, queue and wait: the blocking form, for in-process callers (benchmarks, qualify, the
        pipeline's evaluation). `fresh` evaluates the whole prompt, with nothing reused from the prefix cache."""
        done: queue.Queue = queue.Queue()

        def emit(ev: tuple) -> None:
            if ev[0] in ("done", "error"):
                done.put(ev)

        job = self.prepare(messages, spec, params, emit, adapter)
        job.fresh = fresh
        self.submit(job)
        kind, value = done.get()
        if kind == "error":
            raise value
        return value

    def submit(self, job: Job) -> None:
        """Queue `job`; WorkerGone when this worker was unloaded (the caller asks the engine again)."""
        with self._state:
            if self.closed or self.dead:
                raise WorkerGone(f"'{self.entry.id}' was unloaded; retry", code="worker_gone")
            try:
                self.jobs.put_nowait(job)
            except queue.Full:
                raise Busy(f"'{self.entry.id}' has {self.settings.queue_size} requests waiting; retry later") from None

    def close(self) -> None:
        """Finish what is queued, then free the model (on the worker thread)."""
        with self._state:
            if not self.closed:
                self.jobs.put(None)

    # ---- the worker thread ----------------------------------------------------------------------

    def new_run(self, job: Job, arrival: int) -> _Run:
        return _Run(self, job, arrival)

    def _run(self) -> None:
        """The worker thread: the scheduler's loop. Should it ever fail, every request it holds and
        every later one gets a clear error, and /health reports the worker dead (the engine replaces
        it on the next request)."""
        sched = self.scheduler = Scheduler(self)
        try:
            sched.loop()
        except BaseException as e:  # noqa: BLE001 - the thread must not die silently
            log.exception("worker of %s died", self.entry.id)
            self.dead = f"{type(e).__name__}: {e}"
            err = BackendError(f"the worker of '{self.entry.id}' failed ({self.dead}); it is restarted on the next "
                               "request", code="worker_failed")
            sched.fail_all(err)
        finally:
            with self._state:
                self.closed = True
                self._state.wait_for(lambda: self._users == 0)
            while True:  # nothing that reached the queue is left unanswered
                try:
                    job = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job.emit(("error", WorkerGone(f"'{self.entry.id}' was unloaded; retry", code="worker_gone")))
            try:
                self.backend.close()
            except Exception:  # noqa: BLE001
                log.exception("closing the backend of %s failed", self.entry.id)

    def busy(self) -> dict:
        s = getattr(self, "scheduler", None)
        if s is None:
            return {"running": 0, "paused": 0, "waiting": self.jobs.qsize()}
        return {"running": len(s.runs), "paused": len(s.paused), "waiting": len(s.waiting) + self.jobs.qsize()}


class _Run:
    """One request decoding in a slot: sampling, forced tokens, output parsing and the result.

    `history` is every token its sequence must hold before the next sample (prompt, then each step);
    `feed` is the tail of it not evaluated yet. The scheduler feeds it in chunks, and may take the
    sequence away and give another: `start` then brings the new one up to `history` again."""

    def __init__(self, worker: ModelWorker, job: Job, arrival: int):
        self.w, self.job, self.arrival = worker, job, arrival
        self.b = worker.backend
        self.key = adapter_key(job.adapter_set)
        self.slot: int | None = None
        p = job.params
        self.sampler = Sampler(p.temperature, p.top_p, p.seed)
        self.out = _Output(job.spec, worker.envelope, p.stop, job.emit, job.answered)
        self.constraint = job.constraint
        self.finish, self.n, self.forced, self.t_first = "length", 0, 0, None
        self.single_s, self.single_n = 0.0, 0  # time of the steps that sampled one token and forced none
        self.t_step: float | None = None
        self.t0 = self.t_prefill = None
        self.history, self.feed = list(job.prompt), []
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
        self.out = _Output(dataclasses.replace(self.job.spec, tool_choice="none"), self.w.envelope,
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
                jsonschema.validate(json.loads(content), spec.schema)
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
            finish_reason=finish,
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


class _Output:
    """Turns sampled bytes into text or tool-call events; decides auto-mode text vs calls."""

    def __init__(self, spec: OutputSpec, env: Envelope, stop: list[str], emit: Emit, answered: list[str] = ()):
        self.env, self.emit = env, emit
        self.answered = list(answered)
        self.repeated_answered = False
        self.stop = stop if spec.kind != "json" else []  # stop strings never cut grammar-bound JSON
        self.stopper, self.scanned = StopMatcher(self.stop), 0
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.text = ""  # everything decoded so far
        self.sent = 0  # how much of self.text has been emitted as content
        self.parser: CallParser | None = None
        self.ids: list[str] = []
        self._seen: list[str] = list(self.answered)  # completed calls as "name\0arguments"
        self._current, self._held = "", []
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


class Engine:
    """Resolves model names, keeps up to `max_loaded_models` workers resident (LRU)."""

    def __init__(self, settings: Settings, catalog: Catalog | None = None):
        self.settings = settings
        self.catalog = catalog or Catalog(settings)
        self.workers: OrderedDict[str, ModelWorker] = OrderedDict()
        self._loading: dict[str, Future] = {}
        self._lock = threading.Lock()

    @staticmethod
    def split(name: str | None, adapter: str | None = None) -> tuple[str | None, str | None]:
        """'BASE@TASK' -> ('BASE', 'TASK'); `adapter` (the request's extra field) names the task too."""
        base, _, task = (name or "").partition("@")
        if task and adapter and task != adapter:
            raise InvalidRequest(f"model names adapter '{task}' but adapter is '{adapter}'; give one",
                                 param="adapter")
        return base or None, task or adapter

    def resolve(self, name: str | None) -> ModelEntry:
        """A catalog id or alias selects that model; any other name is served by the default."""
        self.catalog.refresh()
        return self.catalog.find(name or "") or self.catalog.get(self.settings.default_model)

    def worker(self, name: str | None) -> ModelWorker:
        """The resident worker of `name`, loading it if needed. The engine lock is held only to look up
        and register: a load (and its sha256) runs outside it, so requests for loaded models never
        wait on it, and requests for the model being loaded wait on that one load."""
        entry = self.resolve(name)
        while True:
            with self._lock:
                w = self.workers.get(entry.id)
                if w is not None and (w.dead or w.closed):
                    del self.workers[entry.id]  # died: replaced by a fresh load below
                    w = None
                if w is not None:
                    self.workers.move_to_end(entry.id)
                    return w
                loading = self._loading.get(entry.id)
                mine = loading is None
                if mine:
                    if entry.source.kind == "hf" and not self.catalog.is_local(entry):
                        raise NotFound(f"model '{entry.id}' is in the catalog but not in the store; run "
                                       f"`edgeslm models pull {entry.id}`", param="model", code="model_not_found")
                    loading = self._loading[entry.id] = Future()
            if not mine:
                loading.result()  # the load's own error, if it failed
                continue
            try:
                w = ModelWorker(entry, self.settings, self.catalog)
            except BaseException as e:
                with self._lock:
                    del self._loading[entry.id]
                loading.set_exception(e)
                raise
            with self._lock:
                del self._loading[entry.id]
                self.workers[entry.id] = w
                evicted = []
                while len(self.workers) > self.settings.max_loaded_models:
                    evicted.append(self.workers.popitem(last=False)[1])
            for old in evicted:
                old.close()  # finishes its queued jobs, then frees the model
            loading.set_result(w)
            return w

    def loaded(self) -> list[ModelWorker]:
        return list(self.workers.values())

    def close(self) -> None:
        for w in self.workers.values():
            w.close()
        self.workers.clear()
