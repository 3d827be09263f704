"""The native sampling kernel against its numpy reference: exact token equality for greedy and for
seeded sampling, with and without a grammar mask.

A missing kernel fails these tests wherever a C compiler works (the ~25x slower numpy fallback must
not pass CI unnoticed); they skip only when no C compiler exists, or when EDGESLM_NO_KERNEL_OK=1 says
the fallback is expected."""

import importlib.machinery
import os
import shlex
import shutil
import sysconfig
import tempfile
from pathlib import Path

import numpy as np
import pytest

from edgeslm.decoding.sampler import Sampler, kernel_available, sample_reference

N = 262_144  # Gemma 3's vocabulary


def c_compiler_works() -> bool:
    """setup.py's test: the configured C compiler compiles a trivial file (then the kernel is required)."""
    try:
        import setuptools  # noqa: F401  (makes `distutils` setuptools' copy, also where the stdlib has none)
        from distutils.ccompiler import new_compiler
        from distutils.sysconfig import customize_compiler
        from setuptools.errors import BaseError, CCompilerError
    except ImportError:  # no setuptools in this environment: look for the executable instead
        cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or ("cl" if os.name == "nt" else "cc")
        return shutil.which(shlex.split(cc)[0]) is not None
    compiler = new_compiler()
    customize_compiler(compiler)
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "edgeslm_probe.c"
        probe.write_text("int edgeslm_probe(void) { return 0; }\n")
        try:
            compiler.compile([str(probe)], output_dir=tmp)
        except (CCompilerError, BaseError, OSError):
            return False
    return True


@pytest.fixture(autouse=True, scope="module")
def kernel_built():
    if kernel_available():
        return
    if os.environ.get("EDGESLM_NO_KERNEL_OK") == "1":
        pytest.skip("edgeslm._kernels was not built; EDGESLM_NO_KERNEL_OK=1 accepts the numpy fallback")
    if not c_compiler_works():
        pytest.skip("edgeslm._kernels was not built: no working C compiler on this machine")
    pytest.fail("edgeslm._kernels was not built although a C compiler works: sampling would silently use the "
                "~25x slower numpy fallback. Reinstall (pip install -e .) and read the build log; set "
                "EDGESLM_NO_KERNEL_OK=1 only where the fallback is intended.", pytrace=False)


def masks(rng):
    sparse = np.zeros(N, dtype=bool)
    sparse[rng.choice(N, 40, replace=False)] = True
    yield None
    yield np.packbits(sparse, bitorder="little").view(np.int32)
    yield rng.integers(-(2**31), 2**31, (N + 31) // 32, dtype=np.int64).astype(np.int32)
    single = np.zeros(N, dtype=bool)
    single[N - 1] = True
    yield np.packbits(single, bitorder="little").view(np.int32)


@pytest.mark.parametrize("temperature,top_p", [(0.0, 1.0), (0.7, 1.0), (0.7, 0.9), (1.3, 0.5), (0.2, 0.99)])
def test_kernel_matches_reference_exactly(temperature, top_p):
    rng = np.random.default_rng(1234)
    for trial in range(12):
        logits = (rng.standard_normal(N) * (1 + trial % 4 * 3)).astype(np.float32)
        for mask in masks(rng):
            seed = int(rng.integers(0, 2**63))
            native = Sampler(temperature, top_p, seed)
            draws = [native.sample(logits, mask) for _ in range(3)]
            state, ref = seed, []
            for _ in range(3):
                token, state = sample_reference(logits, mask, temperature, top_p, state)
                ref.append(token)
            assert draws == ref
            assert native.state == state


def test_masked_tokens_are_never_drawn():
    rng = np.random.default_rng(7)
    logits = rng.standard_normal(N).astype(np.float32)
    ok = np.zeros(N, dtype=bool)
    ok[[5, 77, 100_000]] = True
    logits[~ok] += 50  # forbidden tokens dominate the raw logits
    mask = np.packbits(ok, bitorder="little").view(np.int32)
    s = Sampler(1.0, 1.0, seed=3)
    assert {s.sample(logits, mask) for _ in range(200)} <= {5, 77, 100_000}
    assert Sampler(0, 1, None).sample(logits, mask) == int(np.flatnonzero(ok)[np.argmax(logits[ok])])


def test_same_seed_same_tokens_different_seed_differs():
    logits = np.random.default_rng(0).standard_normal(N).astype(np.float32)
    a = [Sampler(1.0, 0.95, seed=9).sample(logits, None) for _ in range(1)]
    s1, s2 = Sampler(1.0, 0.95, seed=9), Sampler(1.0, 0.95, seed=10)
    seq1 = [s1.sample(logits, None) for _ in range(20)]
    seq2 = [s2.sample(logits, None) for _ in range(20)]
    assert a[0] == seq1[0] and seq1 != seq2


def test_sampler_uses_the_built_kernel():
    """A Sampler takes the compiled kernel by default, and it agrees with the numpy fallback Sampler."""
    from edgeslm import _kernels

    assert _kernels.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    rng = np.random.default_rng(5)
    logits = rng.standard_normal(N).astype(np.float32)
    native, fallback = Sampler(0.8, 0.95, seed=11), Sampler(0.8, 0.95, seed=11, use_kernel=False)
    assert native.kernel is not None and fallback.kernel is None
    assert [native.sample(logits, None) for _ in range(5)] == [fallback.sample(logits, None) for _ in range(5)]
    assert native.state == fallback.state


@pytest.mark.parametrize("n", [1, 31, 33, 70, 1000, 4099])
def test_odd_vocab_sizes_and_empty_mask_words(n):
    """Vocabularies that end inside a mask word, stray bits past n, and runs of all-zero words."""
    rng = np.random.default_rng(n)
    words = (n + 31) // 32
    for trial in range(6):
        logits = (rng.standard_normal(n) * 3).astype(np.float32)
        mask = rng.integers(-(2**31), 2**31, words, dtype=np.int64).astype(np.int32)
        mask[rng.random(words) < 0.7] = 0  # most words empty
        bits = mask.view(np.uint32)
        bits[-1] |= np.uint32(1 << 31)  # a bit past n when n % 32 != 0
        if trial % 2:
            bits[:] = 0
            bits[-1] = np.uint32(1 << ((n - 1) % 32))  # only the last token
        for temperature, top_p in [(0.0, 1.0), (0.8, 1.0), (0.8, 0.9)]:
            seed = int(rng.integers(0, 2**63))
            native = Sampler(temperature, top_p, seed)
            draws = [native.sample(logits, mask) for _ in range(3)]
            state, ref = seed, []
            for _ in range(3):
                token, state = sample_reference(logits, mask, temperature, top_p, state)
                ref.append(token)
            assert draws == ref and native.state == state
