"""The prefix cache on disk (store/prefixes.py): a long prompt's KV state survives a restart and serves the
next request that shares its prefix, with the same answer as a cold run; a corrupt, truncated or
mismatched file (another adapter, model file or n_ctx) is refused and logged, and the answer is unchanged."""

import logging
import os
import time

import pytest

from edgeslm.config import get_settings
from edgeslm.engine import Engine
from edgeslm.qualify.profile import AGENT_TOOLS
from edgeslm.store.prefixes import BLOCK, PrefixStore, block_hashes
from edgeslm.types import Message, OutputSpec, SamplingParams
from tests.cores import THREADS

IDENT = {"edgeslm": "1", "model": "m.gguf|1:2:3:4", "n_ctx": 2048, "adapters": []}


def _store(root, max_bytes=1 << 20, min_tokens=32) -> PrefixStore:
    return PrefixStore(root, max_bytes, min_tokens)


def _save(store: PrefixStore, tokens: list[int], data: bytes, ident=IDENT) -> None:
    assert store.offer(ident, tokens, lambda: data)
    store.flush()


def test_a_saved_state_serves_the_longest_shared_run_of_blocks(tmp_path):
    s = _store(tmp_path)
    prompt = list(range(100, 400))
    _save(s, prompt, b"state" * 100)
    s.close()
    again = _store(tmp_path)  # a new process: the index is read from the files
    other = prompt[:290] + [7, 8, 9]
    hit = again.lookup(IDENT, other, at_least=0)
    assert hit is not None and hit.data == b"state" * 100 and hit.tokens == 290 // BLOCK * BLOCK
    assert again.lookup(IDENT, [1] * 300, at_least=0) is None  # nothing shared
    assert again.lookup(IDENT, other, at_least=hit.tokens) is None  # memory already holds as much
    assert not again.offer(IDENT, prompt[:300] + [5], lambda: b"x")  # an entry holds nearly all of it already
    assert not again.offer(IDENT, list(range(20)), lambda: b"x")  # shorter than min_tokens
    assert block_hashes(prompt)[:3] == block_hashes(other)[:3] and len(block_hashes(prompt)) == 300 // BLOCK
    raw = (tmp_path / again.entries()[0].name).read_bytes().decode("latin-1")
    assert "100, 101, 102" not in raw and "100,101,102" not in raw  # no token ids in the clear


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "garbage"])
def test_damaged_files_are_refused_logged_and_removed(tmp_path, caplog, damage):
    s = _store(tmp_path)
    prompt = list(range(300))
    _save(s, prompt, bytes(range(256)) * 40)
    path = tmp_path / s.entries()[0].name
    raw = path.read_bytes()
    if damage == "corrupt":
        path.write_bytes(raw[:-100] + bytes([raw[-100] ^ 1]) + raw[-99:])
    elif damage == "truncated":
        path.write_bytes(raw[: len(raw) - 1000])
    else:
        path.write_bytes(b"not a state file at all")
    with caplog.at_level(logging.WARNING, logger="edgeslm.prefixes"):
        assert _store(tmp_path).lookup(IDENT, prompt, at_least=0) is None
    why = {"corrupt": "SHA-256", "truncated": "truncated", "garbage": "unreadable"}[damage]
    assert why in caplog.text and not path.exists()


@pytest.mark.parametrize("field,value", [("n_ctx", 4096), ("model", "other.gguf|9:9:9:9"), ("adapters", [["a", "1", 1.0]]),
                                         ("edgeslm", "2")])
def test_another_identity_is_refused_by_name(tmp_path, caplog, field, value):
    s = _store(tmp_path)
    prompt = list(range(300))
    _save(s, prompt, b"kv" * 500)
    with caplog.at_level(logging.WARNING, logger="edgeslm.prefixes"):
        assert s.lookup({**IDENT, field: value}, prompt, at_least=0) is None
    assert f"made under another {field}" in caplog.text
    assert s.lookup(IDENT, prompt, at_least=0) is not None  # still good for its own identity


def test_size_bound_evicts_the_least_recently_used(tmp_path):
    s = _store(tmp_path, max_bytes=2500)
    a, b, c = (list(range(k, k + 300)) for k in (0, 1000, 2000))
    _save(s, a, b"a" * 1000)
    _save(s, b, b"b" * 1000)
    time.sleep(0.01)
    assert s.lookup(IDENT, a, at_least=0) is not None  # a is used again: b is now the oldest
    _save(s, c, b"c" * 1000)
    assert s.lookup(IDENT, b, at_least=0) is None
    assert s.lookup(IDENT, a, at_least=0) is not None and s.lookup(IDENT, c, at_least=0) is not None
    assert sum(e.n_bytes for e in s.entries()) <= 2500
    (tmp_path / ".x.kv.1.tmp").write_bytes(b"half")  # a write cut off by a crash
    assert _store(tmp_path).entries() and not (tmp_path / ".x.kv.1.tmp").exists()
    assert s.clear() == 2000 and not list(tmp_path.glob("*.kv"))


# ---- the real model ------------------------------------------------------------------------------

SYSTEM = "You are the assistant of a small company. Use the tools when they help; answer briefly."
SPEC = OutputSpec("tools", AGENT_TOOLS, "auto", parallel=False)
# llama.cpp's sums differ in their last bits with the batch a token is evaluated in and the cells the cache
# holds, so at temperature 0 a near-tie can go either way between a cold and a warm run (the cache in memory
# does the same: warm equalled cold on 4 of 7 questions tried). This question is not at a near-tie; the
# refusal tests below compare two cold runs, which no cache difference can excuse.
Q = "Email bob@example.com that the demo moved to Friday."
PARAMS = SamplingParams(max_tokens=96, temperature=0)


def _ask(engine: Engine, q: str, **kw):
    g = engine.worker("default").run([Message("system", SYSTEM), Message("user", q)], SPEC, PARAMS, **kw)
    return g, (g.content, [(c.name, c.arguments) for c in g.tool_calls])


def _engine(home, **kw) -> Engine:
    return Engine(get_settings(home=home, threads=THREADS, n_ctx=kw.pop("n_ctx", 2048), parallel=2,
                               prefix_disk_min_tokens=64, **kw))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A home whose disk cache holds the tool prompt of one question; and the cold answer of another."""
    home = tmp_path_factory.mktemp("prefix-home")
    e = _engine(home)
    try:
        first, _ = _ask(e, "What's the weather in Lisbon?")
        assert first.timings["restored_tokens"] == 0
        _, ref = _ask(e, Q, fresh=True)  # cold: nothing reused
    finally:
        e.close()  # flushes the write
    assert len(list((home / "prefixes").glob("*.kv"))) == 1
    return home, ref


def test_after_a_restart_the_prompt_is_restored_and_the_answer_is_the_cold_one(saved):
    home, ref = saved
    e = _engine(home)
    try:
        g, got = _ask(e, Q)
    finally:
        e.close()
    assert g.timings["restored_tokens"] >= g.usage.prompt_tokens - 64, g.timings
    assert g.usage.cached_tokens >= g.timings["restored_tokens"]
    assert got == ref


@pytest.mark.parametrize("change", ["adapter", "n_ctx", "model file"])
def test_a_mismatched_state_is_refused_logged_and_the_answer_unchanged(saved, caplog, change, tmp_path):
    home, ref = saved
    kw, ask = {}, {}
    if change == "n_ctx":
        kw["n_ctx"] = 3072
    if change == "adapter":
        ask["adapter"] = "none"
    model = next((home / "models").rglob("*.gguf"))
    before = os.stat(model)
    if change == "model file":  # the file at the model's path was replaced (same bytes, another file)
        os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
    e = _engine(home, **kw)
    try:
        with caplog.at_level(logging.WARNING, logger="edgeslm.prefixes"):
            g, got = _ask(e, Q, **ask)
        if change == "adapter":  # the same question on the bare base, cold, is what it must equal
            _, ref = _ask(e, Q, fresh=True, **ask)
    finally:
        e.close()
        os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))
    field = {"adapter": "adapters", "n_ctx": "n_ctx", "model file": "model"}[change]
    assert g.timings["restored_tokens"] == 0 and f"another {field}" in caplog.text, caplog.text
    assert got == ref


def test_a_corrupt_state_on_disk_is_a_miss_with_the_same_answer(saved, caplog, tmp_path):
    home, ref = saved
    path = next((home / "prefixes").glob("*.kv"))
    raw = path.read_bytes()
    backup = tmp_path / "backup.kv"
    backup.write_bytes(raw)
    path.write_bytes(raw[:-5000] + bytes(b ^ 0xFF for b in raw[-5000:]))
    e = _engine(home)
    try:
        with caplog.at_level(logging.WARNING, logger="edgeslm.prefixes"):
            g, got = _ask(e, Q)
    finally:
        e.close()
        for p in (home / "prefixes").glob("*.kv"):  # the miss saved a new state: back to the one the others expect
            p.unlink()
        path.write_bytes(backup.read_bytes())
    assert g.timings["restored_tokens"] == 0 and "SHA-256" in caplog.text
    assert got == ref


@pytest.mark.parametrize("args,says", [(["--kv-type", "q4"], "invalid --kv-type 'q4'; choose f16 or q8_0"),
                                       (["--kv-type", "q8_0"], "kv_type q8_0 needs flash_attn")])
def test_serve_names_a_bad_kv_type_and_the_choices(args, says):
    from typer.testing import CliRunner

    from edgeslm.cli import app

    r = CliRunner().invoke(app, ["serve", *args])
    assert r.exit_code != 0 and says in r.output, r.output
