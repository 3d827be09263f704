"""The llama.cpp backend (llama-cpp-python): GGUF models, a single resident sequence, and raw
access to logits so the engine can mask them in place before llama.cpp's sampler chain runs.

Owns: loading, tokenization, the KV cache (with longest-prefix reuse), sampler chains.
"""

from __future__ import annotations

import ctypes
import random
from pathlib import Path

import llama_cpp
import numpy as np

from edgeslm.backends.base import Capabilities
from edgeslm.errors import BackendError, GrammarError


def build_features() -> str:
    info = llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip(" |")
    gpu = "GPU offload" if llama_cpp.llama_supports_gpu_offload() else "no GPU offload"
    return f"llama.cpp (llama-cpp-python {llama_cpp.__version__}), {gpu}; {info}"


def check_lora(base: Path, lora: Path) -> None:
    """Load `lora` onto `base` the way serving will (llama_adapter_lora_init); BackendError if refused."""
    from llama_cpp._utils import suppress_stdout_stderr

    params = llama_cpp.llama_model_default_params()
    with suppress_stdout_stderr(disable=False):  # llama.cpp logs every tensor it loads
        model = llama_cpp.llama_model_load_from_file(str(base).encode(), params)
    if not model:
        raise BackendError(f"llama.cpp could not load the base {base}")
    try:
        with suppress_stdout_stderr(disable=False):
            handle = llama_cpp.llama_adapter_lora_init(model, str(lora).encode())
        if not handle:
            raise BackendError(f"llama.cpp refused the converted LoRA {lora.name} on {base.name}")
        llama_cpp.llama_adapter_lora_free(handle)
    finally:
        llama_cpp.llama_model_free(model)


class LlamaCppBackend:
    capabilities = Capabilities(logits_access=True, prefix_cache=True, native_vocab=True, lora=True)

    def __init__(self, path: Path, *, n_ctx: int, n_threads: int, n_batch: int = 512):
        try:
            self.llm = llama_cpp.Llama(
                str(path),
                n_ctx=n_ctx,
                n_batch=n_batch,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                verbose=False,
            )
        except (ValueError, RuntimeError) as e:
            raise BackendError(f"llama.cpp could not load {path}: {e}") from e
        self.path = Path(path)
        self.n_ctx = self.llm.n_ctx()
        self.n_vocab = self.llm.n_vocab()
        self.n_batch = n_batch
        self.n_threads = n_threads
        self.metadata = dict(self.llm.metadata)
        self._ctx = self.llm.ctx
        self._vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        self._seq: list[int] = []  # tokens whose KV entries are in the cache, in order
        self._pieces: dict[int, bytes] = {}
        self._buf = ctypes.create_string_buffer(256)
        self.eog_tokens = frozenset(t for t in range(self.n_vocab) if llama_cpp.llama_vocab_is_eog(self._vocab, t))
        bos = llama_cpp.llama_vocab_bos(self._vocab)
        self.bos_text = self.llm.detokenize([bos], special=True).decode("utf-8", "replace") if bos >= 0 else ""
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        self._loras: dict[str, object] = {}  # adapter file -> llama.cpp handle, loaded on first use
        self._active: tuple = ()  # (path, scale) pairs applied now; the KV cache belongs to this set

    # ---- vocabulary ----------------------------------------------------------------------------

    def tokenize(self, text: str, *, add_bos: bool) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def piece(self, token: int) -> bytes:
        got = self._pieces.get(token)
        if got is None:
            n = llama_cpp.llama_token_to_piece(self._vocab, token, self._buf, len(self._buf), 0, False)
            got = self._pieces[token] = bytes(self._buf[: max(n, 0)])
        return got

    def native_vocab(self):
        return self._vocab

    # ---- evaluation ----------------------------------------------------------------------------

    def prefill(self, tokens: list[int]) -> int:
        keep = 0
        for a, b in zip(self._seq, tokens):
            if a != b:
                break
            keep += 1
        keep = min(keep, len(tokens) - 1)  # always evaluate at least one token to get fresh logits
        if keep <= 0 or not llama_cpp.llama_memory_seq_rm(self._mem, 0, keep, -1):
            llama_cpp.llama_memory_clear(self._mem, True)
            keep = 0
        self._seq = self._seq[:keep]
        self.decode(tokens[keep:])
        return keep

    def set_adapters(self, adapters: list[tuple[Path, float]]) -> None:
        """Apply exactly these LoRA adapters (loading each on first use). The prefix cache is keyed by
        the adapter set: switching sets drops it, so no request reuses KV computed under another."""
        key = tuple((str(p), float(s)) for p, s in adapters)
        if key == self._active:
            return
        handles = []
        for p, _ in key:
            if p not in self._loras:
                handle = llama_cpp.llama_adapter_lora_init(self.llm.model, p.encode())
                if not handle:
                    raise BackendError(f"llama.cpp could not load the LoRA {p} on {self.path.name} "
                                       "(wrong architecture or tensor shapes?)")
                self._loras[p] = handle
            handles.append(self._loras[p])
        arr = (llama_cpp.llama_adapter_lora_p_ctypes * len(handles))(*handles) if handles else None
        scales = (ctypes.c_float * len(handles))(*[s for _, s in key]) if handles else None
        llama_cpp.llama_set_adapters_lora(self._ctx, arr, len(handles), scales)
        self._active = key
        self.reset()

    def reset(self) -> None:
        # metadata only: freed cells are masked out of attention, so zeroing 36+ MiB of KV buys nothing
        # (and made an adapter switch cost ~3 ms instead of ~0.1)
        llama_cpp.llama_memory_clear(self._mem, False)
        self._seq = []

    def decode(self, tokens: list[int]) -> None:
        for i in range(0, len(tokens), self.n_batch):
            chunk = tokens[i : i + self.n_batch]
            arr = (llama_cpp.llama_token * len(chunk))(*chunk)
            rc = llama_cpp.llama_decode(self._ctx, llama_cpp.llama_batch_get_one(arr, len(chunk)))
            if rc != 0:
                llama_cpp.llama_memory_clear(self._mem, True)
                self._seq = []
                raise BackendError(f"llama_decode failed with code {rc}")
            self._seq.extend(chunk)

    def logits(self) -> np.ndarray:
        ptr = llama_cpp.llama_get_logits_ith(self._ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    # ---- sampling ------------------------------------------------------------------------------

    def new_sampler(self, temperature: float, top_p: float, seed: int | None, grammar: str | None = None):
        """A llama.cpp sampler chain; with `grammar` (GBNF, root rule "root") it constrains too."""
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        if grammar is not None:
            g = llama_cpp.llama_sampler_init_grammar(self._vocab, grammar.encode(), b"root")
            if not g:
                llama_cpp.llama_sampler_free(chain)
                raise GrammarError("llama.cpp rejected the GBNF grammar built from this schema")
            llama_cpp.llama_sampler_chain_add(chain, g)
        if temperature <= 0:
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
        else:
            if top_p < 1.0:
                llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_top_p(top_p, 1))
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_temp(temperature))
            seed = random.getrandbits(32) if seed is None else seed & 0xFFFFFFFF
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_dist(seed))
        return chain

    def sample(self, sampler) -> int:
        return llama_cpp.llama_sampler_sample(sampler, self._ctx, -1)

    def free_sampler(self, sampler) -> None:
        llama_cpp.llama_sampler_free(sampler)

    def close(self) -> None:
        self.llm.close()  # frees the model, and with it its LoRA adapters
        self._loras = {}
