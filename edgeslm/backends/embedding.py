"""A model in llama.cpp's embedding mode, in a context of its own (never a chat worker's).

Owns that context and its lock: one input is encoded at a time, on the process's one compute thread
(backends/compute.py), pooled as the GGUF says (mean for a decoder whose GGUF names no pooling), and
normalized to unit length as OpenAI's embeddings are. Text is tokenized as text: a field never
becomes a control token (as in chat, decoding/prompt.py).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

from edgeslm.backends.compute import COMPUTE
from edgeslm.errors import InvalidRequest


class Embedder:
    def __init__(self, name: str, path: Path, n_threads: int, n_ctx: int | None = None):
        import llama_cpp

        from edgeslm.store.gguf_io import read_metadata

        meta = read_metadata(path)
        arch = meta.get("general.architecture", "")
        trained = int(meta.get(f"{arch}.context_length", 512))
        self.n_ctx = min(trained, n_ctx or trained, 8192)
        pooling = (llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED if f"{arch}.pooling_type" in meta
                   else llama_cpp.LLAMA_POOLING_TYPE_MEAN)
        self.name, self._lock = name, threading.Lock()
        self.llm = COMPUTE.run(lambda: llama_cpp.Llama(
            str(path), embedding=True, n_ctx=self.n_ctx, n_batch=self.n_ctx, n_ubatch=self.n_ctx,
            n_threads=n_threads, pooling_type=pooling, verbose=False))
        self.n_vocab, self.dims = self.llm.n_vocab(), self.llm.n_embd()

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)

    def check(self, tokens: list[int], param: str) -> None:
        if not tokens:
            raise InvalidRequest(f"{param} is empty; send text or at least one token", param=param, code="empty_input")
        if len(tokens) > self.n_ctx:
            raise InvalidRequest(f"{param} is {len(tokens)} tokens; '{self.name}' embeds at most {self.n_ctx}",
                                 param=param, code="context_length_exceeded")
        bad = next((t for t in tokens if not 0 <= t < self.n_vocab), None)
        if bad is not None:
            raise InvalidRequest(f"{param} holds token {bad}, outside the vocabulary of '{self.name}' "
                                 f"(0..{self.n_vocab - 1})", param=param, code="invalid_token")

    def embed(self, inputs: list[list[int]]) -> list[list[float]]:
        """Unit-length vectors of checked token lists."""
        with self._lock:
            return [COMPUTE.run(self._one, tokens) for tokens in inputs]

    def _one(self, tokens: list[int]) -> list[float]:
        import llama_cpp

        llm = self.llm  # llama-cpp-python's batch and context (pinned version), as its own Llama.embed uses them
        llm._batch.reset()
        llm._batch.add_sequence(tokens, 0, True)  # every token an output: pooling reads them all
        llm._ctx.kv_cache_clear()
        llm._ctx.decode(llm._batch)
        vec = llama_cpp.llama_get_embeddings_seq(llm._ctx.ctx, 0)[: self.dims]
        llm._batch.reset()
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]

    def close(self) -> None:
        COMPUTE.run(self.llm.close)
