"""Tools sweep: train "tools" recipe variants one after another, resumably, and score each on BFCL's
function split: val (the slice of train that chooses the recipe) and dev (what the README reports).

    python -m benchmarks.tools_sweep run [RUN ...] [--seeds 0 1 2] [--threads 1] [--home DIR]
    python -m benchmarks.tools_sweep table          # the committed table, from what has finished
    python -m benchmarks.tools_sweep list           # the runs it knows and where each stands
    python -m benchmarks.tools_sweep save           # unfinished runs' checkpoints into the repository
    python -m benchmarks.tools_sweep defaults RUN --seeds 0 1 2 [--split val]   # finished seeds at the shipped defaults

A run is a named set of changes to the recipe `V3` (`pipeline/recipe.ISSUE23`, RECIPE when the sweep began;
RUNS below: data recipe, rank and target modules, epochs, learning rate) and a seed. Each lives in `HOME/pipeline/sweep/NAME-sSEED/`
(HOME: --home, else EDGESLM_HOME, else ~/.edgeslm): the encoded examples, the trainer's checkpoints (every 10 steps),
`log.txt` (timestamped steps, losses, val losses), then `adapter/` and `val.json`, `dev.json` (`benchmarks.bfcl_dev` on
the candidate alone, served as `default@NAME-sSEED` from that home's adapter store). Kill it at any point and start the
same command again: finished runs are skipped, a run with an adapter but no figures is scored, a run part way through
training resumes from its last checkpoint (the trainer checks that data and settings are the same). A session whose
machine does not outlive it runs `save` before it ends and commits `benchmarks/results/tools_sweep/RUN/checkpoint/`;
`run` on a fresh machine starts from that checkpoint when its home has none.

`table` writes `benchmarks/results/tools_sweep.json` and `.md` (one row per run: settings, the step val loss picked, val
overall, dev per category and overall; then, per run name with more than one seed, the mean and minimum over seeds)
and a chart of dev accuracy per category beside FunctionGemma's card.
Every run's results are copied into `benchmarks/results/tools_sweep/` so they can be committed.

`defaults` scores finished seeds as `serve` would run them if shipped: each seed's committed adapter, installed as
`RUN-sSEED-defaults` with the shipped adapter's `sampling` block (temperature and leans) in its manifest, asked with no
temperature (`bfcl_dev --temperature unset`, dev split). It writes `dev_defaults.json` and its wrong answers
(`misses_defaults.jsonl`) beside the run's results; `table` adds those rows and their mean and minimum over seeds (issue
23's bar is that mean, at the defaults). `--split val` scores val the same way (`val_defaults.json`,
`misses_val_defaults.jsonl`): a recipe is chosen on val as it would be served. Soups of seeds: benchmarks/tools_soup.py.

What it can show: which recipe answers BFCL's held-out functions best on this machine's budget, chosen on val. What it
cannot: dev is BFCL's non-live data, the distribution the recipes train on; one seed of a run is one draw (only the
final pick gets three). The last stdout line of `table` is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

from benchmarks import _carry
from edgeslm.pipeline import recipe as rec

RESULTS = Path("benchmarks/results")
ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
# name -> changes to RECIPE, in the order they are worth running; the first is the recipe
RUNS: dict[str, dict] = {
    "v3": {},                                                            # all of issue 23's data, r16 all 7, 2 ep
    "v3-attn": {"modules": ATTENTION},                                   # faster to serve (item 6)
    "v3-r8": {"rank": 8, "alpha": 16}, "v3-r32": {"rank": 32, "alpha": 64},
    "v3-lr5e-4": {"lr": 5e-4},
    "v3-1ep": {"epochs": 1.0}, "v3-3ep": {"epochs": 3.0},
    "v3-nomask": {"mask": 0.0},                                          # ablations of the data recipe
    "v3-noseal": {"sealtools": 0},
    "v2-data": {"sealtools": 0, "mask": 0.0, "no_gold": 0.0, "shuffle": False, "epochs": 1.0},  # issue 13's mix, honest split
    # v3 seed 0 stopped at step 125 on a rising val loss and its step 50 answered 0.120 of val: these keep
    # the last step (no val loss, no early stop); val accuracy judges them afterwards
    "v2-data-full": {"sealtools": 0, "mask": 0.0, "no_gold": 0.0, "shuffle": False, "epochs": 1.0, "eval_every": 0},
    "v3-full": {"eval_every": 0},
    # v3-full (val 0.196) refused well and called badly; v2-data-full (val 0.323) the reverse: one factor
    # at a time from the better one, Hammer's removed-gold irrelevance only
    "v2-nogold-full": {"sealtools": 0, "mask": 0.0, "no_gold": 0.1, "shuffle": False, "epochs": 1.0, "eval_every": 0},
    # v2-nogold-full (3 seeds, dev 0.39) misses parallel_multiple most (0.075-0.10, the card 0.295), mostly by
    # the number of calls: one factor from it, Seal-Tools' checked requests of 1-6 calls (and its When2Call)
    "v2-nogold-seal-full": {"sealtools": 1500, "mask": 0.0, "no_gold": 0.1, "shuffle": False, "epochs": 1.0,
                            "eval_every": 0},
    # v2-nogold-full seed 0 (shipped in session 15) picks a tool by its place in the list: offered get_weather
    # and track_parcel, it answered a parcel question with whichever came first. One factor from it: Hammer's
    # shuffled tool lists. Seed 0 (session 49): val 0.323, dev 0.375 (v2-nogold-full 0.286-0.368, 0.367-0.393): dropped
    "v2-nogold-shuffle-full": {"sealtools": 0, "mask": 0.0, "no_gold": 0.1, "shuffle": True, "epochs": 1.0,
                               "eval_every": 0},
    # the shipped v2-nogold-full answers "None of the available functions can do that." after a tool's result
    # (openai-agents, 0 of 10): its results came from 3 generated tools only. One factor from it: 15% of
    # the training calls again with a made-up result and an answer that states it (agentdata.answered)
    "v2-nogold-answered-full": {"sealtools": 0, "mask": 0.0, "no_gold": 0.1, "shuffle": False, "epochs": 1.0,
                                "eval_every": 0, "answered": 0.15},
    # parallel_multiple stays the furthest below the card (0.108 against 0.295), mostly by the number of calls:
    # on top of the answered run, a tenth more requests made of two or three single-turn ones, all their
    # calls the answer (agentdata.combined)
    "v2-nogold-answered-combined-full": {"sealtools": 0, "mask": 0.0, "no_gold": 0.1, "shuffle": False, "epochs": 1.0,
                                         "eval_every": 0, "answered": 0.15, "combined": 0.1},
    # FunctionGemma's cookbook's other arm, not run before: full fine-tuning at a low learning rate (every weight
    # of the 7 projections; finetune.TrainConfig.full), landed as its change cut to rank 64 by SVD, against
    # v2-nogold-full's LoRA on the same data (3 seeds: val 0.286-0.368)
    "v2-nogold-fullft-full": {"sealtools": 0, "mask": 0.0, "no_gold": 0.1, "shuffle": False, "epochs": 1.0,
                              "eval_every": 0, "full": True, "lr": 5e-5, "rank": 64},
    # the cookbook's 2 epochs on the shipped mix (v3-full had them with v3's data). Seed 0 (sessions 46-47):
    # val 0.331 against 0.368, dev 0.360 against 0.393: dropped
    "v2-nogold-2ep-full": {"sealtools": 0, "mask": 0.0, "no_gold": 0.1, "shuffle": False, "epochs": 2.0, "eval_every": 0},
    # v2-nogold-full writes Java's typed strings wrong on val ("42" for a long): one factor from it, half the simple Python
    # questions again as Java or JavaScript ones. Seed 0 val 0.436 against 0.368, seeds 1 and 2 0.301; dev at the defaults over
    # 3 seeds 0.452 (min 0.405) vs 0.473 (min 0.464): not shipped (docs/tools-adapter.md)
    "v2-nogold-typed-full": {"sealtools": 0, "mask": 0.0, "no_gold": 0.1, "shuffle": False, "epochs": 1.0,
                             "eval_every": 0, "typed": 0.5},
    # parallel_multiple misses are mostly a call too few: 15% more requests made of two or three single-turn ones
    # (agentdata.combined). Seed 0 (session 28): val 0.241 against 0.368, worse in every category: dropped
    "v2-nogold-combined-full": {"sealtools": 0, "mask": 0.0, "no_gold": 0.1, "shuffle": False, "epochs": 1.0,
                                "eval_every": 0, "combined": 0.15},
    # dev's misses at the defaults are as often a value as a call count (num_success 0 for 60, an income 1000000
    # for 100000): one factor from v2-nogold-full, half the answered questions again with their stated values
    # swapped for other questions' values of a parameter of the same name, in request and call (widen.swap_values)
    "v2-nogold-swapped-full": {"sealtools": 0, "mask": 0.0, "no_gold": 0.1, "shuffle": False, "epochs": 1.0,
                               "eval_every": 0, "swapped": 0.5},
    # the tokens that decide a call's shape (another call or the end) weigh 4 in the loss (finetune.TrainConfig.decisions).
    # Seed 0 (session 46): val 0.248 against 0.368, dev 0.315 against 0.393: dropped
    "v2-nogold-decisions-full": {"sealtools": 0, "mask": 0.0, "no_gold": 0.1, "shuffle": False, "epochs": 1.0,
                                 "eval_every": 0, "decisions": 4},
    # Hammer's masking ran only inside v3 (with Seal-Tools, shuffling and 2 epochs; val 0.196): one factor from
    # v2-nogold-full, function and parameter names masked in two thirds of the examples (augment.mask), so
    # the model reads descriptions, which dev's unseen functions carry. Seed 0 (session 49): val 0.301, dev 0.322: dropped
    "v2-nogold-mask-full": {"sealtools": 0, "mask": 0.66, "no_gold": 0.1, "shuffle": False, "epochs": 1.0,
                            "eval_every": 0},
}
CATS = ("simple_python", "simple_java", "simple_javascript", "multiple", "parallel", "parallel_multiple", "irrelevance")


def home(arg: str | None) -> Path:
    return Path(arg or os.environ.get("EDGESLM_HOME") or Path.home() / ".edgeslm").expanduser()


# The recipe the runs change, frozen as it was when the sweep began (recipe.RECIPE then): a later change
# to RECIPE must not change a run part way through, whose checkpoint the trainer would then discard.
V3 = {"rank": 16, "alpha": 32, "modules": rec.MODULES, "lr": 1e-3, "batch": 8, "epochs": 2.0, "seed": 0,
      "generated": 500, "max_prompt": 1400, "eval_every": 25, "dev_examples": 48, "patience": 3,
      "no_description": 0.15, "split": "function", "sealtools": 1500, "ask_share": 0.1, "mask": 0.66,
      "no_gold": 0.1, "shuffle": True}


def recipe_of(name: str, seed: int) -> dict:
    if name not in RUNS:
        raise SystemExit(f"unknown run '{name}'; the runs are: {', '.join(RUNS)}")
    return {**V3, **RUNS[name], "seed": seed}


def log(work: Path, line: str) -> None:
    work.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with (work / "log.txt").open("a") as f:
        f.write(f"{stamp} {line}\n")
    print(f"{stamp} [{work.name}] {line}", flush=True)


def train(settings, name: str, seed: int, work: Path) -> None:
    """Train (or resume) the run and write work/adapter."""
    last = [0.0]

    def bar(stage: str, i: int, n: int, text: str) -> None:
        if stage == "train" or i == n or time.monotonic() - last[0] > 60:
            last[0] = time.monotonic()
            log(work, f"{stage} {i}/{n} {text}".rstrip())
    r = recipe_of(name, seed)
    log(work, f"start (or resume) {name} seed {seed}: {json.dumps(r)}")
    m = rec.build(settings, out=work / "adapter", recipe=r, bar=bar, work=work, force=True)
    t = m["training"]
    log(work, f"trained: {t['steps']} steps planned, stopped at {t['stopped_at']}, best step {t['best_step']} "
              f"(val loss {t['dev_loss']}), resumed from step {t['resumed_from']}, {m['wall_s']} s this process")


def install(settings, task: str, work: Path) -> Path:
    """The run's adapter into this home's adapter store as `task` (replacing an older copy); returns its folder."""
    d = settings.adapters_dir / rec.BASE / task
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    for f in rec.OUTPUT_FILES:
        shutil.copy2(work / "adapter" / f, d / f)
    return d


def score(settings, task: str, work: Path, threads: int) -> None:
    from benchmarks import bfcl_dev

    for split in ("val", "dev"):
        if not (work / f"{split}.json").is_file():
            log(work, f"scoring {split}")
            bfcl_dev.main(["--models", f"default@{task}", "--split", split, "--threads", str(threads),
                           "--out", str(work / f"{split}.json.partial"), "--chart", str(work / f"{split}.png")])
            (work / f"{split}.json.partial").rename(work / f"{split}.json")
            log(work, f"{split}: overall {json.loads((work / f'{split}.json').read_text())['categories']['overall']}")


def run(args) -> None:
    from edgeslm.config import Settings

    root = home(args.home)
    os.environ["EDGESLM_HOME"] = str(root)  # the scoring server's store is this one
    settings = Settings(home=root, threads=args.threads)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    for name in args.runs or list(RUNS)[:1]:
        for seed in args.seeds:
            task = f"{name}-s{seed}"
            work = root / "pipeline" / "sweep" / task
            if (work / "dev.json").is_file():
                print(f"{task}: done", flush=True)
                continue
            done = RESULTS / "tools_sweep" / task / "adapter"  # trained on another machine, not yet scored
            if (done / "manifest.json").is_file() and not (work / "adapter" / "manifest.json").is_file():
                shutil.copytree(done, work / "adapter", dirs_exist_ok=True)
                log(work, f"took the trained adapter from {done}")
            if not (work / "adapter" / "manifest.json").is_file():
                kept = RESULTS / "tools_sweep" / task / "checkpoint"
                ckpt = work / "peft" / "checkpoint"
                if kept.is_dir() and not ckpt.is_dir():
                    _carry.unpack(kept, ckpt)
                    log(work, f"restored the checkpoint saved in {kept}")
                train(settings, name, seed, work)
            install(settings, task, work)
            score(settings, task, work, args.threads)
            keep = RESULTS / "tools_sweep" / task
            keep.mkdir(parents=True, exist_ok=True)
            for f in ("val.json", "dev.json", "log.txt"):
                shutil.copy2(work / f, keep / f)
            shutil.copytree(work / "adapter", keep / "adapter", dirs_exist_ok=True)  # for `defaults`, on any machine
            manifest = json.loads((work / "adapter" / "manifest.json").read_text())
            (keep / "manifest.json").write_text(json.dumps(manifest, indent=2))


SHIPPED = Path(rec.__file__).parent.parent / "assets" / "adapters" / rec.BASE / "tools" / "manifest.json"


def at_defaults(settings, keep: Path, splits: list[str], threads: int) -> None:
    """keep/adapter as `KEEP-defaults` with the shipped sampling block; each split not yet scored, asked with no temperature."""
    from benchmarks import bfcl_dev

    task = f"{keep.name}-defaults"
    for split in splits:
        out = keep / f"{split}_defaults.json"
        if out.is_file():
            print(f"{keep.name}: {split} scored at the defaults", flush=True)
            continue
        d = install(settings, task, keep)
        manifest, sampling = json.loads((d / "manifest.json").read_text()), json.loads(SHIPPED.read_text())["sampling"]
        (d / "manifest.json").write_text(json.dumps({**manifest, "task": task, "sampling": sampling}, indent=2))
        misses = keep / ("misses_defaults.jsonl" if split == "dev" else f"misses_{split}_defaults.jsonl")
        bfcl_dev.main(["--models", f"default@{task}", "--split", split, "--temperature", "unset", "--threads", str(threads), "--out",
                       str(out.with_suffix(".json.partial")), "--chart", str(keep / f"{split}_defaults.png"), "--misses", str(misses)])
        out.with_suffix(".json.partial").rename(out)
        print(f"{keep.name}: {split} at the defaults {json.loads(out.read_text())['categories']['overall']}", flush=True)


def defaults(args) -> None:
    """Each finished seed's committed adapter scored on dev (or val) at the shipped adapter's sampling defaults."""
    from edgeslm.config import Settings

    root = home(args.home)
    os.environ["EDGESLM_HOME"] = str(root)  # the scoring server's store is this one
    settings = Settings(home=root, threads=args.threads)
    for name in args.runs:
        recipe_of(name, 0)  # a clear error for an unknown run
        for seed in args.seeds:
            keep = RESULTS / "tools_sweep" / f"{name}-s{seed}"
            if not (keep / f"{args.split}_defaults.json").is_file() and not (keep / "adapter" / "manifest.json").is_file():
                raise SystemExit(f"{keep / 'adapter'} is missing: finish `run {name} --seeds {seed}` first")
            at_defaults(settings, keep, [args.split], args.threads)


def save(args) -> None:
    """Copy each unfinished run's latest checkpoint and log under benchmarks/results/tools_sweep/ (to commit)."""
    for w in sorted((home(args.home) / "pipeline" / "sweep").glob("*-s*")):
        ckpt = w / "peft" / "checkpoint"
        if (w / "dev.json").is_file() or not ckpt.is_dir():
            continue
        keep = RESULTS / "tools_sweep" / w.name
        # the trainer swaps folders whole, so a copy is one checkpoint; in bfloat16, half the bytes to commit
        size = _carry.pack(ckpt, keep / "checkpoint", [Path(".")], {Path("."): "bfloat16"})
        shutil.copy2(w / "log.txt", keep / "log.txt")
        step = json.loads((keep / "checkpoint" / "state.json").read_text())["step"]
        print(f"{w.name}: checkpoint at step {step} ({size / 2**20:.1f} MiB) in {keep / 'checkpoint'}")


def _accuracies(path: Path) -> dict[str, float]:
    """Category -> accuracy of the one model a bfcl_dev result file scored."""
    cats = json.loads(path.read_text())["categories"]
    model = next(iter(cats["overall"]))
    return {c: cats[c][model]["accuracy"] for c in (*CATS, "simple", "overall") if c in cats}


def rows() -> list[dict]:
    """One row per finished run (its results copied under benchmarks/results/tools_sweep/)."""
    out = []
    for d in sorted((RESULTS / "tools_sweep").glob("*-s*")):
        if not (d / "dev.json").is_file():
            continue
        m = json.loads((d / "manifest.json").read_text())
        dev = _accuracies(d / "dev.json")
        val = _accuracies(d / "val.json")
        name, _, seed = d.name.rpartition("-s")
        t = m["training"]
        out.append({"run": d.name, "name": name, "seed": int(seed), "changes": RUNS.get(name),
                    "examples": m["data"]["examples"], "best_step": t["best_step"], "steps": t["steps"],
                    "val_loss": t["dev_loss"], "val": val["overall"], "dev": dev,
                    "train_s": t.get("train_s")})
    return out


def defaults_rows() -> dict[str, list[dict]]:
    """Run name -> one row per seed scored by `defaults` (dev at the shipped sampling defaults, and val's overall where scored);
    a soup of seeds 0, 1 and 2 (`benchmarks.tools_soup`, RUN-soup-s012) is a seed of RUN-soup."""
    out: dict[str, list[dict]] = {}
    for d in sorted((RESULTS / "tools_sweep").glob("*-s*")):
        name, _, seed = d.name.rpartition("-s")
        if (d / "dev_defaults.json").is_file() and seed.isdigit():
            val = _accuracies(d / "val_defaults.json")["overall"] if (d / "val_defaults.json").is_file() else None
            out.setdefault(name, []).append({"seed": int(seed), "run": d.name, "val": val,
                                             "dev": _accuracies(d / "dev_defaults.json")})
    return out


def table(args) -> None:
    from benchmarks._chart import bars
    from benchmarks.bfcl_dev import CARD

    done = rows()
    groups: dict[str, list[dict]] = {}
    for r in done:
        groups.setdefault(r["name"], []).append(r)
    seeds = {n: {"seeds": [r["seed"] for r in rs],
                 **{f"{k}_{c}": f(r["dev"].get(c, 0) for r in rs) for c in ("simple", *CATS[3:], "overall")
                    for k, f in (("mean", lambda xs: round(statistics.mean(xs), 4)), ("min", min))}}
             for n, rs in groups.items() if len(rs) > 1}
    cols = ["simple", "multiple", "parallel", "parallel_multiple", "irrelevance", "overall"]
    lines = ["| run | changes to RECIPE | examples | step (of) | val loss | val acc | " + " | ".join(cols) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(cols)]
    for r in done:
        lines.append(f"| {r['run']} | `{json.dumps(r['changes'])}` | {r['examples']} | {r['best_step']} ({r['steps']}) | "
                     f"{r['val_loss']} | {r['val']} | " + " | ".join(str(r["dev"].get(c, "-")) for c in cols) + " |")
    lines.append("| FunctionGemma (card) | | | | | | " + " | ".join(str(CARD.get(c, "-")) for c in cols) + " |")
    for n, s in seeds.items():
        lines.append(f"| {n}, mean (min) of seeds {s['seeds']} | | | | | | "
                     + " | ".join(f"{s.get('mean_' + c, '-')} ({s.get('min_' + c, '-')})" for c in cols) + " |")
    at_defaults = defaults_rows()
    for n, rs in at_defaults.items():
        for r in rs:
            lines.append(f"| {r['run']} at the shipped defaults | | | | | {r['val'] or ''} | "
                         + " | ".join(str(r["dev"].get(c, "-")) for c in cols) + " |")
        if len(rs) > 1:
            lines.append(f"| {n} at the shipped defaults, mean (min) of seeds {[r['seed'] for r in rs]} | | | | | | " + " | ".join(
                f"{round(statistics.mean(r['dev'].get(c, 0) for r in rs), 4)} ({min(r['dev'].get(c, 0) for r in rs)})"
                for c in cols) + " |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tools_sweep.md").write_text("\n".join(lines) + "\n")
    result = {"benchmark": "tools_sweep", "runs": done, "over_seeds": seeds, "at_defaults": at_defaults,
              "functiongemma_card": CARD}
    (RESULTS / "tools_sweep.json").write_text(json.dumps(result, indent=2) + "\n")
    print("\n".join(lines))
    if done:
        series = {r["run"]: [r["dev"].get(c, 0.0) or 0.0 for c in cols] for r in done}
        series["FunctionGemma (card)"] = [CARD.get(c, 0.0) for c in cols]
        bars(RESULTS / "tools_sweep.png", "tools sweep: BFCL dev (function split), accuracy", cols, series, "accuracy")
    print(json.dumps(result), flush=True)


def status(args) -> None:
    root = home(args.home)
    for name in RUNS:
        for w in sorted((root / "pipeline" / "sweep").glob(f"{name}-s*")):
            state = ("done" if (w / "dev.json").is_file() else "scoring" if (w / "adapter").is_dir()
                     else "training" if (w / "peft").is_dir() else "encoding")
            tail = (w / "log.txt").read_text().splitlines()[-1:] if (w / "log.txt").is_file() else []
            print(f"{w.name}: {state}; {tail[0] if tail else ''}")
    print("runs: " + ", ".join(f"{n} {json.dumps(c)}" for n, c in RUNS.items()))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train and score runs, resuming where they stopped")
    r.add_argument("runs", nargs="*", help=f"run names (default: the first, {next(iter(RUNS))})")
    r.add_argument("--seeds", nargs="+", type=int, default=[0])
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--home", help="EDGESLM_HOME for checkpoints and the scoring server (default: the environment's)")
    sub.add_parser("table", help="write benchmarks/results/tools_sweep.{json,md,png} from finished runs")
    s = sub.add_parser("list", help="the runs and where each stands")
    s.add_argument("--home")
    v = sub.add_parser("save", help="copy unfinished runs' checkpoints under benchmarks/results/tools_sweep/")
    v.add_argument("--home")
    d = sub.add_parser("defaults", help="score finished seeds on dev (or val) at the shipped adapter's sampling defaults")
    d.add_argument("runs", nargs="+")
    d.add_argument("--split", choices=("dev", "val"), default="dev", help="val chooses a recipe; dev is what the README reports")
    d.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    d.add_argument("--threads", type=int, default=2)
    d.add_argument("--home", help="EDGESLM_HOME whose adapter store serves the copies (default: the environment's)")
    args = ap.parse_args(argv)
    {"run": run, "table": table, "list": status, "save": save, "defaults": defaults}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
