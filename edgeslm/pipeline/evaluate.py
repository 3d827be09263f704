"""Evaluate and gate: a student (a served model, with or without a task adapter) against the teacher's
answers on held-out curated examples.

Owns the metrics and the promotion rule. Each example runs through the same engine path `serve` uses
(chat template, grammar-constrained tool calls, temperature 0), in process, so that a verdict depends
on the student and the example alone (a prompt evaluated whole or after another's cached prefix can flip
a greedy near-tie, and at 60 held-out calls one answer can decide the gate): what precedes the user's
text (the system prompt and tools) is evaluated apart once and reused as such, and the rest of each
prompt anew (`Job.pin`). Measured per example: did the answer take the due form (calls or text) and parse,
do the calls that came out validate against the tool's schema, is the tool name right, do the arguments
match exactly and AST-style (BFCL's normalization), and the latency.
"""

from __future__ import annotations

import functools
import hashlib
import json
import statistics
import time
from collections import Counter
from pathlib import Path

from edgeslm.decoding.tools import validate_arguments
from edgeslm.pipeline import data

# An adapter is promoted only when all of these hold on the held-out split. `valid` is the grammar's
# promise (every call that came out parses and validates); choosing text where a call was due, or a call
# where text was due, is a wrong answer, counted by `tool_name` and `exact`, not an invalid one.
GATE = {"exact": 0.9, "valid": 0.99, "tool_name": 0.95}


def run(worker, examples: list[dict], settings, adapter: str | None = None, progress=None, fresh: bool = True) -> dict:
    """Scores of `worker` (+ `adapter`) on `examples`; per-example rows included. `fresh` (the default)
    reuses nothing but the pinned prefix, so the scores do not depend on what ran before or in which
    order (a 950-token prompt: 0.7 s an answer, 2.5 s evaluated whole)."""
    rows = []
    for i, ex in enumerate(examples):
        want = data.teacher_calls(ex)
        # room for the teacher's answer whatever its tokenization (a token is at least one byte), not for
        # a student that rambles: a wrong answer is wrong whether it stops at 100 tokens or at 1000
        answer = ex["answer"]
        size = len(answer.get("content") or "") + sum(len(c["function"]["name"]) + len(c["function"]["arguments"]) + 48
                                                      for c in answer.get("tool_calls") or [])
        messages, spec, params = data.request(ex, settings, max_tokens=16 + size)
        t0 = time.perf_counter()
        g = worker.run(messages, spec, params, adapter=adapter, fresh=fresh, pin=fresh)
        latency = time.perf_counter() - t0
        # valid when every call that came back parses and validates (a text answer has none); whether calls
        # or text were due is judged by `parsed`, `tool_name` and `exact`
        got, checked = [], 0
        schemas = {t.name: t.parameters for t in spec.tools}
        for c in g.tool_calls:
            try:
                got.append({"name": c.name, "arguments": json.loads(c.arguments)})
            except ValueError:
                continue
            if c.name in schemas and validate_arguments(c.arguments, schemas[c.name]) is None:
                checked += 1
        valid = checked == len(g.tool_calls)
        # where text was due (after a tool's result), right means text that states what the teacher's did
        said = bool(want) or data.states(g.content, data.result_facts(ex))
        rows.append({
            "parsed": bool(g.tool_calls) == bool(want) and len(got) == len(g.tool_calls),
            "valid": valid, "tool_name": [c["name"] for c in got] == [c["name"] for c in want],
            "exact": data.exact(got, want) and said, "ast": data.ast_match(got, want) and said, "latency_s": latency,
            "completion_tokens": g.usage.completion_tokens, "prompt_tokens": g.usage.prompt_tokens,
            "cached_tokens": g.usage.cached_tokens, "got": got,
            "want": want, "request": next((m.content for m in reversed(messages) if m.role == "user"), None),
        })
        if progress is not None:
            progress(i + 1, len(examples))
    return summarize(rows)


def remembered(path: Path, worker, examples: list[dict], settings, adapter: str | None = None, progress=None) -> dict:
    """`run` (fresh), its rows kept in the JSON file `path` by what decides them: the model file, the
    adapter's file and sampling defaults (the entry's default adapter where `adapter` is None), the
    examples, and the source of the code that serves and scores them. A conversion that stops and starts
    again (a seed outlives a session here) then scores again only what changed; the latencies are those of
    the run that measured them."""
    from edgeslm.store.adapters import AdapterStore

    name = adapter or worker.entry.default_adapter
    served = AdapterStore(settings.adapters_dir).get(worker.entry.id, name) if name and name != "none" else None
    key = hashlib.sha256(json.dumps([worker.entry.sha256, name, served and hashlib.sha256(served.gguf.read_bytes()).hexdigest(),
                                     served and served.manifest.get("sampling"), examples, served_code()],
                                    sort_keys=True).encode()).hexdigest()
    kept = json.loads(path.read_text()) if path.is_file() else {}
    if key in kept:
        return summarize(kept[key])
    scores = run(worker, examples, settings, adapter=adapter, progress=progress)
    kept[key] = scores["rows"]
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(kept))
    tmp.replace(path)
    return scores


# what never turns an example into an answer: the pipeline's other stages, the command line, qualify and
# quantize, export, the web page, S2's detectors and fakes
_NOT_SERVING = ("pipeline/", "cli/", "qualify/", "quantize/", "export/", "web/", "names.py", "privacy.py", "surrogates.py")


@functools.cache
def served_code() -> str:
    """A digest of the source that turns an example into a scored answer: edgeslm's modules but those that
    never do (_NOT_SERVING; this module and the prompt's, data.py, count). Read once, when the process
    first scores: the code it runs, not what an edit has put on disk since."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        rel = f.relative_to(root).as_posix()
        if not rel.startswith(_NOT_SERVING) or rel in ("pipeline/evaluate.py", "pipeline/data.py"):
            h.update(rel.encode() + f.read_bytes())
    return h.hexdigest()


def summarize(rows: list[dict]) -> dict:
    n = len(rows)
    share = (lambda k: sum(r[k] for r in rows) / n) if n else (lambda k: 0.0)
    lat = [r["latency_s"] for r in rows]
    return {"n": n, "exact": share("exact"), "ast": share("ast"), "tool_name": share("tool_name"),
            "parsed": share("parsed"), "valid": share("valid"),
            "latency_p50_s": statistics.median(lat) if lat else None,
            "latency_p95_s": sorted(lat)[int(0.95 * (n - 1))] if lat else None,
            "tokens": sum(r["prompt_tokens"] + r["completion_tokens"] for r in rows), "rows": rows}


def gate(scores: dict, gate: dict = GATE) -> tuple[bool, str]:
    """(promote?, why) for a student's held-out scores."""
    if not scores["n"]:
        return False, "no held-out examples to judge by"
    # as a count too: 62 of 69 is 0.899, which two decimals would show as "0.90 < 0.90"
    failed = [f"{k} {scores[k]:.3f} ({round(scores[k] * scores['n'])} of {scores['n']}) < {v:.2f}"
              for k, v in gate.items() if scores[k] < v]
    return (not failed), ("meets the gate" if not failed else "below the gate: " + ", ".join(failed) + wrong(scores.get("rows") or []))


def _show(v) -> str:
    return "none" if v is None else json.dumps(v, ensure_ascii=False)[:40]


def wrong(rows: list[dict], top: int = 3) -> str:
    """What the misses got wrong most, for a verdict: "; misses: folder 9 of 9 (inbox for billing 5, inbox for support 4)" (the
    argument, in how many misses, its commonest wrong values), or the call count or tool where calls do not pair up."""
    misses = [r for r in rows if not r.get("exact")]
    args: Counter = Counter()
    pairs: dict[str, Counter] = {}
    for r in misses:
        got, want = r.get("got") or [], r.get("want") or []
        if len(got) != len(want):
            args[f"{len(got)} calls for {len(want)}"] += 1
            continue
        keys = set()
        for g, w in zip(got, want, strict=True):
            if g["name"] != w["name"]:
                keys.add("the tool")
                continue
            ga, wa = g.get("arguments") or {}, w.get("arguments") or {}
            for k in sorted(set(ga) | set(wa)):
                if k not in ga or k not in wa or not data.exact([{"name": "", "arguments": {k: ga[k]}}],
                                                                 [{"name": "", "arguments": {k: wa[k]}}]):
                    keys.add(k)
                    pairs.setdefault(k, Counter())[f"{_show(ga.get(k))} for {_show(wa.get(k))}"] += 1
        args.update(keys)
    if not misses or not args:
        return ""
    out = []
    for k, n in args.most_common(top):
        common = ", ".join(f"{p} {c}" for p, c in pairs.get(k, Counter()).most_common(2))
        out.append(f"{k} {n} of {len(misses)}" + (f" ({common})" if common else ""))
    return "; misses: " + ", ".join(out)
