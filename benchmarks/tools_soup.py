"""Tools soup: one adapter that is the mean of a sweep run's finished seeds in weight space (`store.lora_gguf.mean`; a
model soup, Wortsman et al. 2022: fine-tunes of one base averaged), scored as the shipped default would serve it.

    python -m benchmarks.tools_soup RUN --seeds 0 1 2 [--splits val dev] [--threads 2] [--home DIR]

Reads each seed's committed adapter (`benchmarks/results/tools_sweep/RUN-sSEED/adapter/`, as `tools_sweep run` leaves
it) and writes `benchmarks/results/tools_sweep/RUN-soup-sSEEDS/` (RUN-soup-s012 for seeds 0, 1 and 2): `adapter/`
(adapter.gguf, the seeds' ranks side by side, rebuilt on each run and not committed; manifest.json, seed SEEDS[0]'s with
the rank, sha256 and provenance of the mean),
then per split `{split}_defaults.json`, a chart and the wrong answers: `bfcl_dev` with no temperature sent, the adapter
installed in HOME's store as `RUN-soup-sSEEDS-defaults` with the shipped adapter's `sampling` block, as `tools_sweep
defaults` scores each seed. A split already scored is skipped. `tools_sweep table` lists a soup as a seed of RUN-soup.

Served as the default adapter, a soup is folded into a copy of the weights like any other (store/folded.py), so its
larger rank costs nothing per token.

What it can show: whether the mean of seeds answers BFCL's held-out functions better than the seeds it averages, on val
(which chooses; the shipped seed 0 is the one the leans were chosen on, so compare with seeds 1 and 2 there) and dev (which
the README reports). What it cannot: one soup of three seeds is one draw; issue 23's bar is a mean over three, so three
soups of distinct seeds each.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os

from benchmarks.tools_sweep import RESULTS, at_defaults, home, recipe_of
from edgeslm.config import Settings
from edgeslm.store.lora_gguf import mean


def soup(name: str, seeds: list[int]) -> str:
    """Write the mean of the seeds' adapters under RESULTS; returns its folder's name (RUN-soup-sSEEDS)."""
    recipe_of(name, 0)  # a clear error for an unknown run
    parts = [RESULTS / "tools_sweep" / f"{name}-s{s}" / "adapter" for s in seeds]
    if missing := [str(p) for p in parts if not (p / "adapter.gguf").is_file()]:
        raise SystemExit(f"no finished adapter in {', '.join(missing)}: run `python -m benchmarks.tools_sweep run {name} "
                         f"--seeds {' '.join(map(str, seeds))}` first")
    task = f"{name}-soup-s{''.join(map(str, seeds))}"
    out = RESULTS / "tools_sweep" / task / "adapter"
    out.mkdir(parents=True, exist_ok=True)
    rank = mean([p / "adapter.gguf" for p in parts], out / "adapter.gguf")
    manifest = json.loads((parts[0] / "manifest.json").read_text())
    manifest.update(task=task, rank=rank, alpha=float(rank), source=f"mean of {name} seeds {seeds} (benchmarks.tools_soup)",
                    adapter_sha256=hashlib.sha256((out / "adapter.gguf").read_bytes()).hexdigest())
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    print(f"{task}: rank {rank}, the mean of {len(seeds)} seeds", flush=True)
    return task


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="a tools_sweep run name whose seeds have finished")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--splits", nargs="+", choices=("val", "dev"), default=["val", "dev"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--home", help="EDGESLM_HOME whose adapter store serves the soup (default: the environment's)")
    args = ap.parse_args(argv)
    root = home(args.home)
    os.environ["EDGESLM_HOME"] = str(root)  # the scoring server's store is this one
    at_defaults(Settings(home=root, threads=args.threads), RESULTS / "tools_sweep" / soup(args.run, args.seeds), args.splits,
                args.threads)


if __name__ == "__main__":
    main()
