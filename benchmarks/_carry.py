"""What a long benchmark run leaves for the next session, through git.

Each session here gets a new machine: only the repository survives it. A run longer than a session's CPU
(one seed of `benchmarks.convert`, about 2.7 h; a sweep run of `benchmarks.tools_sweep`) goes on in the
next session only from files committed under benchmarks/results/. Owns packing a run's resumable files
into such a folder, and unpacking them into a fresh home: which files a benchmark carries is its own
business, this module only copies them and narrows their floats to commit fewer bytes.

The narrowing is lossy, and what it costs is stated where it is used: trained weights go as float16
(a LoRA's weights are far inside its range; 3 decimal digits, where the adapter store's GGUF keeps
float32), a checkpoint's weights and Adam moments as bfloat16 (the second moments underflow float16). A
resumed run continues from rounded values: close to, not bit for bit, the run that stopped.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def cast(folder: Path, dtype: str) -> None:
    """Every safetensors file of `folder` (recursively), and the Adam moments of an `optimizer.pt` in it,
    in `dtype` ("float32", "float16", "bfloat16"), in place; Adam's step counts are left alone."""
    import torch
    from safetensors.torch import load_file, save_file

    to = getattr(torch, dtype)
    for f in folder.rglob("*.safetensors"):
        save_file({k: v.to(to).contiguous() for k, v in load_file(str(f)).items()}, str(f))
    for opt in folder.rglob("optimizer.pt"):
        sd = torch.load(opt, weights_only=True)
        for st in sd["state"].values():
            for k in ("exp_avg", "exp_avg_sq"):
                if k in st:
                    st[k] = st[k].to(to)
        torch.save(sd, opt)


def pack(home: Path, keep: Path, files: list[Path], narrow: dict[Path, str]) -> int:
    """Copy `files` (paths relative to `home`; a folder goes whole) to `keep`, replacing what was there
    in one rename; `narrow`: a folder (relative, as in `files`) -> the dtype its tensors are kept in.
    Returns the bytes written."""
    tmp = keep.with_name(keep.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for rel in files:
        src, dst = home / rel, tmp / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst)
        elif src.is_file():
            shutil.copy2(src, dst)
    for rel, dtype in narrow.items():
        if (tmp / rel).exists():
            cast(tmp / rel, dtype)
    old = keep.with_name(keep.name + ".old")  # the last good save stays until the new one is in place
    shutil.rmtree(old, ignore_errors=True)
    if keep.exists():
        keep.rename(old)
    tmp.rename(keep)
    shutil.rmtree(old, ignore_errors=True)
    return sum(f.stat().st_size for f in keep.rglob("*") if f.is_file())


def unpack(keep: Path, home: Path) -> None:
    """What `pack` kept, into `home`, every tensor widened back to float32 (what training reads)."""
    tmp = home.with_name(home.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(keep, tmp)
    cast(tmp, "float32")
    shutil.rmtree(home, ignore_errors=True)
    tmp.rename(home)
