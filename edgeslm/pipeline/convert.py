"""`edgeslm convert run`: the whole conversion, S1's capture → curate → cluster → select → fine-tune →
gate → router, and again later when use drifts.

Owns the order of the stages, their timing, the pipeline's state between runs
(`EDGESLM_HOME/pipeline/state.json`) and the drift rule. A later run retrains when the current router
is unsure about more than `drift_limit` of the calls captured since the last run, or when clustering
finds a task it did not know; tasks whose training data did not change keep their adapters. The
report (JSON, Markdown, charts) is report.py's.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from edgeslm.errors import InvalidRequest, NotFound
from edgeslm.pipeline import cluster as clustering
from edgeslm.pipeline import curate as curation
from edgeslm.pipeline import data, evaluate, finetune, rephrase, report, route, select, stack, widen
from edgeslm.pipeline import tasks as layouts
from edgeslm.store.adapters import AdapterStore

DRIFT_LIMIT = 0.1


def pipeline_dir(settings) -> Path:
    return settings.home / "pipeline"


class Stages:
    """Wall time of each stage, and a line per stage on the progress callback."""

    def __init__(self, say):
        self.times, self.say = {}, say

    def __call__(self, name: str):
        stages = self

        class _Timer:
            def __enter__(self):
                stages.say(f"{name}...")
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                stages.times[name] = stages.times.get(name, 0.0) + time.perf_counter() - self.t0
                return False

        return _Timer()


def run(settings, *, k: int | None = None, target: float = select.TARGET, threshold: float = route.THRESHOLD,
        licenses=select.LICENSES, profile: str = select.PROFILE, train: finetune.TrainConfig | None = None,
        zero_shot_limit: int | None = 20,
        eval_limit: int | None = None, force: bool = False, drift_limit: float = DRIFT_LIMIT,
        teacher_usd_per_mtok: float = 1.0, say=lambda msg: None, bar=None) -> dict:
    """Run the pipeline; returns the report (also saved under EDGESLM_HOME/pipeline/report/)."""
    from edgeslm.engine import Engine

    train = train or finetune.TrainConfig()
    stages, out = Stages(say), pipeline_dir(settings)
    state_file = out / "state.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    with stages("curate"):
        curated = curation.curate(settings.capture_db, settings.curated_db, **curation.at_rest(settings),
                                  names=curation.names_finder(settings),
                                  progress=(lambda i, n: bar("curate", i, n, "")) if bar else None)
        records = curation.records(settings.curated_db, **curation.at_rest(settings))
    examples = [r["example"] for r in records]
    with stages("cluster"):
        clusters = clustering.cluster(examples, k=k)
        clustering.save(clusters, out / "clusters.json")
    labels = clusters["assignments"]
    tasks = layouts.layout(examples, clusters)
    splits = {t["cluster"]: (t.pop("train"), t.pop("held")) for t in tasks}
    known = {t["label"] for t in state.get("tasks", [])}
    new_calls = [r["example"] for r in records if r["call_id"] > state.get("last_call_id", 0)]
    with stages("drift"):
        d = route.drift(settings.router_path, new_calls) if state else {"unsure": None, "n": len(new_calls)}
    d["new_tasks"] = sorted({t["label"] for t in tasks} - known) if state else []
    d["retrain"] = bool(force or not state or d["new_tasks"] or (d["unsure"] or 0) > drift_limit)
    d["limit"] = drift_limit
    result = {"created": time.time(), "curate": curated, "clusters": clusters, "drift": d, "tasks": tasks,
              "stages": stages.times, "target": target, "teacher_usd_per_mtok": teacher_usd_per_mtok}
    if not d["retrain"]:
        say(f"no drift: {d['unsure'] or 0:.1%} unsure routes (limit {drift_limit:.0%}), no new task; nothing retrained")
        result["tasks"] = state.get("tasks", tasks)
        result["router"] = state.get("router")
        return _finish(settings, result, state, records)

    engine = Engine(settings)
    try:
        with stages("select"):
            kept, table = select.candidates(settings, engine.catalog, licenses, profile)
            result["candidates"] = table
            for t in tasks:
                held = [examples[i] for i in splits[t["cluster"]][1]][:zero_shot_limit]
                t.update(train_n=len(splits[t["cluster"]][0]), held_n=len(splits[t["cluster"]][1]))
                t["select"] = select.choose(engine, settings, kept, held, target, remember=out / "scores.json")
                say(f"  {t['task']}: {t['select']['reason']}")
        store = AdapterStore(settings.adapters_dir)
        previous = {p["task"]: p for p in state.get("tasks", [])}
        for t in tasks:
            _train_and_gate(engine, settings, store, t, examples, splits[t["cluster"]], train, eval_limit,
                            previous.get(t["task"]), stages, say, bar)
        with stages("router"):
            classes = [{"cluster": t["cluster"], "label": t["label"], "task": t.get("adapter"),
                        "base": t.get("model"), "promoted": bool(t.get("promoted")), "reason": t.get("why")}
                       for t in tasks]
            train_idx = sorted(i for s in splits.values() for i in s[0])
            held_idx = sorted(i for s in splits.values() for i in s[1])
            spec, metrics = route.train(examples, labels, classes, train_idx, held_idx, threshold)
            route.save(spec, settings.router_path)
            result["router"] = {k_: v for k_, v in metrics.items() if k_ != "predicted"} | {"threshold": threshold}
    finally:
        engine.close()
    _teacher(result, records, splits, teacher_usd_per_mtok)
    return _finish(settings, result, state, records)


def _train_and_gate(engine, settings, store, t, examples, split, cfg, eval_limit, before, stages, say, bar) -> None:
    """S5 and the gate for one task: train on its split, evaluate on its held-out split, promote or not."""
    choice = t["select"]
    t["model"] = choice["model"]
    if choice["model"] is None:
        t.update(promoted=False, why=choice["reason"])
        return
    held = [examples[i] for i in split[1]][:eval_limit]
    worker = engine.worker(choice["model"])
    if not choice["finetune"]:
        t.update(promoted=True, adapter=None, why=choice["reason"], student=choice["zero_shot"][choice["model"]])
        return
    train_examples = [examples[i] for i in split[0]]
    digest = data.training_hash(train_examples)
    t["training_hash"] = digest
    entry = worker.entry
    keeps = stack.sampling(store, entry) if cfg.on_default else None  # the default adapter's leans
    base, candidate, regated = engine.catalog.ensure_local(entry), f"{t['task']}-candidate", False
    if before and before.get("training_hash") == digest and before.get("promoted") and before.get("adapter"):
        kept = store.get(entry.id, before["adapter"], entry.sha256) if store.has(entry.id, before["adapter"]) else None
        t.update({k: before[k] for k in ("adapter", "promoted", "why", "student", "training", "training_examples") if k in before})
        if kept is None or (kept.manifest.get("sampling") or None) == (keeps or None):
            say(f"  {t['task']}: training data unchanged, adapter kept")
            return
        # the default adapter's sampling changed since the student was made: the student takes it where the
        # gate passes it at it, else it stays at the sampling it passed at
        say(f"  {t['task']}: training data unchanged; the default adapter's sampling changed, gated again")
        peft_dir = pipeline_dir(settings) / "runs" / t["task"] / "kept"
        shutil.rmtree(peft_dir, ignore_errors=True)
        shutil.copytree(kept.dir / "peft", peft_dir)
        _replace(store, entry, base, candidate, peft_dir, keeps)
        regated = True
    if not regated:
        with stages("finetune"):
            pairs, dev_pairs = finetune.encode_split(worker, train_examples, settings, cfg, _widen(cfg, t, rephrase.teacher(settings),
                                                                                                      [examples[i] for i in split[1]]))
            peft_dir = pipeline_dir(settings) / "runs" / t["task"] / "peft"
            shutil.rmtree(peft_dir.parent / "final", ignore_errors=True)
            step = (lambda s, n, loss: bar(f"finetune {t['task']}", s, n, f"loss {loss:.3f}")) if bar else None
            record, peft_dir = stack.train(settings, store, entry, base, pairs, peft_dir, cfg, step,
                                           {"training_hash": digest, "base": entry.id, "task": t["task"]}, dev_pairs)
            t["training"] = {k: v for k, v in record.items() if k != "losses"} | {"losses": record["losses"]}
            # what it was taught to ask, and the kind of each parameter's values, for its training record (decoding/asks.py)
            said = {k: v for k in ("asks", "kinds") if (v := t.pop(k, None))}
            if said and (trained := peft_dir / "edgeslm_training.json").is_file():
                trained.write_text(json.dumps({**json.loads(trained.read_text()), **said}))
            _replace(store, entry, base, candidate, peft_dir, keeps)
    with stages("evaluate"):
        on_eval = (lambda s, n: bar(f"evaluate {t['task']}", s, n, "")) if bar else None
        scores = evaluate.remembered(pipeline_dir(settings) / "scores.json", worker, held, settings, adapter=candidate,
                                     progress=on_eval)
        t["student"] = {k: v for k, v in scores.items() if k != "rows"}
        # what the report and the benchmark show of why a student fell short
        t["student"]["misses"] = [{k: r[k] for k in ("request", "got", "want")} for r in scores["rows"] if not r["exact"]][:5]
        ok, why = evaluate.gate(scores)
        t.update(promoted=ok, why=why)
        if ok:
            _replace(store, entry, base, t["task"], peft_dir, keeps)
            t["adapter"] = t["task"]
        elif regated:
            t.update({k: before[k] for k in ("promoted", "student")})
            t["why"] = f"{before['why']}; kept at its own sampling, refused at the default adapter's new one: {why}"
        store.remove(entry.id, candidate)
        say(f"  {t['task']}: exact {scores['exact']:.2f} on {scores['n']} held-out; {why}")


def _widen(cfg, t: dict, teacher: dict | None = None, held: Sequence[dict] = ()):
    """The captured training calls plus `cfg.swaps` value-swapped copies of each, and copies with an optional
    value left out or a required one missing and asked for, or the request reworded (widen.widened); the
    counts go into the report."""

    def grown(fit: list[dict]) -> list[dict]:
        out, added = widen.widened(fit, cfg.swaps, cfg.seed, cfg.drop, cfg.ask, cfg.enums, cfg.reword, teacher, held,
                                   cfg.bare)
        t["training_examples"] = {"capture": len(fit), "augmented": added}
        t["asks"], t["kinds"] = widen.asks(fit) if cfg.ask else [], widen.kinds(fit)
        return out

    return grown


def _replace(store, entry, base: Path, task: str, peft_dir: Path, sampling: dict | None = None) -> None:
    try:
        store.remove(entry.id, task)
    except NotFound:
        pass
    store.add(entry.id, entry.sha256, base, task, peft_dir, sampling=sampling)


def _teacher(result: dict, records: list[dict], splits: dict, price: float) -> None:
    """The teacher's side of the comparison, from the captured calls of each task's held-out split."""
    for t in result["tasks"]:
        lat = [records[i]["latency_s"] for i in splits[t["cluster"]][1] if records[i]["latency_s"] is not None]
        t["teacher"] = {"latency_p50_s": statistics.median(lat) if lat else None, "n": len(lat)}
        s = t.get("student") or {}
        if s.get("n"):
            per_call = s["tokens"] / s["n"]
            t["cost"] = {"tokens_per_call": per_call, "teacher_usd_per_1k_calls": per_call * price / 1000,
                         "student_usd_per_1k_calls": 0.0 if t.get("promoted") else per_call * price / 1000}


def _finish(settings, result: dict, state: dict, records: list[dict]) -> dict:
    result["stages"] = {k: round(v, 2) for k, v in result["stages"].items()}
    out = pipeline_dir(settings)
    result["files"] = [str(p) for p in report.save(result, out / "report")]
    new_state = {"last_call_id": max((r["call_id"] for r in records), default=0), "k": result["clusters"]["k"],
                 "tasks": result["tasks"], "router": result.get("router"), "updated": time.time()}
    tmp = out / "state.partial"
    tmp.write_text(json.dumps(new_state))
    tmp.replace(out / "state.json")
    return result


def check_cluster(settings, name: str) -> dict:
    """A task of the last run by task name or cluster id (for `edgeslm convert show`)."""
    state_file = pipeline_dir(settings) / "state.json"
    if not state_file.is_file():
        raise InvalidRequest("no conversion has run yet; run edgeslm convert run", param="cluster")
    return layouts.find(json.loads(state_file.read_text())["tasks"], name)
