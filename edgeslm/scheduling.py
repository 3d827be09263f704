"""The slot scheduler of one model worker: which requests decode now, in which backend sequence, and
what happens when the KV cache or the slots run out.

Owns the policy, not the decoding (generation.Run does that):
- **Least attained service.** A request that waits is ranked by the tokens it has decoded so far (in
  quanta of `preempt_after`), then by the work it still declares (`max_tokens` less what it made, in
  powers of two), then arrival: new requests (0 decoded) go before long generations, and short ones
  before long ones.
- **Preemption.** When every slot is busy and a request of a lower rank waits, the worst-ranked running
  request is paused: at once for a request not started yet (once the victim has moved a few tokens),
  after `preempt_after` tokens for a paused one. Its sequence is kept (the backend has four sequences
  per slot), so it resumes where it stopped, and an idle agent's prefix survives beside it.
- **KV by use, not by reservation.** A request takes KV cells as it grows. When a step would not fit,
  cells are freed in this order: idle caches, paused requests' caches (they recompute on resume), the
  running request holding the most cells (paused). No request ever holds the cache while others wait.
- **Chunked prefill.** Prompts go in at most `prefill_chunk` tokens per round (all prompts together,
  best-ranked first), in the same batch as the other requests' decode steps, so a round's cost stays
  bounded and a long prompt never stalls the streams beside it.
"""

from __future__ import annotations

import itertools
import queue
import time

from edgeslm.backends.base import adapter_key
from edgeslm.errors import Busy
from edgeslm.types import common_prefix

SWITCH_QUANTUM = 8  # decode steps an adapter set runs before another set gets its turn
MIN_RUN = 2  # tokens a request decodes between two preemptions (each start makes progress)
MIN_SHARE = 16  # prompt tokens a cache must share with a new request to be reused rather than kept


class Scheduler:
    """The worker thread's loop: take queued jobs, admit them (rank, preempt, place each in a sequence, make
    room in the KV cells), then one round for everyone. It owns the runs, paused and waiting lists and each
    sequence's last use; the policy is the module's docstring."""

    def __init__(self, worker):
        self.w, self.b = worker, worker.backend
        st = worker.settings
        # requests decoding at once: never more than the backend has sequences (ONNX keeps one)
        self.slots = max(1, min(st.parallel, self.b.n_seq))
        self.quantum = st.preempt_after
        self.chunk = st.prefill_chunk
        self.runs: list = []  # decoding now, each in its own sequence
        self.paused: list = []  # preempted; each keeps its sequence until the cells are needed
        self.waiting: list = []  # queued jobs not started yet, in arrival order
        self.last_used = [0.0] * self.b.n_seq
        # per sequence: the (adapters, tokens) of a pinned prefix its cells hold as evaluated apart
        self.apart: dict[int, tuple] = {}
        self._arrival = itertools.count()
        self.closing = False

    # ---- the loop ------------------------------------------------------------------------------

    def loop(self) -> None:
        while self.runs or self.paused or self.waiting or not self.closing:
            self._take(block=not (self.runs or self.paused or self.waiting))
            self._drop_cancelled()
            self._admit()
            self._round()

    def _take(self, block: bool) -> None:
        """Move queued jobs into `waiting` (blocking only when there is nothing else to do)."""
        while not self.closing:
            try:
                job = self.w.jobs.get(block=block, timeout=None)
            except queue.Empty:
                return
            block = False
            if job is None:
                self.closing = True
                return
            self.waiting.append((next(self._arrival), job))

    def _drop_cancelled(self) -> None:
        """Requests whose client hung up stop now, wherever they are: waiting, paused, or running (a
        prompt still being fed stops at its next chunk, not after the whole prefill)."""
        self.waiting = [(a, j) for a, j in self.waiting if not j.cancelled.is_set()]
        for r in [r for r in self.paused if r.job.cancelled.is_set()]:
            self.paused.remove(r)
            r.cancel()
        for r in [r for r in self.runs if r.job.cancelled.is_set()]:
            self.runs.remove(r)
            r.cancel()

    def _round(self) -> None:
        """One step for every running request: those sharing an adapter set decode in one batch."""
        groups: dict[tuple, list] = {}
        for r in self.runs:
            groups.setdefault(r.key, []).append(r)
        budget = [self.chunk]  # prompt tokens this round may evaluate, every group and sub-step together
        for group in groups.values():
            # switching adapter sets makes llama.cpp re-reserve its graph (~4-6 ms measured), so with
            # several sets running each one decodes a few steps before the next gets its turn
            for _ in range(SWITCH_QUANTUM if len(groups) > 1 else 1):
                # an earlier group's room-making may have paused some of this group's requests (their
                # sequence taken): only those still running, in their own sequence, decode now
                group = [r for r in group if not r.done and r in self.runs and r.slot is not None]
                if not group:
                    break
                steps = self._steps(group, budget)
                if not steps:
                    break
                if not self._make_room(sum(map(len, steps.values())), protect=set(steps), running_too=True):
                    # only this group's own requests hold cells: the longest waits, the rest go on
                    victim = max(group, key=lambda r: len(self.b.cached(r.slot)[1]))
                    for r in group:
                        if r.slot in steps:
                            if r.prefilling:
                                budget[0] += len(steps[r.slot])
                            r.unstep(steps[r.slot])
                    if len(group) == 1:
                        victim.fail(Busy(f"the KV cache ({self.b.n_ctx} cells) cannot hold this request beside "
                                         "the others now; retry", code="kv_cache_full"))
                    else:
                        self.runs.remove(victim)
                        self.b.reset(victim.slot)
                        victim.slot = None
                        self.paused.append(victim)
                    break
                try:
                    self.b.set_adapters(group[0].job.adapter_set)
                    self.b.decode_many(steps)
                except Exception as e:  # noqa: BLE001 - reported to each request of the batch
                    for r in group:
                        r.fail(e)
                    break
                now = time.monotonic()
                for r in group:
                    if r.slot in steps:
                        self.last_used[r.slot] = now
                        r.advance()
        self.runs = [r for r in self.runs if not r.done]

    def _steps(self, group: list, budget: list[int]) -> dict[int, list[int]]:
        """This sub-step's tokens per sequence: every decoding request's whole step, and prompt chunks
        from what is left of the round's prefill `budget` (one list, shared by every group and sub-step
        of the round), best-ranked first: a round's cost stays bounded, so a long prompt holds a short
        call's next token back by one chunk at most."""
        steps = {}
        for r in sorted(group, key=self._rank):
            if r.prefilling:
                take = min(len(r.feed), budget[0])
                if take:
                    steps[r.slot] = r.next_tokens(take)  # fewer where a pinned prefix ends (Run.next_tokens)
                    budget[0] -= len(steps[r.slot])
            elif r.feed:
                steps[r.slot] = r.next_tokens()
        return steps

    def fail_all(self, e: Exception) -> None:
        """The worker is going down: every request it holds gets `e`."""
        for r in [*self.runs, *self.paused]:
            if not r.done:
                r.fail(e)
        for _, job in self.waiting:
            job.emit(("error", e))
        self.runs, self.paused, self.waiting = [], [], []

    # ---- admission: which waiting request starts next, which running one yields, in which sequence ----

    def pending(self, queued: int) -> int:
        """Requests waiting, counted against the queue size: `queued` ones not taken yet and those taken
        but not started (the loop drains the queue every round, so the queue alone bounds nothing), less
        the ones free slots take at once. Read from other threads: a snapshot."""
        return max(0, queued + len(self.waiting) - max(0, self.slots - len(self.runs)))

    def _rank(self, item) -> tuple:
        """Lower goes first: service so far (in quanta), then the work the request still declares (its
        max_tokens less what it made, by powers of two: a tool call a few tokens from its cap before a
        1,024-token essay), then arrival."""
        if isinstance(item, tuple):  # a waiting job
            return (0, item[1].params.max_tokens.bit_length(), item[0])
        left = max(0, item.job.params.max_tokens - item.n)
        return (1 + item.n // self.quantum, left.bit_length(), item.arrival)

    def _admit(self) -> None:
        """Start or resume the best-ranked requests while slots and cells allow; preempt one running
        request when a better-ranked one waits and every slot is busy."""
        while self.waiting or self.paused:
            best = min([*self.waiting, *self.paused], key=self._rank)
            if len(self.runs) >= self.slots:
                # a request that has not started yet gets a slot at once (the victim keeps its cache and
                # only needs to have moved MIN_RUN tokens); paused ones rotate a quantum at a time
                victim = self._victim(self._rank(best), MIN_RUN if isinstance(best, tuple) else self.quantum)
                if victim is None:
                    return
                self.runs.remove(victim)
                self.paused.append(victim)
                continue
            if isinstance(best, tuple):
                self.waiting.remove(best)
                run = self.w.new_run(best[1], best[0])
            else:
                self.paused.remove(best)
                run = best
            if not self._place(run):
                return

    def _victim(self, rank: tuple, least: int):
        """The running request that yields its slot to one ranked `rank`: the worst-ranked, once it has
        moved `least` tokens since it (re)started and if it ranks below `rank`; else None. A tool call a few
        tokens from its cap, whose forced tokens count as service, does not yield to each new arrival while
        a long generation that started after it runs on (it was paused for a quantum of another's tokens,
        ~1.3 s under `benchmarks.load`). Not the worst-ranked of those that have moved: the call, near its
        end, would then yield whenever the others had just resumed (measured: short-call p95 1.05-1.15 s)."""
        worst = max(self.runs, key=self._rank)
        return worst if worst.since >= least and self._rank(worst) > rank else None

    def _place(self, run) -> bool:
        """Give `run` a sequence (its own if it still holds it, else the free one sharing the longest
        prefix beyond a chat template's opening, else an empty one, else the least recently used) and
        feed its first chunk; False when cells are short."""
        b, key = self.b, run.key
        held = {r.slot for r in self.runs} | {r.slot for r in self.paused if r.slot is not None}
        if run.slot is not None and b.cached(run.slot)[0] == key and run.slot not in held:
            slot = run.slot
        else:
            free = [s for s in range(b.n_seq) if s not in held]
            if not free:  # every sequence is held: the paused request that will wait longest gives its up
                donor = max((r for r in self.paused if r.slot is not None), key=self._rank)
                b.reset(donor.slot)
                free, donor.slot = [donor.slot], None

            def choice(s: int) -> tuple:
                # a cache is worth taking for what it shares beyond a chat template's opening tokens (which
                # every prompt shares), or for all of a short prompt; otherwise take one that loses nothing
                # (empty, or all of it shared), else the least recently used: a new prompt must not wipe an
                # agent's warm prefix for the two tokens they have in common
                k, toks = b.cached(s)
                shared = common_prefix(toks, run.history) if k == key else 0
                worth = shared >= min(MIN_SHARE, len(run.history) - 1)
                return (shared if worth else 0, shared == len(toks), -self.last_used[s])

            slot = max(free, key=choice)
        k, toks = b.cached(slot)
        keep = min(common_prefix(toks, run.history) if k == key and not run.job.fresh else 0, len(run.history) - 1)
        if run.job.pin:  # a fresh job keeps its pinned prefix only as evaluated apart, else all of it is fed
            pinned = (key, tuple(run.history[:run.job.pin]))
            keep = run.job.pin if self.apart.get(slot) == pinned and toks[:run.job.pin] == run.history[:run.job.pin] else 0
            self.apart[slot] = pinned
        else:
            self.apart.pop(slot, None)
        # the slot keeps only what it shares with this request: the rest of its cells are free to count
        if 0 < keep < len(toks):
            keep = b.rewind(slot, keep)
        elif keep == 0 and toks:
            b.reset(slot)
        # never more than the context: prompt + max_tokens fit it, and history = prompt + what it made
        need = len(run.history) - keep + min(self.quantum, max(1, run.job.params.max_tokens - run.n))
        # the prompts still being fed take cells in the next rounds: a start that fits only beside their
        # first chunks would pause one of them later and throw its cells away (6 prompts of 530 tokens in
        # 1,024 cells: 13-17 sequence resets for 6 requests)
        feeding = sum(len(r.feed) for r in self.runs if r.prefilling)
        if not self._make_room(need + feeding, protect={slot}):
            if not self.runs:  # nothing running will ever free cells: fail rather than spin
                run.fail(Busy(f"the KV cache ({b.n_ctx} cells) cannot hold this request now; retry",
                              code="kv_cache_full"))
                return True
            self._park(run)
            return False
        self.last_used[slot] = time.monotonic()
        if run.slot is not None and run.slot != slot and run.slot not in held:
            b.reset(run.slot)
        run.slot = slot
        try:
            run.start()
        except Exception as e:  # noqa: BLE001 - reported to the request
            run.fail(e)
        if not run.done:
            self.runs.append(run)
        return True

    def _park(self, run) -> None:
        if run.started:
            self.paused.append(run)
        else:
            self.waiting.insert(0, (run.arrival, run.job))

    # ---- room: KV cells in use, and freeing them when a step or a start needs more -----------------

    def _cells(self) -> int:
        if self.b.capabilities.prefix_share:
            return self.b.used_cells()
        return sum(len(self.b.cached(s)[1]) for s in range(self.b.n_seq))

    def _make_room(self, need: int, protect: set[int], running_too: bool = False) -> bool:
        """Free KV cells until `need` more fit: idle caches (least recently used first), then paused
        requests' caches (most cells first), then, with `running_too`, the running request holding
        the most cells (it is paused and recomputes when it resumes)."""
        b, cap = self.b, self.b.n_ctx
        if self._cells() + need <= cap:
            return True
        owners = {r.slot for r in self.runs} | {r.slot for r in self.paused}
        idle = sorted((s for s in range(b.n_seq) if s not in owners and s not in protect and b.cached(s)[1]),
                      key=lambda s: self.last_used[s])
        parked = sorted((r for r in self.paused if r.slot is not None and r.slot not in protect),
                        key=lambda r: -len(b.cached(r.slot)[1]))
        for s in idle:
            b.reset(s)
            if self._cells() + need <= cap:
                return True
        for r in parked:
            b.reset(r.slot)
            r.slot = None
            if self._cells() + need <= cap:
                return True
        while running_too:
            victims = [r for r in self.runs if r.slot not in protect]
            if not victims:
                return False
            victim = max(victims, key=lambda r: len(b.cached(r.slot)[1]))
            self.runs.remove(victim)
            b.reset(victim.slot)
            victim.slot = None
            self.paused.append(victim)
            if self._cells() + need <= cap:
                return True
        return False



def key_of(job) -> tuple:
    return adapter_key(job.adapter_set)
