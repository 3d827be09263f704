"""The tasks of a clustering as the later stages see them: a name fit for the adapter store, the
cluster's members and their train / held-out split; plus the single-stage commands (`edgeslm select`,
`edgeslm finetune`) that work from the last saved clustering.
"""

from __future__ import annotations

import json
import re

from edgeslm.errors import InvalidRequest, NotFound
from edgeslm.pipeline import curate, data


def task_name(label: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9_-]+", "-", label.lower()).strip("-_")[:56] or "task"
    name, i = base, 2
    while name in taken:
        name, i = f"{base}-{i}", i + 1
    taken.add(name)
    return name


def layout(examples: list[dict], clusters: dict) -> list[dict]:
    """[{"cluster", "label", "task", "size", "train": [index], "held": [index]}] for a clustering of
    `examples` (data.gate_split: no training call uses a value held out for the gate)."""
    taken: set[str] = set()
    out = []
    for c in clusters["clusters"]:
        members = [i for i, a in enumerate(clusters["assignments"]) if a == c["id"]]
        train, held = data.gate_split(members, examples)
        out.append({"cluster": c["id"], "label": c["label"], "task": task_name(c["label"], taken), "size": c["size"],
                    "train": train, "held": held})
    return out


def saved(settings) -> tuple[list[dict], list[dict]]:
    """(curated examples, tasks) of the last saved clustering; refuses a clustering of other data."""
    path = settings.home / "pipeline" / "clusters.json"
    if not path.is_file():
        raise InvalidRequest("no clustering yet: run edgeslm cluster (or edgeslm convert run) first", param="cluster")
    clusters = json.loads(path.read_text())
    examples = curate.examples(settings.curated_db, **curate.at_rest(settings))
    if len(clusters["assignments"]) != len(examples):
        raise InvalidRequest("the curated calls changed since the last clustering; run edgeslm cluster again",
                             param="cluster")
    return examples, layout(examples, clusters)


def find(tasks: list[dict], name: str) -> dict:
    for t in tasks:
        if name in (t["task"], str(t["cluster"])):
            return t
    raise NotFound(f"unknown cluster '{name}'; the clusters are: "
                   + ", ".join(f"{t['cluster']} ({t['task']})" for t in tasks), param="cluster")


def select_all(settings, target: float, licenses: tuple, limit: int, profile: str) -> dict:
    from edgeslm.engine import Engine
    from edgeslm.pipeline import select

    examples, tasks = saved(settings)
    engine = Engine(settings)
    try:
        kept, table = select.candidates(settings, engine.catalog, licenses, profile)
        rows = [{"task": t["task"], "cluster": t["cluster"],
                 **select.choose(engine, settings, kept, [examples[i] for i in t["held"]][:limit], target)}
                for t in tasks]
    finally:
        engine.close()
    return {"candidates": table, "tasks": rows}


def finetune_one(settings, cluster: str, model: str, cfg, bar=None) -> dict:
    """Train the task's adapter, land it in the store under the task's name, score it on held-out calls."""
    from edgeslm.engine import Engine
    from edgeslm.pipeline import evaluate, finetune, rephrase, stack, widen
    from edgeslm.store.adapters import AdapterStore

    examples, tasks = saved(settings)
    t = find(tasks, cluster)
    engine = Engine(settings)
    try:
        worker = engine.worker(model)
        base = engine.catalog.ensure_local(worker.entry)
        train = [examples[i] for i in t["train"]]
        pairs, dev_pairs = finetune.encode_split(worker, train, settings, cfg,
                                                 lambda fit: widen.widened(fit, cfg.swaps, cfg.seed, cfg.drop, cfg.ask, cfg.enums,
                                                                           cfg.reword, rephrase.teacher(settings),
                                                                           [examples[i] for i in t["held"]], cfg.bare)[0])
        out = settings.home / "pipeline" / "runs" / t["task"] / "peft"
        step = (lambda s, n, loss: bar(f"finetune {t['task']}", s, n, f"loss {loss:.3f}")) if bar else None
        store = AdapterStore(settings.adapters_dir)
        record, out = stack.train(settings, store, worker.entry, base, pairs, out, cfg, step, {
            "training_hash": data.training_hash(train), "base": worker.entry.id, "task": t["task"]}, dev_pairs)
        try:
            store.remove(worker.entry.id, t["task"])
        except NotFound:
            pass
        store.add(worker.entry.id, worker.entry.sha256, base, t["task"], out,
                  sampling=stack.sampling(store, worker.entry) if cfg.on_default else None)
        on_eval = (lambda s, n: bar(f"evaluate {t['task']}", s, n, "")) if bar else None
        scores = evaluate.run(worker, [examples[i] for i in t["held"]], settings, adapter=t["task"], progress=on_eval)
        ok, why = evaluate.gate(scores)
    finally:
        engine.close()
    return {"task": t["task"], "base": worker.entry.id, "training": record,
            "scores": {k: v for k, v in scores.items() if k != "rows"}, "gate": why, "promoted": ok}
