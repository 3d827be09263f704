"""The engine: resident models and one worker per model.

Owns model residency (load outside the engine lock, LRU eviction, replacing a dead worker) and request
preparation (prompt tokens, adapter, limits, grammar), and runs each worker's thread. What runs in
that thread is the scheduler (scheduling.py) over requests decoding (generation.py). Knows nothing
about HTTP: the server turns a job's events into OpenAI JSON.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from edgeslm import device
from edgeslm.backends import memory, open_backend
from edgeslm.backends.base import Backend, file_identity
from edgeslm.config import Settings
from edgeslm.decoding import constraints
from edgeslm.decoding.templates import ChatTemplate
from edgeslm.decoding.tools import (
    Bounds,
    Envelope,
    digit_limits,
    envelope_for,
)
from edgeslm.errors import (
    BackendError,
    Busy,
    ContextTooLong,
    GrammarError,
    InvalidRequest,
    NotFound,
    WorkerGone,
)
from edgeslm.generation import Emit, Run, answered_calls
from edgeslm.scheduling import Scheduler
from edgeslm.store.adapters import NONE, Adapter, AdapterStore
from edgeslm.store.registry import Catalog, ModelEntry
from edgeslm.types import (
    Generation,
    Message,
    OutputSpec,
    SamplingParams,
)

log = logging.getLogger("edgeslm.engine")


@dataclass
class Job:
    prompt: list[int]
    params: SamplingParams
    spec: OutputSpec
    constraint: constraints.Constraint | constraints.GbnfConstraint | None
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

    def __init__(self, entry: ModelEntry, settings: Settings, catalog: Catalog, adapters: tuple | list[Adapter] = ()):
        """Load `entry`; `adapters` are applied to every request (per-request selection is the server's)."""
        self.entry, self.settings, self.adapters = entry, settings, list(adapters)
        path = catalog.ensure_local(entry)
        self.threads = settings.threads or device.default_threads()
        self.plan = memory.plan_for(entry.format, path, settings, model=entry.id, adapters=[a.gguf for a in self.adapters])
        memory.check_fits(self.plan, memory.budget_of(settings.memory_budget))
        t0 = time.perf_counter()
        self.backend: Backend = open_backend(path, entry.format, n_ctx=settings.n_ctx, n_threads=self.threads,
                                    n_batch=settings.n_batch, n_seq=memory.sequences(settings))
        self.envelope: Envelope = envelope_for(entry.tool_format)
        self.template = ChatTemplate(self.backend.metadata.get("tokenizer.chat_template"), entry.chat_format,
                                     self.envelope, self.backend.bos_text)
        self.tokenizer = constraints.build_tokenizer(self.backend, settings.home / "cache" / "llguidance")
        self.load_s = time.perf_counter() - t0
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=settings.queue_size)
        # submit and prepare vs the thread's exit: no job lands after it, and the backend is freed only
        # once no request is being prepared on it
        self._state = threading.Condition()
        self.closed, self._users = False, 0
        self.dead: str | None = None
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
                   text_constraint=(lambda: constraints.Constraint(self.tokenizer, text_grammar or "")) if answered else None)

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

    def new_run(self, job: Job, arrival: int) -> Run:
        return Run(self, job, arrival)

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
                pending = self._loading.get(entry.id)
                mine = pending is None
                if pending is None:
                    if entry.source.kind == "hf" and not self.catalog.is_local(entry):
                        raise NotFound(f"model '{entry.id}' is in the catalog but not in the store; run "
                                       f"`edgeslm models pull {entry.id}`", param="model", code="model_not_found")
                    pending = self._loading[entry.id] = Future()
            loading: Future = pending
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
