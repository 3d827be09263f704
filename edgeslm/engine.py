"""The engine: resident models and one worker per model.

Owns model residency (load outside the engine lock, LRU eviction, replacing a dead worker) and each
worker's lifecycle (submit, close, its thread, /health's view of it); a worker prepares requests with
preparation.py. What runs in that thread is the scheduler (scheduling.py) over requests decoding
(generation.py). Knows nothing about HTTP: the server turns a job's events into OpenAI JSON.
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
from pathlib import Path

from edgeslm import device
from edgeslm.backends import memory, offload, open_backend
from edgeslm.backends.base import Backend
from edgeslm.backends.embedding import Embedder
from edgeslm.config import Settings
from edgeslm.decoding import constraints, said
from edgeslm.decoding.prompt import Specials
from edgeslm.decoding.templates import ChatTemplate
from edgeslm.decoding.tools import Envelope, envelope_for, format_of_template
from edgeslm.errors import (
    BackendError,
    Busy,
    DoesNotFit,
    InvalidRequest,
    NotFound,
    WorkerGone,
)
from edgeslm.generation import Run
from edgeslm.output import Emit
from edgeslm.preparation import Job, Preparer
from edgeslm.ranking import ToolRanker
from edgeslm.scheduling import Scheduler
from edgeslm.store import folded
from edgeslm.store.adapters import Adapter, AdapterStore
from edgeslm.store.prefixes import PrefixStore
from edgeslm.store.registry import Catalog, ModelEntry
from edgeslm.types import (
    Generation,
    Message,
    OutputSpec,
    SamplingParams,
)

log = logging.getLogger("edgeslm.engine")


def foldable(settings: Settings, entry: ModelEntry, task: str | None) -> Adapter | None:
    """The adapter a request for `entry` under `task` runs under, when it is the model's default adapter
    and folding is on (a GGUF model, the adapter in the store): what a served copy folds in."""
    label = entry.default_adapter
    if not (settings.fold and label and entry.format == "gguf" and task in (None, label)):
        return None
    store = AdapterStore(settings.adapters_dir)
    return store.get(entry.id, label, entry.sha256) if store.has(entry.id, label) else None


def fold(settings: Settings, catalog: Catalog, entry: ModelEntry, progress: Callable[[int, int], None] | None = None
         ) -> tuple[Adapter, Path] | None:
    """The served copy of `entry` with its default adapter folded in, built unless it exists (store/
    folded.py): (the adapter, the copy), or None when there is nothing to fold."""
    adapter = foldable(settings, entry, None)
    if adapter is None:
        return None
    return adapter, folded.ensure(settings.cache, entry.sha256, lambda: catalog.ensure_local(entry), adapter.gguf,
                                  progress)


class ModelWorker:
    """One resident model and the thread that decodes its jobs: up to `settings.parallel` at once,
    one slot (backend sequence) each, admitted in arrival order."""

    def __init__(self, entry: ModelEntry, settings: Settings, catalog: Catalog, adapters: tuple | list[Adapter] = (),
                 rank: Callable[[str, list], said.Ranking] = said.by_words,
                 folded: tuple[Adapter, Path] | None = None):
        """Load `entry`; `adapters` are applied to every request (per-request selection is the server's);
        `rank` says how relevant each offered tool is to a request (the tool lean: decoding/copying.py).
        `folded` (adapter, GGUF): load that served copy of the model instead, which runs that adapter only."""
        self.entry, self.settings, self.adapters = entry, settings, list(adapters)
        self.folded = folded[0] if folded else None
        self.name = entry.id + (f"+{self.folded.task}" if self.folded else "")  # its key among resident workers
        path = folded[1] if folded else catalog.ensure_local(entry)
        self.threads = settings.threads or device.default_threads()
        self.plan = memory.plan_for(entry.format, path, settings, model=self.name, adapters=[a.gguf for a in self.adapters])
        memory.check_fits(self.plan, memory.budget_of(settings.memory_budget))
        log.info("'%s' on %s: %s", entry.id, self.plan.device, self.plan.gpu_reason)
        t0 = time.perf_counter()
        self.backend: Backend = open_backend(path, entry.format, n_ctx=settings.n_ctx, n_threads=self.threads,
                                    n_batch=settings.n_batch, n_seq=memory.sequences(settings),
                                    **self._device_args(entry.format, settings))
        source = self.backend.metadata.get("tokenizer.chat_template")
        self.envelope: Envelope = envelope_for(format_of_template(source) or entry.tool_format)
        self.template = ChatTemplate(source, entry.chat_format,
                                     self.envelope, self.backend.bos_text)
        self.specials = Specials(self.backend.special_tokens(), self.template.markup)
        self.tokenizer = constraints.build_tokenizer(self.backend, settings.cache / "llguidance")
        self.marker_pieces = constraints.marker_pieces(self.backend, self.tokenizer, self.envelope)
        self.openers = constraints.call_openers(self.tokenizer, self.envelope, self.marker_pieces)  # the call lean
        self.commas = constraints.comma_tokens(self.tokenizer)  # the argument lean
        self.preparer = Preparer(entry, settings, self.backend, self.template, self.specials, self.tokenizer,
                                 self.envelope, self.adapters, rank, self.folded)
        self.prefixes = self._prefix_store(settings)
        self._identity: dict | None = None
        self.load_s = time.perf_counter() - t0
        # bounded in submit (queued and waiting together, less the slots free now), not by the queue itself
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        # submit and prepare vs the thread's exit: no job lands after it, and the backend is freed only
        # once no request is being prepared on it
        self._state = threading.Condition()
        self.closed, self._users = False, 0
        self.dead: str | None = None
        self.thread = threading.Thread(target=self._run, name=f"worker-{self.name}", daemon=True)
        self.thread.start()
        log.info("loaded %s in %.2fs with %d threads", self.name, self.load_s, self.threads)

    def run(self, messages: list[Message], spec: OutputSpec, params: SamplingParams, fresh: bool = False,
            adapter: str | None = None, disk: bool | None = None, pin: bool = False) -> Generation:
        """Prepare, queue and wait: the blocking form, for in-process callers (benchmarks, qualify, the
        pipeline's evaluation). `fresh` evaluates the whole prompt, with nothing reused from the prefix cache
        (in memory, and on disk unless `disk`); with `pin`, but what precedes the first user message's text
        (the system prompt and tools), evaluated apart once and reused as such (never from the disk's cache)."""
        done: queue.Queue = queue.Queue()

        def emit(ev: tuple) -> None:
            if ev[0] in ("done", "error"):
                done.put(ev)

        job = self.prepare(messages, spec, params, emit, adapter, pin=fresh and pin)
        job.fresh, job.disk = fresh, not (fresh or job.pin) if disk is None else disk and not job.pin
        self.submit(job)
        kind, value = done.get()
        if kind == "error":
            raise value
        return value

    @contextlib.contextmanager
    def _in_use(self):
        """Preparing a request on this worker's backend: refused once it is unloaded, and the backend is
        freed only after the last one ends."""
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
                adapter: str | None = None, pin: bool = False) -> Job:
        """The request made into a job (Preparer.job), in the caller's thread; `pin`: with its pinned prefix."""
        with self._in_use():
            job = self.preparer.job(messages, spec, params, emit, adapter)
            job.pin = self.preparer.pinned(messages, spec, job.prompt) if pin else 0
            return job

    def submit(self, job: Job) -> None:
        """Queue `job`; WorkerGone when this worker was unloaded (the caller asks the engine again)."""
        with self._state:
            if self.closed or self.dead:
                raise WorkerGone(f"'{self.entry.id}' was unloaded; retry", code="worker_gone")
            sched = getattr(self, "scheduler", None)
            pending = sched.pending(self.jobs.qsize()) if sched is not None else self.jobs.qsize()
            if pending >= self.settings.queue_size:
                raise Busy(f"'{self.entry.id}' has {self.settings.queue_size} requests waiting; retry later")
            self.jobs.put_nowait(job)

    def _device_args(self, fmt: str, settings: Settings) -> dict:
        """The backend's device: layers to offload (GGUF, from the plan) or an execution provider (ONNX)."""
        if fmt == "gguf":
            return {"n_gpu_layers": self.plan.gpu_layers, "flash_attn": settings.flash_attn, "kv_type": settings.kv_type}
        import onnxruntime

        provider, why = offload.onnx_provider(onnxruntime.get_available_providers(), offload.parse_layers(settings.gpu_layers))
        log.info("'%s': %s", self.entry.id, why)
        return {"provider": provider}

    def _prefix_store(self, settings: Settings) -> PrefixStore | None:
        if not settings.prefix_disk_mb:
            return None
        if not self.backend.capabilities.prefix_persist:
            log.info("'%s': the %s backend keeps no prefix cache on disk (its first call after a restart is "
                     "cold)", self.entry.id, self.entry.format)
            return None
        return PrefixStore.of(settings)

    def prefix_identity(self, key: tuple) -> dict:
        """What a state saved on disk must have been made under to be loaded here, with adapter set `key`."""
        if self._identity is None:
            self._identity = self.backend.identity()
        return {**self._identity, "adapters": [[str(p), i, s] for p, i, s in key]}

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
            if self.prefixes is not None:
                self.prefixes.close()  # what is queued reaches the disk
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
        self.embedders: dict[str, Embedder] = {}
        self._embed_lock = threading.Lock()  # held while one loads: a MiniLM load takes about a second
        self.ranker = ToolRanker(lambda: self.embedder(None), settings.cache / "tool-vectors")
        self._unfit: dict[Path, int] = {}  # served copy -> bytes of its model resident when it did not fit

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
        """The resident worker of `name`, loading it if needed."""
        entry = self.resolve(name)
        return self._resident(entry, entry.id, lambda: ModelWorker(entry, self.settings, self.catalog, rank=self.ranker))

    def worker_for(self, name: str | None, task: str | None) -> ModelWorker:
        """The worker a request for `name` under adapter `task` (None: the model's default) runs on: a
        served copy with that adapter folded into its weights when one is built and fits (store/folded.py;
        the model itself is loaded only for `@none` and its other adapters), else the model's."""
        entry = self.resolve(name)
        adapter = foldable(self.settings, entry, task)
        path = folded.find(self.settings.cache, entry.sha256, adapter.gguf) if adapter else None
        # a copy that did not fit is tried again only once less of its model is resident than then
        if adapter is not None and path is not None and self._beside(entry) < self._unfit.get(path, 1 << 62):
            try:
                return self._resident(entry, f"{entry.id}+{adapter.task}", lambda: self._copy(entry, adapter, path))
            except DoesNotFit as e:  # served with the adapter applied instead, as before the copy existed
                log.warning("serving adapter '%s' of %s unfolded: %s", adapter.task, entry.id, e.message)
        return self.worker(entry.id)

    def _copy(self, entry: ModelEntry, adapter: Adapter, path: Path) -> ModelWorker:
        """The served copy's worker, loaded only when it fits in the budget beside what of its model
        is resident."""
        plan = memory.plan_for(entry.format, path, self.settings, model=f"{entry.id}+{adapter.task}")
        beside = self._beside(entry)
        if beside:
            plan = dataclasses.replace(plan, terms={**plan.terms, f"'{entry.id}' beside it": beside})
        try:
            memory.check_fits(plan, memory.budget_of(self.settings.memory_budget))
        except DoesNotFit:
            self._unfit[path] = beside
            raise
        self._unfit.pop(path, None)
        return ModelWorker(entry, self.settings, self.catalog, rank=self.ranker, folded=(adapter, path))

    def _beside(self, entry: ModelEntry) -> int:
        """Bytes planned for the live workers of `entry` (its own and its copies')."""
        with self._lock:
            return sum(w.plan.total for w in self.workers.values() if w.entry.id == entry.id and not (w.dead or w.closed))

    def fold(self, name: str | None, progress: Callable[[int, int], None] | None = None) -> Path | None:
        """Build the served copy of `name` with its default adapter folded in, unless it exists: its
        path, or None when there is nothing to fold (no default adapter, folding off)."""
        made = fold(self.settings, self.catalog, self.resolve(name), progress)
        return made[1] if made else None

    def _resident(self, entry: ModelEntry, key: str, make: Callable[[], ModelWorker]) -> ModelWorker:
        """The resident worker under `key`, made by `make` if needed. The engine lock is held only to look
        up and register: a load (and its sha256) runs outside it, so requests for loaded models never
        wait on it, and requests for the model being loaded wait on that one load."""
        while True:
            with self._lock:
                w = self.workers.get(key)
                if w is not None and (w.dead or w.closed):
                    del self.workers[key]  # died: replaced by a fresh load below
                    w = None
                if w is not None:
                    self.workers.move_to_end(key)
                    return w
                pending = self._loading.get(key)
                mine = pending is None
                if pending is None:
                    if entry.source.kind == "hf" and not self.catalog.is_local(entry):
                        raise NotFound(f"model '{entry.id}' is in the catalog but not in the store; run "
                                       f"`edgeslm models pull {entry.id}`", param="model", code="model_not_found")
                    pending = self._loading[key] = Future()
            loading: Future = pending
            if not mine:
                loading.result()  # the load's own error, if it failed
                continue
            try:
                w = make()
            except BaseException as e:
                with self._lock:
                    del self._loading[key]
                loading.set_exception(e)
                raise
            with self._lock:
                del self._loading[key]
                self.workers[key] = w
                evicted = []
                while len({w.entry.id for w in self.workers.values()}) > self.settings.max_loaded_models:  # a copy counts with its model
                    evicted.append(self.workers.popitem(last=False)[1])
            for old in evicted:
                old.close()  # finishes its queued jobs, then frees the model
            loading.set_result(w)
            return w

    def embedder(self, name: str | None) -> Embedder:
        """The embedding context of `name`: a catalog GGUF named by its id or an alias other than
        "default"; any other name (OpenAI's text-embedding-3-small too) gets the shipped MiniLM."""
        from edgeslm.store import embedders

        self.catalog.refresh()
        entry = self.catalog.find(name) if name and name != "default" else None
        if entry is not None and entry.format != "gguf":
            raise InvalidRequest(f"'{entry.id}' is an {entry.format} model; embeddings come from GGUF models",
                                 param="model", code="model_cannot_embed")
        key = entry.id if entry else embedders.MINILM
        with self._embed_lock:
            if key not in self.embedders:
                if entry is not None and entry.source.kind == "hf" and not self.catalog.is_local(entry):
                    raise NotFound(f"model '{entry.id}' is in the catalog but not in the store; run "
                                   f"`edgeslm models pull {entry.id}`", param="model", code="model_not_found")
                path = self.catalog.ensure_local(entry) if entry else embedders.minilm_gguf(self.settings.cache)
                self.embedders[key] = Embedder(key, path, self.settings.threads or device.default_threads())
            return self.embedders[key]

    def loaded(self) -> list[ModelWorker]:
        return list(self.workers.values())

    def close(self) -> None:
        for w in self.workers.values():
            w.close()
        self.workers.clear()
        for e in self.embedders.values():
            e.close()
        self.embedders.clear()
