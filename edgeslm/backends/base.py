"""The backend protocol: what the engine may ask of any inference library.

A backend owns one loaded model and `n_seq` sequences of evaluated tokens (the engine's slots),
each with its share of the KV cache. It knows nothing about chat, tools or grammars: the engine
drives the decode loop through these calls.
Optional abilities are announced as capability flags, never discovered by isinstance checks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

AdapterKey = tuple[tuple[str, str, float], ...]


def file_identity(path: Path | str) -> str:
    """Which file is at `path` now: device, inode, size and modification time. A file replaced at the
    same path (the store writes a new file and renames it over the old one) gets another identity."""
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def adapter_key(adapters) -> AdapterKey:
    """The hashable identity of an adapter set: (path, file identity, scale). LoRA handles and slot
    caches are keyed by it, so weights replaced at the same path are never served from the old ones.
    Items are (path, scale), identified now, or (path, identity, scale) identified earlier."""
    return tuple((str(a[0]), file_identity(a[0]), float(a[1])) if len(a) == 2 else (str(a[0]), a[1], float(a[2]))
                 for a in adapters)


@dataclass(frozen=True)
class SpecialToken:
    """A token the tokenizer matches as a whole in text before anything else (llama.cpp's special-token
    cache; Hugging Face's added tokens)."""

    id: int
    kind: str  # "control" (or "unknown"): structure only; "user": user-defined, also made from plain text
    lstrip: bool = False  # the tokenizer drops the whitespace before it
    rstrip: bool = False  # ... and after it


@dataclass(frozen=True)
class Capabilities:
    logits_access: bool = False  # logits() returns a writable view the sampler reads (masks apply in place)
    prefix_cache: bool = False  # prefill() reuses the longest common prefix of the previous sequence
    native_vocab: bool = False  # native_vocab() returns a llama.cpp vocab handle (for llguidance)
    lora: bool = False  # set_adapters(): LoRA adapters switched per request
    prefix_share: bool = False  # share(src, dst, n) and used_cells(): sequences share a prefix's KV cells
    prefix_persist: bool = False  # state(seq), restore(...), identity(): KV states saved to disk and loaded back


class Backend(Protocol):
    capabilities: Capabilities
    path: Path
    n_ctx: int
    n_vocab: int
    n_threads: int
    n_seq: int
    metadata: dict[str, Any]
    eog_tokens: frozenset[int]
    bos_text: str
    add_bos: bool

    def tokenize(self, text: str, *, add_bos: bool, special: bool = False) -> list[int]:
        """`text` as tokens; with `special`, texts of special tokens become those tokens (only ever for
        our own markup: decoding/prompt.py keeps a request's fields from doing so)."""

    def special_tokens(self) -> dict[str, SpecialToken]:
        """Every text the tokenizer matches as one special token, by its text."""

    def piece(self, token: int) -> bytes: ...

    def prefill(self, tokens: list[int], seq: int = 0) -> int:
        """Evaluate `tokens` as the whole of sequence `seq`; returns how many were reused from cache."""

    def reset(self, seq: int | None = None) -> None:
        """Forget sequence `seq` (all of them when None)."""

    def rewind(self, seq: int, n: int) -> int:
        """Keep the first `n` tokens of sequence `seq`, evaluating nothing; returns how many were kept
        (fewer, down to 0, where the cache cannot cut there)."""

    def decode(self, tokens: list[int], seq: int = 0) -> None:
        """Append tokens to sequence `seq` and evaluate them."""

    def decode_many(self, steps: dict[int, list[int]]) -> None:
        """Append tokens to several sequences and evaluate them in one batch."""

    def logits(self, seq: int = 0) -> np.ndarray:
        """Next-token logits of sequence `seq` after its last evaluation."""

    def new_sampler(self, temperature: float, top_p: float, seed: int | None, grammar: str | None = None) -> Any:
        """The library's own sampler chain (used by the GBNF engine); `grammar` is GBNF text."""

    def sample(self, sampler: Any, seq: int = 0) -> int: ...

    def free_sampler(self, sampler: Any) -> None: ...

    def native_vocab(self) -> Any:
        """The llama.cpp vocabulary handle llguidance reads (capabilities.native_vocab)."""

    def hf_tokenizer(self) -> Any:
        """A Hugging Face tokenizer of this model, for llguidance where there is no native vocabulary."""

    def cached(self, seq: int) -> tuple[AdapterKey, list[int]]:
        """What sequence `seq` holds: the adapter set it was computed under, and its tokens."""

    def set_adapters(self, adapters: list) -> None:
        """Apply exactly these LoRA adapters ((path, scale) or (path, identity, scale)) to what is
        evaluated next (capabilities.lora; others accept only an empty list)."""

    def score(self, tokens: list[int], seq: int = 0) -> np.ndarray:
        """Logits at every position of `tokens`, as a fresh sequence `seq`: (len(tokens), n_vocab)."""

    def share(self, src: int, dst: int, n: int) -> None:
        """Make the first `n` tokens of `src` those of `dst` in the same KV cells (capabilities.prefix_share)."""

    def used_cells(self) -> int:
        """KV cells in use, shared prefixes once (capabilities.prefix_share)."""

    def state(self, seq: int) -> bytes:
        """Sequence `seq`'s KV state, serialized (capabilities.prefix_persist)."""

    def restore(self, seq: int, data: bytes, tokens: list[int], key: AdapterKey) -> bool:
        """Load a state() into `seq`, keeping its first len(`tokens`) tokens; False when refused."""

    def identity(self) -> dict:
        """Everything besides adapters and tokens a saved state depends on (capabilities.prefix_persist)."""

    def close(self) -> None: ...
