"""The Hugging Face checkpoints that transformers dequantizes from GGUF files, kept in the cache.

Fine-tuning, the ONNX and vLLM exports and the parity benchmarks all start from a model as
transformers sees it. Dequantizing a GGUF (and building its tokenizer) takes ~45 s for the 270M
model on a laptop core; loading the saved F32 safetensors takes ~2 s. So it is done once per file
content: `Settings.cache/hf/<sha256 of the GGUF>` holds config, safetensors and tokenizer files.

Owns: that folder. It is written whole or not at all (built beside it, then renamed, one process at
a time: another that needs it meanwhile waits for that build), used as
read-only, and only the KEEP most recently used checkpoints stay (an F32 copy is ~4 bytes per
parameter: 1.1 GB for the 270M model).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

from edgeslm.store.entries import sha256_file

KEEP = 2


def checkpoint(gguf_path: Path, cache: Path) -> Path:
    """The folder of the F32 checkpoint of `gguf_path` (built now when the cache has none). Needs torch
    and transformers."""
    from filelock import FileLock

    root = cache / "hf"
    done = root / sha256_file(gguf_path)
    if (done / "config.json").is_file():
        os.utime(done)  # most recently used
        return done
    root.mkdir(parents=True, exist_ok=True)
    (cache / "locks").mkdir(exist_ok=True)
    with FileLock(str(cache / "locks" / f"hf-{done.name}.lock")):  # a second process waits for this build
        if (done / "config.json").is_file():
            return done
        _build_into(gguf_path, root, done)
    _evict(root, done)
    return done


def _build_into(gguf_path: Path, root: Path, done: Path) -> None:
    tmp = root / f".{done.name}.{os.getpid()}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _build(gguf_path, tmp)
        try:
            tmp.rename(done)
        except OSError:  # another process finished the same one first
            if not (done / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _parsed_once():
    """transformers opens the GGUF with gguf-py's reader three times (the config, the tensors, the
    tokenizer), and each opening parses the 262k-token vocabulary in Python (~25 s here): while this
    holds, an opened file's reader is kept and handed out again (it only reads from its memory map)."""
    import gguf

    real, opened = gguf.GGUFReader, {}

    def reader(path, mode="r"):
        key = (str(Path(path).resolve()), mode)
        if key not in opened:
            opened[key] = real(path, mode)
        return opened[key]

    gguf.GGUFReader = reader
    try:
        yield
    finally:
        gguf.GGUFReader = real


def _build(gguf_path: Path, out: Path) -> None:
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    kw = {"gguf_file": gguf_path.name}
    with _parsed_once():
        loaded = transformers.AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), dtype=torch.float32, **kw)
        model = transformers.AutoModelForCausalLM.from_config(loaded.config)  # a gguf-loaded model refuses to save
        model.load_state_dict(loaded.state_dict())
        del loaded
        model.save_pretrained(str(out))
        transformers.AutoTokenizer.from_pretrained(str(gguf_path.parent), **kw).save_pretrained(str(out))


def _evict(root: Path, keep: Path) -> None:
    done = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.stat().st_mtime, reverse=True)
    for old in [p for p in done if p != keep][KEEP - 1:]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".*.partial"):  # left by a process that died building (a live one is younger)
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)
