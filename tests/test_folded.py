"""The served copy: the default `tools` adapter folded into a copy of the embedded model's weights
(edgeslm/store/folded.py), and the engine and server sending the default adapter's requests to it.

- The copy keeps every tensor the adapter does not touch byte for byte, and stores the 126 adapted
  weights at Q8_0.
- Its next-token logits follow the base with the LoRA applied (what it replaces), not the bare base:
  on 12 prompts, the copy's top-1 agrees with base+LoRA on at least 11, and its logits are far closer
  to base+LoRA's than the bare base's are. A copy built without the adapter's product fails this.
- The engine runs a default request on the copy (no adapter applied at decode time, the adapter's
  manifest still read) without loading the base, `@none` on the base, and with folding off, everything
  on the base.
- Under a memory budget that holds the base or the copy but not both, a default request beside the
  resident base is served by the base with the adapter applied; once the base has left, by the copy.
"""

import time
from pathlib import Path

import numpy as np
import pytest

from edgeslm.backends import open_backend
from edgeslm.config import Settings
from edgeslm.engine import Engine
from edgeslm.store import folded
from edgeslm.store.adapters import AdapterStore
from edgeslm.store.gguf_io import read_header
from edgeslm.store.registry import Catalog
from edgeslm.types import Message, OutputSpec, SamplingParams
from tests.cores import THREADS

PROMPTS = ["What's the weather in Lisbon?", "Book a table for two at 8pm.", "Convert 10 euros to dollars.",
           "Send an e-mail to Ana about the meeting.", "What time is it in Tokyo?", "Tell me a joke.",
           "Find flights from Oslo to Rome on May 3.", "Remind me to call mum tomorrow.",
           "How many grams in a pound?", "Play some jazz.", "Translate 'hello' into French.", "Who wrote Dune?"]


@pytest.fixture(scope="module")
def parts(home, cache):
    settings = Settings(home=home, cache_dir=cache)
    cat = Catalog(settings)
    entry = cat.get("default")
    base = Path(cat.ensure_local(entry))
    adapter = AdapterStore(settings.adapters_dir).get(entry.id, entry.default_adapter, entry.sha256)
    return settings, entry, base, adapter


@pytest.fixture(scope="module")
def copy(parts):
    settings, entry, base, adapter = parts
    return folded.find(settings.cache, entry.sha256, adapter.gguf) or folded.build(
        base, adapter.gguf, folded.path_for(settings.cache, entry.sha256, adapter.gguf))


def _last_logits(path: Path, prompts: list[str], lora: Path | None = None) -> np.ndarray:
    b = open_backend(path, "gguf", n_ctx=256, n_threads=THREADS)
    try:
        if lora is not None:
            b.set_adapters([(lora, 1.0)])
        out = []
        for p in prompts:
            b.reset()
            b.prefill(b.tokenize(p, add_bos=True))
            out.append(np.array(b.logits(), dtype=np.float64))
        return np.stack(out)
    finally:
        b.close()


def test_copy_keeps_what_the_adapter_leaves_alone(parts, copy):
    _, _, base, adapter = parts
    _, base_t = read_header(base)
    _, copy_t = read_header(copy)
    _, lora_t = read_header(adapter.gguf)
    adapted = {t.name.rpartition(".")[0] for t in lora_t}
    assert [t.name for t in copy_t] == [t.name for t in base_t] or sorted(t.name for t in copy_t) == sorted(
        t.name for t in base_t)
    by_name = {t.name: t for t in base_t}
    raw_b, raw_c = base.read_bytes(), copy.read_bytes()
    assert len(adapted) == 126
    for t in copy_t:
        b = by_name[t.name]
        assert t.shape == b.shape, t.name
        if t.name in adapted:
            assert t.ggml_type == 8, t.name  # GGML_TYPE_Q8_0
        else:
            assert t.ggml_type == b.ggml_type, t.name
            n = min(t.nbytes, b.nbytes)
            assert raw_c[t.offset:t.offset + n] == raw_b[b.offset:b.offset + n], t.name


def test_copy_decodes_as_base_with_lora(parts, copy, tmp_path):
    _, _, base, adapter = parts
    lora = _last_logits(base, PROMPTS, adapter.gguf)
    bare = _last_logits(base, PROMPTS)
    mine = _last_logits(copy, PROMPTS)
    agree = int((mine.argmax(1) == lora.argmax(1)).sum())
    far, near = np.abs(bare - lora).mean(), np.abs(mine - lora).mean()
    print(f"top-1 agreement with base+LoRA {agree}/{len(PROMPTS)}; mean |logit diff| copy {near:.3f}, bare base {far:.3f}")
    assert agree >= len(PROMPTS) - 1
    assert near < far / 4


def test_engine_routes_the_default_adapter_to_the_copy(parts, copy):
    settings, entry, _, adapter = parts
    engine = Engine(settings)
    try:
        spec = OutputSpec(kind="text")
        w = engine.worker_for(None, None)
        assert w.folded is not None and w.folded.task == adapter.task and w.name == f"{entry.id}+{adapter.task}"
        assert [x.name for x in engine.loaded()] == [w.name]  # the base is not loaded for the default's requests
        job = w.prepare([Message("user", "Hi")], spec, SamplingParams(max_tokens=4), lambda ev: None)
        assert job.adapter_set == [] and [a.task for a in job.adapters] == [adapter.task]
        assert engine.worker_for(None, adapter.task) is w
        plain = engine.worker_for(None, "none")
        assert plain.folded is None and plain.name == entry.id
        g = w.run([Message("user", "Say hi.")], spec, SamplingParams(max_tokens=8, temperature=0.0))
        assert g.usage.completion_tokens > 0
        assert {x.name for x in engine.loaded()} == {entry.id, f"{entry.id}+{adapter.task}"}
    finally:
        engine.close()
    off = Engine(settings.model_copy(update={"fold": False}))
    try:
        w = off.worker_for(None, None)
        assert w.folded is None
        job = w.prepare([Message("user", "Hi")], OutputSpec(kind="text"), SamplingParams(max_tokens=4), lambda ev: None)
        assert [p for p, _, _ in job.adapter_set] == [adapter.gguf]
    finally:
        off.close()


def test_a_copy_that_did_not_fit_beside_its_model_is_served_once_the_model_left(parts, copy):
    settings, entry, _, adapter = parts
    sizes = {}
    engine = Engine(settings)
    try:
        for task in ("none", None):
            sizes[task] = engine.worker_for(None, task).plan.total
    finally:
        engine.close()
    budget = max(sizes.values()) + min(sizes.values()) // 2  # either alone, not both
    engine = Engine(settings.model_copy(update={"memory_budget": f"{budget // 2**20}MiB"}))
    try:
        plain = engine.worker_for(None, "none")
        assert plain.folded is None
        assert engine.worker_for(None, None) is plain  # did not fit beside it: the adapter applied instead
        job = plain.prepare([Message("user", "Hi")], OutputSpec(kind="text"), SamplingParams(max_tokens=4), lambda ev: None)
        assert [p for p, _, _ in job.adapter_set] == [adapter.gguf]
        plain.close()  # the base leaves (its thread frees it)
        deadline = time.monotonic() + 30
        while not plain.closed and time.monotonic() < deadline:
            time.sleep(0.05)
        w = engine.worker_for(None, None)
        assert w.folded is not None and w.name == f"{entry.id}+{adapter.task}"
    finally:
        engine.close()


def test_a_new_copy_replaces_the_copies_of_earlier_adapter_versions(tmp_path):
    """A retrained default adapter gets a new copy; the one of its earlier version leaves (a few hundred
    MiB each), copies of other bases stay."""
    old, other = tmp_path / "aaaa-1111.gguf", tmp_path / "bbbb-1111.gguf"
    new = tmp_path / "aaaa-2222.gguf"
    for p in (old, other, new):
        p.write_bytes(b"GGUF")
    folded._prune(new)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aaaa-2222.gguf", "bbbb-1111.gguf"]
