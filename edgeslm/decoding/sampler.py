"""Token choice: apply the grammar's bitmask and sample (greedy, temperature, top-k, min-p, top-p,
seed; a repeat penalty and the request lean of decoding/copying.py on the logits first) in one step,
with the native kernel (kernels/sample.c, built at install as edgeslm._kernels) when present and the
numpy reference below otherwise. Both draw
from the same splitmix64 stream, so a seed gives the same tokens either way.

Also owns a request's sampling defaults (`resolve`): each field the request leaves out comes from the
adapter's manifest, the catalog entry, the GGUF's `general.sampling.*` keys, then OpenAI's defaults.
Knows nothing about HTTP; reads manifests and catalog entries as the store hands them over.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import random
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from pydantic import ValidationError

from edgeslm.store.entries import SamplingDefaults
from edgeslm.types import SamplingParams

log = logging.getLogger("edgeslm.sampler")
_M64 = (1 << 64) - 1
PENALTY_WINDOW = 64  # the repeat penalty covers the response's last 64 tokens (llama.cpp's penalty_last_n)
FIELDS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "copy_bias", "tool_bias",
          "call_bias", "more_bias", "arg_bias", "close_bias", "left_bias")
# copy_bias, tool_bias, call_bias, more_bias, arg_bias, close_bias and left_bias are edgeslm's
# (decoding/copying.py): 0 leaves the logits as OpenAI's sampling has them
OPENAI = {"temperature": 1.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "repetition_penalty": 1.0,
          "copy_bias": 0.0, "tool_bias": 0.0, "call_bias": 0.0, "more_bias": 0.0, "arg_bias": 0.0, "close_bias": 0.0,
          "left_bias": 0.0}
# llama.cpp's convention (gguf-py constants Keys.General.SAMPLING_*)
GGUF_KEYS = {"temperature": "general.sampling.temp", "top_p": "general.sampling.top_p",
             "top_k": "general.sampling.top_k", "min_p": "general.sampling.min_p",
             "repetition_penalty": "general.sampling.penalty_repeat"}


def _load_kernel():
    try:
        from edgeslm import _kernels
    except ImportError:
        return None
    lib = ctypes.CDLL(_kernels.__file__)
    fn = getattr(lib, "edgeslm_sample_v2", None)
    if fn is None:  # a kernel built from an older kernels/sample.c: the numpy reference is right, if slower
        log.warning("edgeslm._kernels predates top_k/min_p; reinstall edgeslm to rebuild it")
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_double, ctypes.c_double,
                   ctypes.c_int, ctypes.c_double, ctypes.POINTER(ctypes.c_uint64)]
    return fn


_KERNEL = _load_kernel()


def kernel_available() -> bool:
    return _KERNEL is not None


def _splitmix64(state: int) -> tuple[int, int]:
    state = (state + 0x9E3779B97F4A7C15) & _M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return state, z ^ (z >> 31)


def allowed_mask(mask: np.ndarray | None, n: int) -> np.ndarray:
    if mask is None:
        return np.ones(n, dtype=bool)
    bits = np.unpackbits(mask.view(np.uint8), bitorder="little")
    return bits[:n].astype(bool)


def sample_reference(logits: np.ndarray, mask: np.ndarray | None, temperature: float, top_p: float,
                     state: int, top_k: int = 0, min_p: float = 0.0) -> tuple[int, int]:
    """(token, new rng state). The numpy definition the kernel must match exactly: the candidates are
    the allowed tokens with p > 0 (p = exp((logit - max) / temperature)), p >= min_p, and, with
    top_k > 0, among the top_k allowed tokens by logit (ties: the lower id first)."""
    ok = allowed_mask(mask, len(logits))
    masked = np.where(ok, logits, -np.inf)
    if not ok.any():
        return -1, state
    top = int(np.argmax(masked))
    if temperature <= 0:
        return top, state
    with np.errstate(under="ignore"):
        p = np.exp((masked.astype(np.float64) - float(logits[top])) / temperature)
    candidate = (p > 0) & (p >= min_p)
    if 0 < top_k < int(ok.sum()):
        allowed_ids = np.flatnonzero(ok)
        ranked = allowed_ids[np.lexsort((allowed_ids, -logits[allowed_ids]))]
        in_k = np.zeros(len(logits), dtype=bool)
        in_k[ranked[:top_k]] = True
        candidate &= in_k
    ids = np.flatnonzero(candidate)
    p = p[ids]
    total = np.cumsum(p)[-1]  # sequential, in token-id order, as the kernel sums
    state, z = _splitmix64(state)
    u = (z >> 11) * 2.0**-53
    if top_p >= 1.0:  # invert the CDF in token-id order
        k = int(np.searchsorted(np.cumsum(p), u * total, side="right"))
        return int(ids[min(k, len(ids) - 1)]), state
    order = np.lexsort((ids, -p))  # by p descending, then id
    ids, p = ids[order], p[order]
    cum = np.cumsum(p)
    keep = min(int(np.searchsorted(cum, top_p * total, side="left")) + 1, len(p))
    k = int(np.searchsorted(cum[:keep], u * cum[keep - 1], side="right"))
    return int(ids[min(k, keep - 1)]), state


def penalize(logits: np.ndarray, tokens: Iterable[int], penalty: float) -> np.ndarray:
    """The repeat penalty (CTRL's, as llama.cpp and vLLM apply it): each token in `tokens` has a
    positive logit divided by `penalty` and a negative one multiplied by it. Changes `logits` in place
    where it is writable (the caller puts the old values back) and returns the array it changed."""
    ids = np.fromiter(set(tokens), dtype=np.int64)
    if penalty == 1.0 or not len(ids):
        return logits
    if not logits.flags.writeable:
        logits = logits.copy()
    v = logits[ids]
    logits[ids] = np.where(v > 0, v / penalty, v * penalty)
    return logits


class Sampler:
    """One request's sampling state (its seeded random stream) and settings. `recent(n)`: the last
    (at most n) tokens of the response so far, which the repeat penalty covers."""

    def __init__(self, temperature: float | None, top_p: float | None, seed: int | None, use_kernel: bool = True,
                 top_k: int | None = None, min_p: float | None = None, repetition_penalty: float | None = None,
                 recent: Callable[[int], list[int]] | None = None):
        # None: OpenAI's default (a request's own defaults are resolved before: `resolve`)
        self.temperature = OPENAI["temperature"] if temperature is None else temperature
        self.top_p = OPENAI["top_p"] if top_p is None else top_p
        self.top_k, self.min_p = max(top_k or 0, 0), min_p or 0.0
        self.penalty = OPENAI["repetition_penalty"] if repetition_penalty is None else repetition_penalty
        self.recent = recent
        self.state = (random.getrandbits(64) if seed is None else seed) & _M64
        self.kernel = _KERNEL if use_kernel else None
        self._state = ctypes.c_uint64(self.state)

    def sample(self, logits: np.ndarray, mask: np.ndarray | None,
               lift: tuple[np.ndarray, np.ndarray] | None = None) -> int:
        """A token from `logits` under `mask`, after the repeat penalty and `lift` (ids, amounts added to
        their logits: decoding/copying.py); the backend's buffer is changed in place and put back."""
        ids = list(set(self.recent(PENALTY_WINDOW))) if self.penalty != 1.0 and self.recent is not None else []
        if not ids and lift is None:
            return self._sample(logits, mask)
        up, by = lift if lift is not None else (np.empty(0, dtype=np.int64), np.empty(0))
        touched = np.unique(np.concatenate([np.asarray(ids, dtype=np.int64), up]))
        kept = logits[touched].copy()
        changed = penalize(logits, ids, self.penalty)
        if len(up):
            if not changed.flags.writeable:
                changed = changed.copy()
            changed[up] += by.astype(changed.dtype)
        try:
            return self._sample(changed, mask)
        finally:
            if changed is logits:
                logits[touched] = kept

    def _sample(self, logits: np.ndarray, mask: np.ndarray | None) -> int:
        if mask is None and self.temperature <= 0:
            # numpy's argmax is vectorized and beats the portable kernel's scalar loop (0.18 vs 0.22 ms
            # on 262k logits); both take the lowest id on ties, and greedy draws no random number
            return int(np.argmax(logits))
        if self.kernel is not None:
            self._state.value = self.state
            token = self.kernel(logits.ctypes.data, len(logits), None if mask is None else mask.ctypes.data,
                                self.temperature, self.top_p, self.top_k, self.min_p, ctypes.byref(self._state))
            self.state = self._state.value
            return token
        token, self.state = sample_reference(logits, mask, self.temperature, self.top_p, self.state,
                                             self.top_k, self.min_p)
        return token


# ---- defaults ------------------------------------------------------------------------------------



def _checked(values: dict[str, Any], where: str) -> dict[str, Any]:
    """The fields of a defaults object that hold valid values; a bad one is logged and left out."""
    out = {}
    for k in FIELDS:
        if values.get(k) is None:
            continue
        try:
            out[k] = getattr(SamplingDefaults.model_validate({k: values[k]}), k)
        except ValidationError as e:
            log.warning("%s: ignoring sampling default %s=%r (%s)", where, k, values[k], e.errors()[0]["msg"])
    return out


def gguf_defaults(metadata: dict[str, Any]) -> dict[str, Any]:
    """The sampling defaults a GGUF carries (llama.cpp's general.sampling.* keys; llama-cpp-python
    hands metadata values over as strings)."""
    raw = {k: metadata.get(key) for k, key in GGUF_KEYS.items() if metadata.get(key) not in (None, "")}
    return _checked(raw, "GGUF general.sampling")


def layers(adapters: Iterable[Any], entry: Any, metadata: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Where a request's defaults come from, first match first: each adapter's manifest `sampling`,
    the catalog entry's `sampling`, the GGUF's keys (OpenAI's defaults come last, in `effective`)."""
    out = []
    for a in adapters:
        given = a.manifest.get("sampling")
        if isinstance(given, dict):
            out.append((f"adapter:{a.task}", _checked(given, f"adapter {a.base}@{a.task}")))
    out.append(("catalog", dict(getattr(entry, "sampling", None) or {})))
    out.append(("gguf", gguf_defaults(metadata)))
    return out


def effective(given: dict[str, Any], sources: list[tuple[str, dict[str, Any]]]) -> tuple[dict[str, Any], dict[str, str]]:
    """Each field's value and where it came from: `given` (the request), then `sources`, then OpenAI."""
    values, origin = {}, {}
    for k in FIELDS:
        for name, layer in [("request", given), *sources, ("openai", OPENAI)]:
            if layer.get(k) is not None:
                values[k], origin[k] = layer[k], name
                break
    return values, origin


def resolve(params: SamplingParams, sources: list[tuple[str, dict[str, Any]]]) -> SamplingParams:
    """`params` with every field the request left out (None) filled from `sources` (see `layers`)."""
    values, _ = effective({k: getattr(params, k) for k in FIELDS}, sources)
    return dataclasses.replace(params, **values)


def for_job(job: Any, entry: Any, metadata: dict[str, Any], recent: Callable[[int], list[int]]) -> Sampler:
    """A prepared request's sampler: the fields the request left out filled in `job.params` (from its
    adapters' manifests, the catalog `entry`, the GGUF `metadata`, then OpenAI's), and given to llama.cpp's
    own sampler chain too where the GBNF engine samples (`job.constraint.samples`)."""
    p = job.params = resolve(job.params, layers(job.adapters, entry, metadata))
    if getattr(job.constraint, "samples", False):
        job.constraint.params = (p.temperature, p.top_p, p.seed)
    return Sampler(p.temperature, p.top_p, p.seed, top_k=p.top_k, min_p=p.min_p,
                   repetition_penalty=p.repetition_penalty, recent=recent)
