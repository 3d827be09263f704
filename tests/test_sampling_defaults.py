"""Sampling defaults per model and adapter (issue 23): top_k, min_p and a repeat penalty in the sampler
(the native kernel agrees with its numpy reference token for token), request fields for them, and the
defaults a request that leaves fields out gets: the adapter's manifest, then the catalog entry, then the
GGUF's general.sampling.* keys, then OpenAI's. `GET /v1/models` says what they are; the shipped
adapter's manifest carries them and lands in a store that holds an older copy.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import httpx
import numpy as np
import pytest

from edgeslm.config import Settings
from edgeslm.decoding import sampler
from edgeslm.decoding.sampler import Sampler, kernel_available, sample_reference
from edgeslm.store.adapters import SHIPPED, AdapterStore
from edgeslm.store.entries import ModelEntry
from edgeslm.types import SamplingParams
from edgeslm.wire import translate
from edgeslm.wire.protocol import ChatCompletionRequest

N = 262_144
BASE = "gemma-3-270m-q4_k_m"
MANIFEST = json.loads((SHIPPED / BASE / "tools" / "manifest.json").read_text())


def _logits(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(N) * 3).astype(np.float32)
    x[rng.integers(0, N, 40)] = x.max()  # ties at the top: the lower id ranks first
    return x


@pytest.mark.skipif(not kernel_available(), reason="the native kernel is not built (tests/test_kernels.py says why)")
@pytest.mark.parametrize("masked", [False, True])
def test_kernel_matches_reference_with_top_k_and_min_p(masked):
    rng = np.random.default_rng(1)
    for trial in range(6):
        logits = _logits(trial)
        mask = np.packbits(rng.random(N) < 0.02, bitorder="little").view(np.int32).copy() if masked else None
        for temperature, top_p, top_k, min_p in [(0.7, 1.0, 20, 0.0), (1.0, 0.9, 5, 0.0), (0.5, 1.0, 0, 0.1),
                                                 (1.2, 0.8, 40, 0.05), (2.0, 1.0, 3, 0.5), (1.0, 1.0, N, 0.0)]:
            seed = trial * 31 + top_k
            s = Sampler(temperature, top_p, seed, top_k=top_k, min_p=min_p)
            native = [s.sample(logits, mask) for _ in range(8)]
            state, ref = seed, []
            for _ in range(8):
                token, state = sample_reference(logits, mask, temperature, top_p, state, top_k, min_p)
                ref.append(token)
            assert native == ref, (trial, temperature, top_p, top_k, min_p)


@pytest.mark.parametrize("use_kernel", [True, False])
def test_top_k_and_min_p_cut_the_candidates(use_kernel):
    logits = np.zeros(1000, dtype=np.float32)
    logits[[10, 20, 30, 40]] = [5.0, 4.9, 4.8, 4.7]  # nearly tied: at temperature 2 all four are drawn
    draw = lambda **kw: {Sampler(2.0, 1.0, seed, use_kernel=use_kernel, **kw).sample(logits, None)  # noqa: E731
                         for seed in range(300)}
    assert draw(top_k=1) == {10}
    assert draw(top_k=3) == {10, 20, 30}
    assert draw(min_p=1.0) == {10}
    assert draw(min_p=0.9) == {10, 20, 30}  # p relative to the top: exp(-0.1 / 2) = 0.90 is kept, exp(-0.15) is not
    assert draw(min_p=0.1) == {10, 20, 30, 40}  # the flat tail (p = exp(-5 / 2) = 0.08 each) is cut
    assert draw() - {10, 20, 30, 40}  # ... and without a cut the tail is drawn too


def test_repetition_penalty_acts_on_the_recent_tokens_and_leaves_the_logits_as_they_were():
    logits = np.zeros(100, dtype=np.float32)
    logits[[5, 7, 9]] = [3.0, 2.5, -1.0]
    before = logits.copy()
    s = Sampler(0.0, 1.0, 0, repetition_penalty=1.5, recent=lambda n: [5, 5, 9])
    assert s.sample(logits, None) == 7  # 3.0 / 1.5 = 2.0 < 2.5
    assert np.array_equal(logits, before)  # the backend's buffer is put back
    assert Sampler(0.0, 1.0, 0, repetition_penalty=1.5, recent=lambda n: [7]).sample(logits, None) == 5
    frozen = before.copy()
    frozen.flags.writeable = False
    assert Sampler(0.0, 1.0, 0, repetition_penalty=1.5, recent=lambda n: [5]).sample(frozen, None) == 7


def test_defaults_come_from_request_adapter_catalog_gguf_then_openai():
    layers = [("adapter:tools", {"temperature": 0.0, "copy_bias": 2.0}),
              ("catalog", {"temperature": 0.5, "top_k": 64}),
              ("gguf", {"temperature": 0.9, "min_p": 0.05, "top_k": 7})]
    values, origin = sampler.effective({}, layers)
    assert values == {"temperature": 0.0, "top_p": 1.0, "top_k": 64, "min_p": 0.05, "repetition_penalty": 1.0,
                      "copy_bias": 2.0, "tool_bias": 0.0, "call_bias": 0.0, "more_bias": 0.0, "arg_bias": 0.0,
                      "close_bias": 0.0, "left_bias": 0.0}
    assert origin == {"temperature": "adapter:tools", "top_p": "openai", "top_k": "catalog", "min_p": "gguf",
                      "repetition_penalty": "openai", "copy_bias": "adapter:tools", "tool_bias": "openai",
                      "call_bias": "openai", "more_bias": "openai", "arg_bias": "openai",
                      "close_bias": "openai", "left_bias": "openai"}
    p = sampler.resolve(SamplingParams(max_tokens=8, temperature=0.3), layers)
    assert (p.temperature, p.top_k, p.min_p, p.top_p) == (0.3, 64, 0.05, 1.0)


def test_gguf_keys_are_llama_cpps(tmp_path):
    """The keys as llama.cpp's gguf-py writes them, read back by edgeslm's header reader; llama-cpp-python
    hands the same values over as strings. An invalid value is left out."""
    import gguf

    assert gguf.Keys.General.SAMPLING_TEMP == sampler.GGUF_KEYS["temperature"]
    assert gguf.Keys.General.SAMPLING_PENALTY_REPEAT == sampler.GGUF_KEYS["repetition_penalty"]
    w = gguf.GGUFWriter(tmp_path / "m.gguf", "llama")
    w.add_float32(gguf.Keys.General.SAMPLING_TEMP, 0.25)
    w.add_int32(gguf.Keys.General.SAMPLING_TOP_K, 12)
    w.add_float32(gguf.Keys.General.SAMPLING_MIN_P, 0.05)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()
    from edgeslm.store.gguf_io import read_metadata

    got = sampler.gguf_defaults(read_metadata(tmp_path / "m.gguf"))
    assert got == {"temperature": pytest.approx(0.25), "top_k": 12, "min_p": pytest.approx(0.05)}
    assert sampler.gguf_defaults({"general.sampling.temp": "0.6", "general.sampling.top_k": "20",
                                  "general.sampling.top_p": "7"}) == {"temperature": 0.6, "top_k": 20}


def test_catalog_sampling_is_checked():
    entry = dict(id="m", architecture="llama", source={"kind": "path", "path": "/m.gguf"})
    assert ModelEntry(**entry, sampling={"temperature": 0.6, "top_k": 20}).sampling == {"temperature": 0.6, "top_k": 20}
    for bad in ({"temperature": 3}, {"top_q": 0.5}, {"top_k": -1}):
        with pytest.raises(ValueError):
            ModelEntry(**entry, sampling=bad)


def test_a_request_that_leaves_sampling_out_leaves_it_to_the_defaults():
    settings = Settings()
    ask = {"messages": [{"role": "user", "content": "hi"}]}
    _, _, p = translate.to_internal(ChatCompletionRequest.model_validate(ask), settings)
    assert (p.temperature, p.top_p, p.top_k, p.min_p, p.repetition_penalty) == (None,) * 5
    _, _, p = translate.to_internal(ChatCompletionRequest.model_validate(
        {**ask, "temperature": 0.4, "top_k": -1, "min_p": 0.1, "repetition_penalty": 1.1}), settings)
    assert (p.temperature, p.top_k, p.min_p, p.repetition_penalty) == (0.4, 0, 0.1, 1.1)


def test_the_shipped_adapter_carries_its_defaults():
    assert set(MANIFEST["sampling"]) == set(sampler.FIELDS)
    assert sampler._checked(MANIFEST["sampling"], "shipped") == MANIFEST["sampling"]


def test_a_new_packaged_manifest_lands_over_an_older_copy(tmp_path):
    """The store held the packaged adapter from before its manifest had `sampling` (same GGUF): the new
    manifest lands (the landing compared only the GGUF's sha256)."""
    old = tmp_path / BASE / "tools"
    shutil.copytree(SHIPPED / BASE / "tools", old)
    stale = {k: v for k, v in MANIFEST.items() if k != "sampling"}
    (old / "manifest.json").write_text(json.dumps({**stale, "recipe_source": stale["source"], "source": "package"}))
    got = AdapterStore(tmp_path).get(BASE, "tools")
    assert got.manifest["sampling"] == MANIFEST["sampling"] and got.manifest["source"] == "package"
    assert got.manifest["package_manifest_sha256"] == hashlib.sha256(
        (SHIPPED / BASE / "tools" / "manifest.json").read_bytes()).hexdigest()
    mine = tmp_path / "mine"  # an adapter trained or imported here is never replaced
    shutil.copytree(old, mine / BASE / "tools")
    (mine / BASE / "tools" / "manifest.json").write_text(json.dumps({**stale, "source": "/my/peft"}))
    assert "sampling" not in AdapterStore(mine).get(BASE, "tools").manifest


# ---- through the real server -------------------------------------------------------------------

def test_models_lists_each_models_effective_defaults(server):
    data = {m["id"]: m for m in httpx.get(server + "/v1/models", timeout=60).json()["data"]}
    for name in (BASE, f"{BASE}@tools"):  # a request for the model runs under its default adapter
        assert data[name]["sampling"] == MANIFEST["sampling"]
        assert set(data[name]["sampling_from"].values()) == {"adapter:tools"}


def test_no_temperature_samples_at_the_adapters_defaults(client):
    """A request with no sampling fields decodes as one that sends the shipped adapter's values."""
    ask = dict(model="default", messages=[{"role": "user", "content": "Write one sentence about Ljubljana."}],
               max_tokens=24)
    explicit = {k: v for k, v in MANIFEST["sampling"].items() if k in ("temperature", "top_p")}
    extra = {k: v for k, v in MANIFEST["sampling"].items() if k not in explicit}
    client.chat.completions.create(seed=0, **ask)  # the same cached prefix for every run below
    for seed in range(3):
        left_out = client.chat.completions.create(seed=seed, **ask).choices[0].message.content
        sent = client.chat.completions.create(seed=seed, extra_body=extra, **explicit, **ask).choices[0].message.content
        assert left_out == sent, seed


def test_sampling_fields_are_checked(client):
    import openai

    for body, param in (({"top_k": -2}, "top_k"), ({"min_p": 1.5}, "min_p"), ({"repetition_penalty": 0}, "repetition_penalty")):
        with pytest.raises(openai.BadRequestError) as e:
            client.chat.completions.create(model="default", messages=[{"role": "user", "content": "hi"}],
                                           max_tokens=4, extra_body=body)
        assert e.value.body["param"] == param

