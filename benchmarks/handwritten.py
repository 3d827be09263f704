"""Step 5 of `benchmarks.convert`: the students on requests written apart from the generator.

`benchmarks/data/convert_handwritten.jsonl` holds 15 requests per task type, typed by hand (other phrasings,
values outside the generator's lists, optional values left out). Each is answered by the task's promoted
student, by the model's default (the shipped `tools` adapter) and by the bare base. Owns that scoring and
the cache of the default's and the base's answers (benchmarks/results/convert/handwritten_baselines.json),
which are the same in every seed.

`benchmarks/data/convert_dev.jsonl` holds 20 more per task type, typed apart from both the generator and
the hand-written file, to choose a pipeline change on: `python -m benchmarks.handwritten --home HOME`
scores the students a convert home holds on it and prints their misses. The hand-written file grades;
the dev file never does (a change chosen on it is judged on the other).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
HANDWRITTEN = Path(__file__).parent / "data" / "convert_handwritten.jsonl"
DEV = Path(__file__).parent / "data" / "convert_dev.jsonl"


def rows(path: Path) -> list[dict]:
    """The requests a JSONL file of them holds (HANDWRITTEN, DEV)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def handwritten(settings, result: dict, majority: dict, tasks: list[str]) -> dict:
    """Exact match on the hand-written calls, per task, of each task's student (its promoted adapter), of
    the model's default (the `tools` adapter) and of the bare base. A request with a tool result (the
    order task) is right when the call is, and the answer to the result then states its facts."""
    from benchmarks import synthetic
    from edgeslm.engine import Engine
    from edgeslm.pipeline.evaluate import served_code
    from edgeslm.store.adapters import AdapterStore

    items = [i for i in rows(HANDWRITTEN) if i["task"] in tasks]
    adapters = {majority[t["cluster"]]: t.get("adapter") for t in result["tasks"] if t.get("promoted")}
    tools = [synthetic.TOOLS[t] for t in tasks]
    engine = Engine(settings)
    out: dict = {}
    cache_path = RESULTS / "convert" / "handwritten_baselines.json"
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    try:
        worker = engine.worker(None)
        default = worker.entry.default_adapter
        # the default and the bare base answer the same in every seed (greedy): each answer is kept by what decides it (request,
        # offered tools, model file, the default adapter's file and sampling defaults, and the serving code: the leans change)
        manifest = AdapterStore(settings.adapters_dir).get(worker.entry.id, default).manifest if default else {}
        ident = worker.entry.sha256 + manifest.get("adapter_sha256", "") + json.dumps(manifest.get("sampling"), sort_keys=True) + served_code()
        for n, item in enumerate(items):
            if n % 20 == 0:
                print(f"  hand-written {n}/{len(items)}", flush=True)
            row = out.setdefault(item["task"], {"n": 0, "with": 0, "tools": 0, "without": 0, "misses": [],
                                                "adapter": adapters.get(item["task"])})
            row["n"] += 1
            for label, adapter in (("with", adapters.get(item["task"])), ("tools", None), ("without", "none")):
                if label == "with" and adapter is None:
                    continue
                key = hashlib.sha256(json.dumps([item, tools, label, ident]).encode()).hexdigest()
                if label != "with" and key in cache:
                    ok, got = cache[key]
                else:
                    ok, got = _answer_right(worker, settings, tools, item, adapter)
                    if label != "with":
                        cache[key] = [ok, got]
                row[label] += ok
                if not ok and label == "with" and len(row["misses"]) < 5:
                    row["misses"].append({"request": item["request"], "got": got,
                                          "want": item.get("calls") or [item["call"]]})
    finally:
        engine.close()
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache_path.write_text(json.dumps(cache))
    for row in out.values():
        # a task without a promoted adapter has no student of its own: None, not 0
        row["exact_with"] = row.pop("with") / row["n"] if row["adapter"] else None
        row["exact_tools"] = row.pop("tools") / row["n"]  # the model's default (the shipped `tools` adapter)
        row["exact_without"] = row.pop("without") / row["n"]  # the bare base
    return out


def _answer_right(worker, settings, tools: list[dict], item: dict, adapter: str | None) -> tuple[bool, object]:
    from benchmarks import synthetic
    from edgeslm.pipeline import data

    messages = [{"role": "system", "content": synthetic.SYSTEM}, {"role": "user", "content": item["request"]}]
    want = item.get("calls") or [item["call"]]
    g = worker.run(*data.request({"messages": messages, "tools": tools}, settings), adapter=adapter, fresh=True, pin=True)
    got = [{"name": c.name, "arguments": json.loads(c.arguments)} for c in g.tool_calls]
    if not data.exact(got, want) or "result" not in item:
        return data.exact(got, want), got
    messages += synthetic.result_turns(want[0], item["result"], "call_1")
    g = worker.run(*data.request({"messages": messages, "tools": tools}, settings), adapter=adapter, fresh=True, pin=True)
    return not g.tool_calls and data.states(g.content, item["answer_must_contain"]), g.content


def main() -> None:
    import argparse
    import os

    ap = argparse.ArgumentParser(description="The students a convert home holds, on the dev requests")
    ap.add_argument("--home", type=Path, required=True, help="a seed's home, e.g. ~/.edgeslm-convert/default-seed0")
    ap.add_argument("--tasks", nargs="+", default=None, help="task types (default: each with a student in the home)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.environ["EDGESLM_HOME"] = str(args.home.expanduser())
    from benchmarks import synthetic

    bad = sorted(set(args.tasks or ()) - set(synthetic.ALL))
    if bad:  # before the model loads
        raise SystemExit(f"unknown task type(s) {bad}; choose from {synthetic.ALL}")
    from edgeslm.config import Settings
    from edgeslm.engine import Engine
    from edgeslm.store.adapters import AdapterStore

    settings = Settings(threads=args.threads)
    engine = Engine(settings)
    try:
        worker = engine.worker(None)
        held = set(AdapterStore(settings.adapters_dir).tasks(worker.entry.id))
        by_tool = {synthetic.TOOLS[t]["function"]["name"]: t for t in synthetic.ALL}
        tasks = args.tasks or [by_tool[n] for n in sorted(held) if n in by_tool]
        tools = [synthetic.TOOLS[t] for t in synthetic.ALL]
        items = rows(DEV)
        for task in tasks:
            name = synthetic.TOOLS[task]["function"]["name"]
            if name not in held:
                print(f"{task}: no student ({name}) in {args.home}")
                continue
            mine = [i for i in items if i["task"] == task]
            right = 0
            for item in mine:
                ok, got = _answer_right(worker, settings, tools, item, name)
                right += ok
                if not ok:
                    print(f"  miss: {item['request']!r} -> {json.dumps(got, ensure_ascii=False)}", flush=True)
            print(f"{task}: {right}/{len(mine)} dev requests exact ({name})", flush=True)
    finally:
        engine.close()


if __name__ == "__main__":
    main()
