"""Generation: one request decoding in a slot, from sampled tokens to text or tool-call events.

Owns the per-request decode step (sampling, grammar masks and forced tokens, the request lean, the answered-call
fallback), its place in a backend sequence, and the final Generation with its timings; output
parsing is output.py. The scheduler (scheduling.py) decides when each step runs; the
worker (engine.py) prepares the job.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time

import jsonschema
import numpy as np

from edgeslm.backends.base import adapter_key
from edgeslm.decoding import sampler
from edgeslm.decoding.copying import Copier, Leans
from edgeslm.decoding.tools import validate_arguments
from edgeslm.errors import BackendError, EdgeError
from edgeslm.output import Output
from edgeslm.types import Generation, Usage, common_prefix

log = logging.getLogger("edgeslm.generation")
SHARE_MIN = 16  # a shared prefix must save at least this many tokens over the slot's own cache


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
        self.sampler = sampler.for_job(job, worker.entry, self.b.metadata,  # fields left out: the defaults
                                       lambda n: self.history[max(len(job.prompt), len(self.history) - n):])
        leans, env = Leans.of(job.params), worker.envelope
        self.copier = (Copier(job.source, self.b.piece, leans, job.ranking, job.spec.tools,
                              worker.openers, worker.commas, lambda text: self.b.tokenize(text, add_bos=False), job.kinds)
                       if any(leans) and job.source and job.spec.kind == "tools" and env.syntax == "json" else None)
        self.out = Output(job.spec, env, job.params.stop, job.emit, job.answered, self.copier)
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
        self.since, self.last_step, self.cached, self.restored = 0, 0, 0, 0
        self.started = self.done = self.prefilling = False

    def advance(self) -> None:
        """After an evaluation: feed on, or sample from this slot's fresh logits and either leave the
        next tokens in `feed` or end."""
        if self.feed:
            return
        self.prefilling = False
        if self.t_prefill is None:
            self.t_prefill = time.perf_counter()
            self._keep_prefix()
        try:
            if not self._step():
                self._end(("done", self._result()))
        except Exception as e:  # noqa: BLE001 - never let one request take the worker down
            self.fail(e)

    def cancel(self) -> None:
        self.finish = "cancelled"
        try:
            self._end(("done", self._result()))
        except Exception as e:  # noqa: BLE001 - a half-written answer that fails its checks: nobody reads it
            self.fail(e)

    def fail(self, e: Exception) -> None:
        if not isinstance(e, EdgeError):  # the details go to the log, never to the client
            log.error("generation failed", exc_info=e, extra={"request_id": self.job.request_id})
            e = BackendError(f"generation failed ({type(e).__name__}); the server log has the details under "
                             f"request id {self.job.request_id}")
        self._end(("error", e))

    def _end(self, event: tuple) -> None:
        if self.done:
            return
        if self.job.constraint is not None:
            self.job.constraint.close()
        self.done = True
        self.job.emit(event)

    def _shun(self, amount: float) -> tuple[np.ndarray, np.ndarray] | None:
        """After a tool's result (Job.shun): `amount` on the next token of each shunned text (a refusal, a
        result block's opener) that the answer has followed so far, token for token; None once it follows none."""
        n = len(self.history) - len(self.job.prompt)
        if n >= max(map(len, self.job.shun)):  # past the longest: nothing more to follow (the answer's rest)
            return None
        said = self.history[len(self.job.prompt):]
        ids = {r[n] for r in self.job.shun if len(r) > n and r[:n] == said}
        return (np.fromiter(ids, dtype=np.int64), np.full(len(ids), amount)) if ids else None

    def _step(self) -> bool:
        p, constraint = self.job.params, self.constraint
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
            logits, mask = self.b.logits(self.slot), constraint.mask() if constraint else None
            lift = None
            if self.copier is not None and self.out.mode == "undecided" and not self.n:
                lift = self.copier.open(self.job.asked)
            if self.job.shun and p.call_bias and self.out.mode in ("undecided", "text"):
                lift = _merged(lift, self._shun(-p.call_bias))  # at the first token beside the call lean
            elif self.copier is not None and self.out.mode == "calls":
                naming = self.out.parser.naming
                if naming is not None or self.copier.copying or self.copier.counting or self.copier.signing or \
                        self.copier.ending.keying:
                    allowed = None if mask is None else sampler.allowed_mask(mask, len(logits))
                    lift = self.copier.boost(logits, allowed, naming)
                elif (self.copier.args.closed and self.copier.ending.more_bias) or self.copier.ending.may_close:
                    allowed, ending = None if mask is None else sampler.allowed_mask(mask, len(logits)), self.copier.ending
                    lift = ending.more(allowed, self.b.eog_tokens) if self.copier.args.closed else ending.more_args(allowed, logits)
            token = self.sampler.sample(logits, mask, lift)
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
        if any(self.out.feed(self.w.marker_pieces.get(t) or self.b.piece(t)) for t in step):  # markers as text
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
            # text stays constrained: with tools offered, the call marker is in no text (a call may follow it)
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

    # ---- its place in a backend sequence: (re)start, borrowed and restored prefixes, tokens fed per round ----

    def start(self) -> None:
        """(Re)start in `self.slot`: keep what the sequence shares with `history` and leave the rest in
        `feed`, evaluated by the scheduler's next rounds (nothing is evaluated here)."""
        first = not self.started
        if first:
            self.t0, self.started = time.perf_counter(), True
            if self.job.fresh and not self.job.pin:
                self.b.reset(self.slot)
        self._borrow_prefix()
        self._restore_prefix()
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

    def _restore_prefix(self) -> None:
        """Where the prefix cache on disk holds more of `history` than memory does (after a restart, or
        once memory let it go), load that state into this slot instead of evaluating it again."""
        b, store = self.b, self.w.prefixes
        if store is None or not self.job.disk:
            return
        k, toks = b.cached(self.slot)
        own = common_prefix(toks, self.history) if k == self.key else 0
        if len(self.history) - own < store.min_tokens // 4:  # too little left to evaluate to be worth a look
            return
        hit = store.lookup(self.w.prefix_identity(self.key), self.history[:-1], at_least=own + SHARE_MIN,
                           room=b.n_ctx - b.used_cells())
        if hit is None:
            return
        if b.restore(self.slot, hit.data, self.history[: hit.tokens], self.key):
            self.restored = hit.tokens
            store.stats["restored"] += 1
        else:
            store.refused_load(hit.entry, "llama.cpp refused its state")

    def _keep_prefix(self) -> None:
        """A long prompt just evaluated anew: the prefix cache on disk may keep its state (the sequence
        holds exactly the prompt now)."""
        store, b, slot = self.w.prefixes, self.b, self.slot
        if store is not None and len(self.history) - self.cached >= store.min_tokens:
            store.offer(self.w.prefix_identity(self.key), self.history, lambda: b.state(slot))

    def next_tokens(self, n: int | None = None) -> list[int]:
        """The next tokens to evaluate: all of a step, or up to `n` while prefilling (never across a
        pinned prefix's end: its cells are evaluated apart, so that they are the same for every job)."""
        n = len(self.feed) if n is None else n
        done = len(self.history) - len(self.feed)
        if self.prefilling and done < self.job.pin:
            n = min(n, self.job.pin - done)
        step, self.feed = self.feed[:n], self.feed[n:]
        return step

    def unstep(self, step: list[int]) -> None:
        self.feed = step + self.feed

    # ---- the finished run's Generation: content or calls, checked against their schema, and the timings ----

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
            stop_sequence=self.out.stopped_by,
            usage=Usage(len(job.prompt), n, self.cached),
            timings={
                "prefill_s": t_prefill - t0,
                "ttft_s": (t_first or t_end) - t0,
                "decode_s": t_end - (t_first or t_end),
                "tokens_per_s": (n - 1) / (t_end - t_first) if t_first and n > 1 and t_end > t_first else 0.0,
                "forced_tokens": self.forced,
                "restored_tokens": self.restored,
                "sampled_step_s": self.single_s / self.single_n if self.single_n else 0.0,
            },
        )


def _merged(a: tuple[np.ndarray, np.ndarray] | None, b: tuple[np.ndarray, np.ndarray] | None):
    """Two lifts as one, the amounts of a token both hold added."""
    if a is None or b is None:
        return a if b is None else b
    ids, at = np.unique(np.concatenate([a[0], b[0]]), return_inverse=True)
    return ids, np.bincount(at, weights=np.concatenate([a[1], b[1]]), minlength=len(ids))
