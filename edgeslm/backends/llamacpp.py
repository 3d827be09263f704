"""The llama.cpp backend (llama-cpp-python): GGUF models, several sequences in one context (one
per engine slot) sharing a unified KV cache, and raw access to logits so the engine can mask them in
place before sampling.

Owns: loading, tokenization, the KV cache (per-sequence longest-prefix reuse, keyed by the adapter
set each sequence was computed under), batched evaluation of several sequences, sampler chains.
"""

from __future__ import annotations

import ctypes
import random
from pathlib import Path

import llama_cpp
import numpy as np
from llama_cpp._internals import LlamaModel
from llama_cpp._logger import set_verbose
from llama_cpp._utils import suppress_stdout_stderr

from edgeslm.backends.base import (
    AdapterKey,
    Capabilities,
    SpecialToken,
    adapter_key,
    file_identity,
)
from edgeslm.backends.compute import COMPUTE
from edgeslm.backends.kvbook import KVBook
from edgeslm.errors import BackendError, GrammarError
from edgeslm.types import common_prefix


def _decode(ctx, batch) -> int:
    return COMPUTE.run(llama_cpp.llama_decode, ctx, batch)


def build_features() -> str:
    info = llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip(" |")
    gpu = "GPU offload" if llama_cpp.llama_supports_gpu_offload() else "no GPU offload"
    return f"llama.cpp (llama-cpp-python {llama_cpp.__version__}), {gpu}; {info}"


def check_lora(base: Path, lora: Path) -> None:
    """Load `lora` onto `base` the way serving will (llama_adapter_lora_init); BackendError if refused."""
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


KV_TYPES = {"f16": llama_cpp.GGML_TYPE_F16, "q8_0": llama_cpp.GGML_TYPE_Q8_0}


class LlamaCppBackend:
    """One GGUF model in one llama.cpp context: its sequences' caches, adapters, vocabulary and samplers."""

    capabilities = Capabilities(logits_access=True, prefix_cache=True, native_vocab=True, lora=True, prefix_share=True,
                                prefix_persist=True)

    def __init__(self, path: Path, *, n_ctx: int, n_threads: int, n_batch: int = 512, n_seq: int = 1,
                 n_gpu_layers: int = 0, flash_attn: bool = False, kv_type: str = "f16"):
        set_verbose(False)  # llama.cpp logs errors only (as llama_cpp.Llama(verbose=False) does)
        if not Path(path).is_file():
            raise BackendError(f"llama.cpp could not load {path}: no such file")
        try:
            mp = llama_cpp.llama_model_default_params()
            mp.n_gpu_layers = n_gpu_layers  # always set: llama.cpp's own default offloads every layer
            self.model = LlamaModel(path_model=str(path), params=mp, verbose=False)
        except (ValueError, RuntimeError) as e:
            raise BackendError(f"llama.cpp could not load {path}: {e}") from e
        p = llama_cpp.llama_context_default_params()
        p.n_ctx, p.n_batch, p.n_ubatch = n_ctx, n_batch, min(n_batch, 512)
        p.n_threads = p.n_threads_batch = n_threads
        # one KV cache of n_ctx cells shared by every sequence: one request may still use all of it
        p.n_seq_max, p.kv_unified = n_seq, True
        p.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn
                             else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        p.type_k = p.type_v = KV_TYPES[kv_type]
        with suppress_stdout_stderr(disable=False):
            self._ctx = llama_cpp.llama_init_from_model(self.model.model, p)
        if not self._ctx:
            self.model.close()
            raise BackendError(f"llama.cpp could not create a context of {n_ctx} tokens for {path}")
        self.path = Path(path)
        self.n_ctx = llama_cpp.llama_n_ctx(self._ctx)
        self.context_params = {"n_ctx": self.n_ctx, "kv_type": kv_type, "flash_attn": flash_attn, "swa_full": p.swa_full,
                               "rope_freq_base": p.rope_freq_base, "rope_freq_scale": p.rope_freq_scale}
        self.n_vocab = self.model.n_vocab()
        self.n_batch, self.n_threads, self.n_seq = n_batch, n_threads, n_seq
        self.metadata = dict(self.model.metadata())
        self._vocab = self.model.vocab
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, n_seq)
        self.book = KVBook(n_seq)  # each sequence's tokens, adapter set and KV cells
        self._out: dict[int, int] = {}  # sequence -> its logits row in the last batch
        self._pieces: dict[int, bytes] = {}
        self._specials: dict[str, SpecialToken] | None = None
        self._buf = ctypes.create_string_buffer(256)
        self.eog_tokens = frozenset(t for t in range(self.n_vocab) if llama_cpp.llama_vocab_is_eog(self._vocab, t))
        bos = llama_cpp.llama_vocab_bos(self._vocab)
        self.bos_text = self.model.detokenize([bos], special=True).decode("utf-8", "replace") if bos >= 0 else ""
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        self._loras: dict[tuple[str, str], object] = {}  # (file, identity) -> llama.cpp handle, loaded on first use
        self._active: AdapterKey = ()  # (path, identity, scale) applied now
        self.adapter_switches = 0

    def decode(self, tokens: list[int], seq: int = 0) -> None:
        """Append `tokens` to sequence `seq` and evaluate them."""
        self.decode_many({seq: tokens})

    def decode_many(self, steps: dict[int, list[int]]) -> None:
        """Append tokens to several sequences and evaluate them together (batched: one pass over the
        weights serves every sequence). Afterwards logits(seq) holds each sequence's next-token logits."""
        for s in steps:
            if self.book.tokens[s] and self.book.keys[s] != self._active:
                raise BackendError(f"sequence {s} was computed under other adapters")  # an engine bug
            self.book.keys[s] = self._active
        heads = [(s, len(self.book.tokens[s]) + i, t) for s, toks in steps.items() for i, t in enumerate(toks[:-1])]
        tails = [(s, len(self.book.tokens[s]) + len(toks) - 1, toks[-1]) for s, toks in steps.items() if toks]
        # only the last llama_decode's logits survive, so every tail goes in the last batch
        early = max(0, len(heads) + len(tails) - self.n_batch)
        entries = heads[:early]
        for i in range(0, early, self.n_batch):
            self._run(entries[i : i + self.n_batch], steps, logits=False)
        self._run(heads[early:] + tails, steps, logits=True)
        for s, toks in steps.items():
            self.book.grow(s, toks)

    def _run(self, entries: list[tuple[int, int, int]], steps: dict, logits: bool) -> None:
        b = self._batch
        b.n_tokens = len(entries)
        n_heads = len(entries) - (len([1 for s in steps if steps[s]]) if logits else 0)
        for i, (s, pos, t) in enumerate(entries):
            b.token[i], b.pos[i], b.n_seq_id[i] = t, pos, 1
            b.seq_id[i][0] = s
            b.logits[i] = logits and i >= n_heads
            if logits and i >= n_heads:
                self._out[s] = i
        rc = _decode(self._ctx, b)
        if rc != 0:
            for s in steps:
                self.reset(s)
            raise BackendError(f"llama_decode failed with code {rc}"
                               + (" (the KV cache is full)" if rc == 1 else ""))

    def score(self, tokens: list[int], seq: int = 0) -> np.ndarray:
        """Logits at every position of `tokens`, evaluated as a fresh sequence `seq` under the active
        adapters: (len(tokens), n_vocab), for measuring what a conversion changed."""
        self.reset(seq)
        self.book.keys[seq] = self._active
        rows, b = [], self._batch
        for i in range(0, len(tokens), self.n_batch):
            chunk = tokens[i : i + self.n_batch]
            b.n_tokens = len(chunk)
            for j, t in enumerate(chunk):
                b.token[j], b.pos[j], b.n_seq_id[j], b.logits[j] = t, i + j, 1, True
                b.seq_id[j][0] = seq
            if _decode(self._ctx, b) != 0:
                self.reset(seq)
                raise BackendError("llama_decode failed while scoring")
            for j in range(len(chunk)):
                ptr = llama_cpp.llama_get_logits_ith(self._ctx, j)
                rows.append(np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy())
            self.book.grow(seq, chunk)
        self._out.pop(seq, None)
        return np.stack(rows)

    def logits(self, seq: int = 0) -> np.ndarray:
        """Sequence `seq`'s next-token logits; valid until the next prefill/decode of any sequence."""
        ptr = llama_cpp.llama_get_logits_ith(self._ctx, self._out.get(seq, -1))
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def close(self) -> None:
        if self._ctx:
            llama_cpp.llama_batch_free(self._batch)
            llama_cpp.llama_free(self._ctx)
            self._ctx = None
        self.model.close()  # frees the model, and with it its LoRA adapters
        self._loras = {}

    # ---- LoRA handles, keyed by file identity: loaded on first use, applied per batch, freed once stale ----

    def set_adapters(self, adapters: list[tuple[Path, float]]) -> None:
        """Apply exactly these LoRA adapters to what is evaluated next (loading each on first use).
        Every sequence remembers the set it was computed under, and its cache is reused only under
        that same set, so no request ever extends KV computed under another adapter."""
        key = adapter_key(adapters)
        if key == self._active:
            return
        handles: list = []
        for p, ident, _ in key:
            if (p, ident) not in self._loras:
                with suppress_stdout_stderr(disable=False):  # it warns once per tensor it cannot repack
                    handle = llama_cpp.llama_adapter_lora_init(self.model.model, p.encode())
                if not handle:
                    raise BackendError(f"llama.cpp could not load the LoRA {p} on {self.path.name} "
                                       "(wrong architecture or tensor shapes?)")
                if file_identity(p) != ident:  # replaced since the request looked it up: not its weights
                    llama_cpp.llama_adapter_lora_free(handle)
                    raise BackendError(f"the LoRA {p} was replaced while this request waited; retry",
                                       code="adapter_replaced")
                self._loras[(p, ident)] = handle
            handles.append(self._loras[(p, ident)])
        arr = (llama_cpp.llama_adapter_lora_p_ctypes * len(handles))(*handles) if handles else None
        scales = (ctypes.c_float * len(handles))(*[s for _, _, s in key]) if handles else None
        llama_cpp.llama_set_adapters_lora(self._ctx, arr, len(handles), scales)
        self._active = key
        self.adapter_switches += 1
        self._free_stale()

    def _free_stale(self) -> None:
        """Free the handles of files replaced at their path that no sequence's cache and not the active
        set refer to any more (a replaced adapter costs memory only while something still uses it)."""
        used = {(p, i) for k in (*self.book.keys, self._active) for p, i, _ in k}
        newest = {p: i for p, i, _ in self._active}
        for p, i in list(self._loras):
            if (p, i) not in used and p in newest and newest[p] != i:
                llama_cpp.llama_adapter_lora_free(self._loras.pop((p, i)))

    # ---- each sequence's cache: what it holds, prefixes shared, trimmed, saved, restored, reset ----

    def cached(self, seq: int) -> tuple[AdapterKey, list[int]]:
        """What sequence `seq` holds: the adapter set it was computed under and its tokens."""
        return self.book.keys[seq], self.book.tokens[seq]

    def used_cells(self) -> int:
        """KV cells in use, shared prefixes counted once."""
        return self.book.used()

    def share(self, src: int, dst: int, n: int) -> None:
        """Make the first `n` tokens of sequence `src` those of `dst` too, in the same KV cells (no
        evaluation: a prompt prefix many requests share is computed and stored once)."""
        n = min(n, len(self.book.tokens[src]))
        self.reset(dst)
        if n <= 0:
            return
        llama_cpp.llama_memory_seq_cp(self._mem, src, dst, 0, n)
        self.book.share(src, dst, n)

    def prefill(self, tokens: list[int], seq: int = 0) -> int:
        """Make `tokens` the whole of sequence `seq` under the active adapters; returns how many
        were reused from its cache."""
        keep = common_prefix(self.book.tokens[seq], tokens) if self.book.keys[seq] == self._active else 0
        keep = min(keep, len(tokens) - 1)  # always evaluate at least one token to get fresh logits
        if keep <= 0 or not llama_cpp.llama_memory_seq_rm(self._mem, seq, keep, -1):
            self.reset(seq)
            keep = 0
        self.book.trim(seq, keep)
        self.book.keys[seq] = self._active
        self.decode(tokens[keep:], seq)
        return keep

    def rewind(self, seq: int, n: int) -> int:
        n = min(n, len(self.book.tokens[seq]))
        if n <= 0 or not llama_cpp.llama_memory_seq_rm(self._mem, seq, n, -1):
            self.reset(seq)
            return 0
        self.book.trim(seq, n)
        return n

    def state(self, seq: int) -> bytes:
        """Sequence `seq`'s KV state as llama.cpp serializes it (for the prefix cache on disk)."""
        n = llama_cpp.llama_state_seq_get_size(self._ctx, seq)
        buf = (ctypes.c_uint8 * n)()
        got = llama_cpp.llama_state_seq_get_data(self._ctx, buf, n, seq)
        return bytes(buf)[:got] if got else b""

    def restore(self, seq: int, data: bytes, tokens: list[int], key: AdapterKey) -> bool:
        """Load a state saved by state() into sequence `seq` and keep its first len(`tokens`) tokens,
        which are `tokens` (computed under `key`); False, with the sequence empty, when llama.cpp
        refuses it or the cache has no room for it."""
        self.reset(seq)
        src = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if llama_cpp.llama_state_seq_set_data(self._ctx, src, len(data), seq) != len(data):
            self.reset(seq)
            return False
        if not llama_cpp.llama_memory_seq_rm(self._mem, seq, len(tokens), -1):
            self.reset(seq)
            return False
        self.book.grow(seq, tokens)
        self.book.keys[seq] = key
        return True

    def identity(self) -> dict:
        """What a saved state depends on besides the adapters and tokens: versions, build, model file,
        context parameters. A state made under any other value is never loaded."""
        from edgeslm import __version__

        return {"edgeslm": __version__, "llama_cpp": llama_cpp.__version__, "build": build_features(),
                "model": f"{self.path.resolve()}|{file_identity(self.path)}", **self.context_params}

    def reset(self, seq: int | None = None) -> None:
        """Forget sequence `seq` (every sequence when None)."""
        # metadata only: freed cells are masked out of attention, so zeroing the KV buys nothing
        # (and made an adapter switch cost ~3 ms instead of ~0.1)
        if seq is None:
            llama_cpp.llama_memory_clear(self._mem, False)
            self.book.clear()
        else:
            llama_cpp.llama_memory_seq_rm(self._mem, seq, -1, -1)
            self.book.trim(seq, 0)

    # ---- tokens and their bytes, and the vocabulary handle llguidance reads ----------------------

    def tokenize(self, text: str, *, add_bos: bool, special: bool = False) -> list[int]:
        return self.model.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)

    def special_tokens(self) -> dict[str, SpecialToken]:
        """What llama.cpp's tokenizer matches before anything else (its cache_special_tokens): control,
        user-defined and unknown tokens, by their raw text (~0.1 s over 262k tokens, kept)."""
        if self._specials is None:
            A, out = llama_cpp, dict[str, SpecialToken]()
            for t in range(self.n_vocab):
                attr = A.llama_vocab_get_attr(self._vocab, t)
                if not attr & (A.LLAMA_TOKEN_ATTR_CONTROL | A.LLAMA_TOKEN_ATTR_USER_DEFINED | A.LLAMA_TOKEN_ATTR_UNKNOWN):
                    continue
                text = (A.llama_vocab_get_text(self._vocab, t) or b"").decode("utf-8", "replace")
                kind = "user" if attr & A.LLAMA_TOKEN_ATTR_USER_DEFINED and not attr & A.LLAMA_TOKEN_ATTR_CONTROL else (
                    "control" if attr & A.LLAMA_TOKEN_ATTR_CONTROL else "unknown")
                out.setdefault(text, SpecialToken(t, kind, bool(attr & A.LLAMA_TOKEN_ATTR_LSTRIP),
                                                  bool(attr & A.LLAMA_TOKEN_ATTR_RSTRIP)))
            self._specials = out
        return self._specials

    def piece(self, token: int) -> bytes:
        got = self._pieces.get(token)
        if got is None:
            n = llama_cpp.llama_token_to_piece(self._vocab, token, self._buf, len(self._buf), 0, False)
            got = self._pieces[token] = self._buf.raw[: max(n, 0)]
        return got

    def native_vocab(self):
        return self._vocab

    def hf_tokenizer(self):
        raise BackendError("the llama.cpp backend has no Hugging Face tokenizer; use native_vocab()",
                           code="no_hf_tokenizer")

    # ---- llama.cpp's own sampler chains (the GBNF engine's), beside edgeslm's sampler ------------

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

    def sample(self, sampler, seq: int = 0) -> int:
        return llama_cpp.llama_sampler_sample(sampler, self._ctx, self._out.get(seq, -1))

    def free_sampler(self, sampler) -> None:
        llama_cpp.llama_sampler_free(sampler)
