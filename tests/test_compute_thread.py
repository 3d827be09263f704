"""Every llama.cpp decode of the process runs on one thread, whichever worker thread asks
(backends/llamacpp._COMPUTE). With two live threads that each ran an OpenMP team, libgomp throttled its
barriers and two resident models decoded at ~0.6x; the speed itself is `python -m benchmarks.two_models`
(a benchmark, not a timed test). Here: the calls are recorded on the real backends of the embedded model."""

from __future__ import annotations

import threading

import llama_cpp

from edgeslm.backends import open_backend
from edgeslm.config import Settings
from edgeslm.store.registry import Catalog


def test_two_backends_used_from_two_threads_decode_on_one(home, monkeypatch):
    cat = Catalog(Settings(home=home))
    path = cat.ensure_local(cat.get("default"))
    real, seen = llama_cpp.llama_decode, set()

    def recorded(ctx, batch):
        seen.add(threading.get_ident())
        return real(ctx, batch)

    monkeypatch.setattr(llama_cpp, "llama_decode", recorded)
    backends = [open_backend(path, "gguf", n_ctx=256, n_threads=1) for _ in range(2)]
    callers = set()

    def use(b):
        callers.add(threading.get_ident())
        b.prefill(b.tokenize("The lighthouse keeper", add_bos=True), 0)
        b.decode([1000], 0)
        assert b.logits(0).shape[-1] == b.n_vocab

    try:
        threads = [threading.Thread(target=use, args=(b,)) for b in backends]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        use(backends[0])  # and the main thread
    finally:
        for b in backends:
            b.close()
    assert len(callers) == 3 and len(seen) == 1, (callers, seen)
