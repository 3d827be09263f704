"""The whole LLM-to-SLM conversion on the synthetic agent workload, on this machine.

    python -m benchmarks.convert [--per-task 300] [--threads 2] [--seeds 0 1 2] [--on default|base] [--home DIR]
    python -m benchmarks.convert --save [--home DIR]   # the run stopped, before a session ends: commit what it writes
    python -m benchmarks.convert --rescore [--seeds 0]  # a finished seed scored again at this code, from its kept files

1. S1: an agent (the openai client) sends 4 tasks × N calls, with injected personal data, through
   `edgeslm proxy` in front of the scripted teacher (a stand-in for a hosted LLM, which cannot be
   reached here); every fifth call streams.
2. `edgeslm convert run` (in process): curate, cluster, select, fine-tune, gate, router.
3. Against the truth the workload knows: PII recall (injected values that survive into the curated
   store) and precision (detections that are not injected values), cluster ARI against the task types,
   router accuracy on fresh calls, held-out exact tool-call match with and without each task's adapter.
4. S6 end to end: fresh calls for model "auto" through `serve` (in process) with the teacher as upstream.
5. The students on calls written apart from the generator: `benchmarks/data/convert_handwritten.jsonl`,
   15 requests per task typed by hand (other phrasings, values outside the generator's lists, optional
   values left out), each answered by the task's adapter and by the bare base.
Steps 1-5 run once per training seed (`--seeds`), each in its own home under --home, resumably: a seed
whose results are in benchmarks/results/convert/ for the same settings is read back, and a seed stopped
part way goes on where it stopped (the capture is kept, trained tasks are not retrained, a task part way
through resumes from its checkpoint, and scores already measured are read back). A seed takes longer than a session's machine lives: `--save` keeps
each unfinished seed's resumable files under benchmarks/results/convert/kept/ (committed), and the
next session's run starts from them (`save`; benchmarks/_carry.py); a seed that ends keeps its files there too, and
`--rescore` scores it again at later code from them (steps 1-5; its students are not retrained, and the gate's
verdicts are read back where nothing that decides them changed); a seed already scored at code that scores
alike (`SCORING` unchanged since its commit) is read back, so a rescore spread over sessions goes on. Each
result file names the commit that scored it. `--on base` trains the students on the bare base instead of on
top of the default `tools` adapter, for the comparison.

What the figures can show: whether the pipeline's students learn the task rather than the generator's
templates (step 5), and whether promotion survives a change of seed. What they cannot: the teacher is
scripted, so its answers are always right; real agents' traffic is more varied than four task types.

Prints a table, writes benchmarks/results/convert/{default,base}-sSEED.json as each seed ends, then
convert.json (every figure's mean and minimum over the seeds), .png and .md (the README's table;
benchmarks/convert_summary.py, which also makes them from the seeds finished so far); ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks import _carry, convert_summary, handwritten
from benchmarks._server import app_in_thread

RESULTS = Path(__file__).parent / "results"
KEPT = RESULTS / "convert" / "kept"  # each seed's files (the capture, its students): resumed, or scored again
# bumped when the pipeline trains or gates differently, so a seed's results (and its home) from before are
# not read back as this pipeline's: 2 = held-out values rather than calls, leans kept, stated enums, open names,
# e-mail fakes of many shapes; 3 = asks only for values every captured request states, a finished student
# reused only for the same encoded examples; 4 = values in the forms people write them, as the delivery task's
# dates were already: the calendar's dates and times (its teacher answers YYYY-MM-DD and HH:MM), the transfer's
# amounts (1,200.50, 1.200,50, 3k; the teacher answers the number) and references, "#" before an order id;
# 5 = students on the default adapter at lr 1e-3 (finetune.TrainConfig.lr); 6 = free text widened too
# (widen.opened: words crossed, a code's digits drawn again), never into a held-out call's value; 7 = person
# names in the workload (titles, references, a sentence more) and replaced by S2 (edgeslm.names); 8 = S2's
# names probe trained on more contexts (session 30), no injected name sharing a word with the fakes' lists;
# 9 = the tokens that decide a call's shape weigh 4 in the loss (finetune.TrainConfig.decisions), 96 steps
# with the shared prefix's gradient dropped, the cart's Spanish requests (synthetic._cart_es), Spanish
# requests with a transfer's reference or a delivery's window (synthetic.SPANISH_TAILS)
PIPELINE = 9
# bumped when only the gate judges differently: a seed's results are made again, but its home (capture,
# finished students, checkpoints) is kept and its students are evaluated again, not retrained. 2 = each
# held-out prompt evaluated whole (the verdict no longer depends on the prefix cache), and a text answer
# where a call was due is wrong (exact, tool name) rather than invalid
GATE = 2


def capture(calls: list[dict], settings) -> float:
    """S1 through the proxy; returns the wall time."""
    from openai import OpenAI

    from edgeslm.store.capture import CaptureStore
    from edgeslm.pipeline.proxy import create_proxy
    from benchmarks.teacher import create_teacher

    t0 = time.perf_counter()
    store = CaptureStore(settings.capture_db, key_env=settings.capture_key_env)
    with app_in_thread(create_teacher(calls)) as teacher, app_in_thread(create_proxy(teacher, store)) as proxy:
        agent = OpenAI(base_url=proxy + "/v1", api_key="sk-agent", max_retries=0, timeout=60)
        for i, c in enumerate(calls):
            kw = {"model": "teacher", "messages": c["messages"], "tools": c["tools"]}
            if i % 5 == 4:
                for _ in agent.chat.completions.create(**kw, stream=True):
                    pass
            else:
                agent.chat.completions.create(**kw)
    store.close()
    return time.perf_counter() - t0


def pii_scores(calls: list[dict], settings) -> dict:
    """Recall: injected values absent from the curated store. Precision: detections in the raw requests
    that overlap an injected value, over all detections (the detectors curate runs, the names finder and
    the full names it found anywhere in the capture included). Each also for person names alone: they come from the names finder's evaluation file, which
    its training left out."""
    from edgeslm import privacy as pii
    from edgeslm.pipeline import curate

    examples = curate.examples(settings.curated_db, **curate.at_rest(settings))
    curated = "\n".join(json.dumps(e) for e in examples)
    plain = "\n".join(s for e in examples for s in _strings(e))  # decoded: "\nAna" in JSON is "n" then "Ana"
    names = curate.names_finder(settings)
    if names is not None:  # as curation finds them: with the full names found anywhere in the capture
        from edgeslm.store.capture import CaptureStore

        store = CaptureStore(settings.capture_db, key_env=settings.capture_key_env)
        names = curate.store_names(store, names)
        store.close()
    injected = [(k, v) for c in calls for k, v in c["pii"]]
    # a name survives where it stands as a word ("Rose" in "Rosengasse" is no leak); other values anywhere
    survived = [(k, v) for k, v in injected if (re.search(r"(?<!\w)" + re.escape(v) + r"(?!\w)", plain)
                                                if k == pii.NAME else json.dumps(v)[1:-1] in curated)]
    found, tp = Counter(), Counter()
    by_kind = Counter()
    for c in calls:
        text = c["messages"][1]["content"]  # the user's request (the order task's second turn ends with a tool result)
        values = [v for _, v in c["pii"]]
        for start, end, kind in pii.find(text, names):
            hit = text[start:end]
            found[kind] += 1
            if any(hit in v or v in hit for v in values):
                tp[kind] += 1
            else:
                by_kind[kind] += 1
    named = [v for k, v in injected if k == pii.NAME]
    # replaced whole, but one of its words is still in the store (the probe found "Begoña" of "Begoña
    # Etxebarria"): a word of a fake (surrogates' lists) does not count
    from edgeslm.surrogates import FIRST, LAST

    ours = {w.capitalize() for w in FIRST + LAST}
    partly = [v for v in named if (pii.NAME, v) not in survived
              and any(len(w) >= 4 and w not in ours and json.dumps(w)[1:-1] in curated for w in v.split())]
    return {"injected": len(injected), "recall": 1 - len(survived) / max(len(injected), 1),
            "precision": sum(tp.values()) / max(sum(found.values()), 1), "missed": survived[:10],
            "false_positives_by_kind": dict(by_kind),
            "names": {"injected": len(named), "recall": 1 - sum(k == pii.NAME for k, _ in survived) / max(len(named), 1),
                      "precision": tp[pii.NAME] / max(found[pii.NAME], 1), "finder": names is not None,
                      "partly_left": len(partly), "partly_left_examples": partly[:10],
                      "missed": [v for k, v in survived if k == pii.NAME][:10]}}


def _strings(value):
    """Every string in a JSON value, decoded, and in the JSON a string holds (tool-call arguments)."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value
        if value.startswith(("{", "[")):
            try:
                yield from _strings(json.loads(value))
            except ValueError:
                pass


def truth(records: list[dict], calls: list[dict]) -> list[str]:
    """The true task of each curated record (call ids follow the order the calls were sent)."""
    return [calls[r["call_id"] - 1]["task"] for r in records]


def auto_serve(settings, fresh: list[dict], teacher_calls: list[dict]) -> dict:
    """Fresh calls for model "auto" through `serve` with the teacher as upstream: where each went,
    and whether its tool call was right."""
    from openai import OpenAI

    from benchmarks import synthetic
    from benchmarks.teacher import create_teacher
    from edgeslm.engine import Engine
    from edgeslm.serving.app import create_app

    where, right, lat = Counter(), Counter(), {"local": [], "teacher": []}
    with app_in_thread(create_teacher(teacher_calls)) as teacher:
        engine = Engine(settings.model_copy(update={"upstream": teacher}))
        try:
            with app_in_thread(create_app(engine)) as base:
                client = OpenAI(base_url=base + "/v1", api_key="x", max_retries=0, timeout=120)
                for c in fresh:
                    t0 = time.perf_counter()
                    raw = client.chat.completions.with_raw_response.create(model="auto", messages=c["messages"],
                                                                           tools=c["tools"], temperature=0)
                    kind = "teacher" if raw.headers.get("x-edgeslm-route", "").startswith("teacher") else "local"
                    lat[kind].append(time.perf_counter() - t0)
                    msg = raw.parse().choices[0].message
                    got = [{"name": t.function.name, "arguments": json.loads(t.function.arguments)} for t in msg.tool_calls or []]
                    where[kind] += 1
                    right[kind] += synthetic.answered(c, got, msg.content)
        finally:
            engine.close()
    return {"n": len(fresh), "local": where["local"], "teacher": where["teacher"],
            "local_correct": right["local"] / max(where["local"], 1),
            "teacher_correct": right["teacher"] / max(where["teacher"], 1),
            "local_p50_s": statistics.median(lat["local"]) if lat["local"] else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-task", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=None, help="training steps per task (default: the pipeline's)")
    ap.add_argument("--eval-limit", type=int, default=None, help="held-out calls per task for the gate")
    ap.add_argument("--fresh", type=int, default=25, help="fresh calls per task for the router and serve")
    ap.add_argument("--home", type=Path, default=None, help="where each seed's home is kept (default ~/.edgeslm-convert)")
    ap.add_argument("--on", choices=["default", "base"], default="default",
                    help="train the students on top of the model's default adapter (the pipeline's default) or on the bare base")
    ap.add_argument("--seed", type=int, default=0, help="the workload's seed")
    ap.add_argument("--tasks", choices=["all", "core"], default="all",
                    help="the workload's 8 task types, or the first 4 (weather, calendar, email, units)")
    ap.add_argument("--spanish", type=float, default=0.1, help="the share of requests written in Spanish")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds, one full run each")
    ap.add_argument("--save", action="store_true", help="keep each unfinished seed's resumable files under "
                    "benchmarks/results/convert/kept/ (to commit: the next session resumes from them)")
    ap.add_argument("--rescore", action="store_true", help="score each finished seed again at this code, from its "
                    "files under benchmarks/results/convert/kept/ (its students are not trained again)")
    ap.add_argument("--serve-only", action="store_true",
                    help="only step 4, against the pipeline already run in --home; updates convert.json")
    args = ap.parse_args()
    if args.serve_only:
        home = args.home or Path(tempfile.mkdtemp(prefix="edgeslm-convert-"))
        os.environ["EDGESLM_HOME"] = str(home)
        from edgeslm.config import Settings
        from benchmarks import synthetic

        tasks = synthetic.ALL if args.tasks == "all" else synthetic.CORE
        fresh = synthetic.workload(args.fresh, seed=args.seed + 1000, tasks=tasks, spanish=args.spanish)
        summary = json.loads((RESULTS / "convert.json").read_text())
        summary["serve_auto"] = auto_serve(Settings(threads=args.threads), fresh, fresh)
        (RESULTS / "convert.json").write_text(json.dumps(summary, indent=2))
        print(json.dumps(summary["serve_auto"]))
        return
    root = (args.home or Path.home() / ".edgeslm-convert").expanduser()
    args.code = _commit()  # the code this process runs, read now: the tree may change while it trains for hours
    if args.save:
        return save(root)
    runs = [seed_run(args, seed, root) for seed in args.seeds]
    summary = convert_summary.write(runs)
    print(f"\n{'task':<12}{'held-out exact per seed':>28}{'promoted':>20}{'hand-written student':>24}{'tools':>16}")
    for task, o in summary["over_seeds"]["tasks"].items():
        fmt = lambda xs: " ".join("-" if x is None else f"{x:.2f}" for x in xs)  # noqa: E731
        print(f"{task:<12}{fmt(o['exact_with']):>28}{str(o['promoted']):>20}{fmt(o['handwritten_with']):>24}"
              f"{fmt(o['handwritten_tools']):>16}")
    for task, o in summary["over_seeds"]["tasks"].items():
        if o["why"]:
            print(f"{task}: promoted in some seeds only; " + "; ".join(f"seed {s}: {w}" for s, w in zip(args.seeds, o["why"])))
    for k, v in summary["over_seeds"]["figures"].items():
        print(f"{k}: mean {v['mean']}, min {v['min']}")
    print(json.dumps(summary))


def seed_run(args, seed: int, root: Path) -> dict:
    """One training seed in its own home under `root`, resumable: a seed whose results are written for
    these settings is read back (or, with --rescore, scored again from its kept files: its students are
    not retrained); a home left part way through by the same settings goes on (the capture is kept,
    finished tasks are not retrained, a task part way through resumes from its checkpoint)."""
    import shutil

    on = "default" if args.on == "default" else "base"
    stamp = {"pipeline": PIPELINE, "gate": GATE, "per_task": args.per_task, "tasks": args.tasks, "spanish": args.spanish, "steps": args.steps,
             "eval_limit": args.eval_limit, "fresh": args.fresh, "workload_seed": args.seed, "seed": seed, "on": on}
    done = RESULTS / "convert" / f"{on}-s{seed}.json"
    finished = json.loads(done.read_text()) if done.is_file() else {}
    home = root / f"{on}-seed{seed}"
    kept = KEPT / f"{on}-s{seed}"  # left by an earlier session (--save), or by the seed's end
    if finished.get("settings") == stamp:
        if not getattr(args, "rescore", False) or not (kept / "run.json").is_file() or _scored_alike(finished.get("code")):
            print(f"=== seed {seed} ({on}): done at {finished.get('code')}, read from {done}", flush=True)
            return finished
        shutil.rmtree(home, ignore_errors=True)  # scored again from what was kept, not from a home's state
        print(f"=== seed {seed} ({on}): scoring again at this code from {kept}", flush=True)
    if (home / "run.json").is_file() and not _trains_alike(json.loads((home / "run.json").read_text()), stamp):
        shutil.rmtree(home)
    if not (home / "run.json").is_file() and (kept / "run.json").is_file():
        if _trains_alike(json.loads((kept / "run.json").read_text()), stamp):
            _carry.unpack(kept, home)
            print(f"=== seed {seed} ({on}): resuming from {kept}", flush=True)
        else:
            print(f"=== seed {seed} ({on}): {kept} was saved for other settings; starting afresh", flush=True)
    home.mkdir(parents=True, exist_ok=True)
    (home / "run.json").write_text(json.dumps(stamp))
    os.environ["EDGESLM_HOME"] = str(home)
    print(f"=== training seed {seed} on the {on}, home {home}", flush=True)
    run = {**one_run(args, seed, home), "settings": stamp, "code": getattr(args, "code", None)}
    done.parent.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps(run, indent=2))
    _keep(home, kept)  # a finished seed's files stay too: --rescore scores it again at later code
    return run


def _commit() -> str | None:
    """The commit the scoring code is at (with "+" where the tree has changes), or None outside git."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=RESULTS.parent).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "edgeslm", "benchmarks/*.py"], capture_output=True,
                               text=True, cwd=RESULTS.parent.parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+" if dirty else "")


# What decides a seed's scores once its students are trained: the serving code, its shipped adapter, the
# catalog, and the benchmark modules that write the calls and grade them. convert.py only runs the steps.
SCORING = ["edgeslm", "models.toml", "benchmarks/data", "benchmarks/handwritten.py", "benchmarks/synthetic.py",
           "benchmarks/teacher.py", "benchmarks/_server.py"]


def _scored_alike(code: str | None) -> bool:
    """Whether a seed scored at commit `code` would score the same now: no change to SCORING between that
    commit and this tree (so --rescore over several sessions goes on where it stopped)."""
    import subprocess

    if not code or code.endswith("+"):
        return False
    try:
        return subprocess.run(["git", "diff", "--quiet", code, "--", *SCORING], cwd=Path(__file__).parent.parent).returncode == 0
    except OSError:
        return False


def _trains_alike(old: dict, new: dict) -> bool:
    """Whether a home stamped `old` trains as `new` does (it may gate differently)."""
    return {k: v for k, v in old.items() if k != "gate"} == {k: v for k, v in new.items() if k != "gate"}


def save(root: Path) -> None:
    """Each unfinished seed's resumable files, to commit, under benchmarks/results/convert/kept/ (`_keep`). Stop the
    run first: a checkpoint is swapped whole as it trains."""
    for home in sorted(root.iterdir() if root.is_dir() else []):
        if not re.fullmatch(r"(default|base)-seed\d+", home.name) or not (home / "run.json").is_file():
            continue
        on, _, seed = home.name.rpartition("-seed")
        stamp = json.loads((home / "run.json").read_text())
        done = RESULTS / "convert" / f"{on}-s{seed}.json"
        if done.is_file() and json.loads(done.read_text()).get("settings") == stamp:
            continue  # kept as it finished
        _keep(home, KEPT / f"{on}-s{seed}")


def _keep(home: Path, keep: Path) -> None:
    """A seed's files, to commit, in `keep`: the stamp, the capture (calls, curated store, fakes' salt: the training
    data is then the same, so a finished task's fingerprint matches), each finished task's student (float16) and the
    task part way through's checkpoint (bfloat16), the scores already measured (pipeline/scores.json: the
    selection's zero-shot scores and the gate's, read back where nothing that decides them changed;
    evaluate.remembered) and the names S2 found (cache/names: curation runs again, ten minutes with the
    names model); the rest (clusters, the stacked and served adapters) the resumed run makes again. See
    benchmarks/_carry.py for what the narrowing costs."""
    files, narrow = [Path("run.json"), Path("captured.json"), Path("capture"), Path("pipeline/scores.json"),
                     Path("cache/names")], {}
    for peft in sorted((home / "pipeline" / "runs").glob("*/peft")):
        rel = peft.relative_to(home)
        if (peft / "checkpoint").is_dir():  # training (again, where a record of an older run is left)
            files.append(rel / "checkpoint")
            narrow[rel / "checkpoint"] = "bfloat16"
        elif (peft / "edgeslm_training.json").is_file():
            files += [rel / f for f in ("edgeslm_training.json", "adapter_config.json", "adapter_model.safetensors")]
            narrow[rel] = "float16"
    n = _carry.pack(home, keep, files, narrow)
    print(f"{home.name}: {len([r for r in narrow.values() if r == 'float16'])} finished students, "
          f"{len([r for r in narrow.values() if r == 'bfloat16'])} checkpoints, {n / 2**20:.1f} MiB kept in {keep}")


def _tenths(label: str, done: int, total: int, note: str) -> None:
    """A long stage's progress in the log, each tenth of the way."""
    if total and (done == total or done * 10 // total != (done - 1) * 10 // total):
        print(f"  {label} {done}/{total} {note}".rstrip(), flush=True)


def one_run(args, seed: int, home: Path) -> dict:
    from sklearn.metrics import adjusted_rand_score

    import shutil

    from edgeslm.config import Settings
    from benchmarks import synthetic
    from edgeslm.pipeline import convert, curate, finetune
    from edgeslm.router import Router

    # a seed resumed weeks later (benchmarks/results/convert/kept/) keeps every captured call
    settings = Settings(threads=args.threads, capture_retention_days=0)
    task_types = synthetic.ALL if args.tasks == "all" else synthetic.CORE
    calls = synthetic.workload(args.per_task, seed=args.seed, tasks=task_types, spanish=args.spanish)
    fresh = synthetic.workload(args.fresh, seed=args.seed + 1000, tasks=task_types, spanish=args.spanish)
    marker = home / "captured.json"
    if marker.is_file():
        capture_s = json.loads(marker.read_text())["wall_s"]
        print(f"S1: kept from an earlier start ({len(calls)} calls)", flush=True)
    else:
        print(f"S1: {len(calls)} calls through the proxy to the scripted teacher...", flush=True)
        shutil.rmtree(settings.capture_db.parent, ignore_errors=True)  # a capture cut short is sent again whole
        capture_s = capture(calls, settings)
        marker.write_text(json.dumps({"wall_s": capture_s}))
    on_default = args.on == "default"
    cfg = finetune.TrainConfig(seed=seed, on_default=on_default, lr=finetune.TrainConfig.lr if on_default else finetune.BASE_LR)
    if args.steps:
        cfg.max_steps = args.steps
    t0 = time.perf_counter()
    result = convert.run(settings, train=cfg, eval_limit=args.eval_limit, say=lambda m: print(m, flush=True), bar=_tenths)
    convert_s = time.perf_counter() - t0
    records = curate.records(settings.curated_db, **curate.at_rest(settings))
    true = truth(records, calls)
    ari = adjusted_rand_score(true, result["clusters"]["assignments"])
    pii = pii_scores(calls, settings)
    router = Router(settings.router_path)
    p = router.scores([c["messages"] for c in fresh])
    majority = {}
    for t in result["tasks"]:
        members = [true[i] for i, a in enumerate(result["clusters"]["assignments"]) if a == t["cluster"]]
        majority[t["cluster"]] = Counter(members).most_common(1)[0][0]
    predicted = [majority[router.classes[i]["cluster"]] for i in p.argmax(axis=1)]
    router_acc = sum(a == c["task"] for a, c in zip(predicted, fresh)) / len(fresh)
    print("S6: fresh calls for model 'auto' through serve...", flush=True)
    served = auto_serve(settings, fresh, fresh)
    tasks = [{"task": t["task"], "true_task": majority[t["cluster"]], "size": t["size"], "held_out": t.get("held_n"),
              "exact_without": (t["select"]["zero_shot"].get(t.get("model")) or {}).get("exact"),
              "exact_with": (t.get("student") or {}).get("exact"), "ast_with": (t.get("student") or {}).get("ast"),
              "valid_with": (t.get("student") or {}).get("valid"), "promoted": t.get("promoted"),
              "latency_p50_s": (t.get("student") or {}).get("latency_p50_s"),
              "train_steps": (t.get("training") or {}).get("steps"), "train_s": (t.get("training") or {}).get("train_s"),
              "loss": [(t.get("training") or {}).get("loss_first"), (t.get("training") or {}).get("loss_last")],
              "misses": (t.get("student") or {}).get("misses"), "why": t.get("why")}
             for t in result["tasks"]]
    print(f"\n{'task':<16}{'calls':>6}{'held':>6}{'exact w/o':>11}{'exact with':>11}{'AST':>7}{'valid':>7}{'p50 s':>7}  promoted")
    for t in tasks:
        print(f"{t['task']:<16}{t['size']:>6}{t['held_out'] or 0:>6}{(t['exact_without'] or 0):>11.3f}"
              f"{(t['exact_with'] or 0):>11.3f}{(t['ast_with'] or 0):>7.3f}{(t['valid_with'] or 0):>7.3f}"
              f"{(t['latency_p50_s'] or 0):>7.2f}  {t['promoted']}")
    stages = {"capture": round(capture_s, 1), **result["stages"], "convert_total": round(convert_s, 1)}
    print(f"\nPII recall {pii['recall']:.4f} (of {pii['injected']} injected), precision {pii['precision']:.4f}; "
          f"names alone {pii['names']['recall']:.4f} / {pii['names']['precision']:.4f} (of {pii['names']['injected']}); "
          f"cluster ARI {ari:.3f} (k={result['clusters']['k']}); router accuracy {router_acc:.3f} on "
          f"{len(fresh)} fresh calls; auto via serve: {served['local']} local ({served['local_correct']:.1%} right), "
          f"{served['teacher']} to the teacher")
    print("stage wall times (s): " + ", ".join(f"{k} {v}" for k, v in stages.items()))
    print("hand-written calls...", flush=True)
    hand = handwritten.handwritten(settings, result, majority, task_types)
    for task, row in hand.items():
        with_ = "-" if row["exact_with"] is None else f"{row['exact_with']:.2f}"
        print(f"  {task}: exact with adapter {with_}, bare base {row['exact_without']:.2f} (n={row['n']})")
    import platform

    return {"benchmark": "convert", "machine": platform.node(), "threads": args.threads, "seed": seed,
            "per_task": args.per_task, "calls": len(calls), "pii": pii, "ari": ari, "k": result["clusters"]["k"],
            "router_accuracy": router_acc, "router_held_out": result.get("router"), "serve_auto": served,
            "tasks": tasks, "handwritten": hand, "stages_s": stages, "report": result["files"][:2]}


if __name__ == "__main__":
    main()
