"""`edgeslm qualify` end to end: resolve the model (and adapter), probe the device, plan memory and
refuse before loading what cannot fit, load, measure, judge, and assemble the report.

Owns the order of those steps and the report's content (schema SCHEMA). Formats live in report.py.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from edgeslm import __version__, device
from edgeslm.backends import build_features, memory
from edgeslm.config import Settings
from edgeslm.qualify.profile import Profiler, peak_rss
from edgeslm.qualify.verdict import judge, load_profiles, pick
from edgeslm.store.adapters import AdapterStore
from edgeslm.store.registry import Catalog, shipped_catalog

SCHEMA = "edgeslm.qualify/1"
# The spread within one run understates the drift between runs: two back-to-back qualifications on
# this project's 2-core machine agreed within 4% on TTFT but differed by 10% on decode speed (each run
# itself within 3%). So a timing's stated noise is never below this.
NOISE_FLOOR = 0.15
MEMORY_NOISE = 0.03


def profiles(settings: Settings):
    return load_profiles(shipped_catalog(), settings.user_catalog)


def resolve(settings: Settings, model: str, adapter: str | None = None):
    """The catalog, entry, local file and adapters a qualification (or its memory plan) is about.
    Raises for an unknown model or adapter, or a file that is not a GGUF model."""
    catalog = Catalog(settings)
    entry = catalog.entry_for(model)
    path = catalog.ensure_local(entry)
    adapters = [AdapterStore(settings.adapters_dir).get(entry.id, adapter, entry.sha256)] if adapter else []
    return catalog, entry, path, adapters


def qualify(settings: Settings, model: str, profile: str = "interactive-agent", adapter: str | None = None,
            runs: int = 5, step: Callable[[str], None] | None = None) -> dict:
    """Measure `model` (+ `adapter`) on this machine and judge it under `profile`. Bad input (unknown
    model, profile or adapter, a corrupt GGUF, a budget too small) raises before anything loads."""
    from edgeslm.engine import ModelWorker

    step = step or (lambda label: None)
    prof = pick(profiles(settings), profile)
    catalog, entry, path, adapters = resolve(settings, model, adapter)
    step("device probe")
    dev = {**device.describe(probe=True), "backend": build_features(entry.format)}
    threads = settings.threads or dev["free_cores"]
    settings = settings.model_copy(update={"threads": threads})
    budget = memory.budget_of(settings.memory_budget)
    step("loading")
    t0 = time.perf_counter()
    worker = ModelWorker(entry, settings, catalog, adapters)  # plans first; refuses what cannot fit, unloaded
    load_s = time.perf_counter() - t0
    plan = worker.plan
    rss_loaded = peak_rss()
    try:
        p = Profiler(worker, runs=runs, step=step)
        prefill, decode, tools = p.prefill(), p.decode(), p.tools()
    finally:
        worker.close()
        worker.thread.join(timeout=30)
    peak = peak_rss()
    ttft_512 = next((x for x in prefill if x["target_tokens"] == 512), None)
    figures = {
        "ttft_512_s": ttft_512["ttft_s"] if ttft_512 else None,
        "ttft_tools_s": tools["ttft_cold_s"],
        "decode_tps": decode["tokens_per_s"],
        "tool_call_s": tools["call_s_median"],
        "memory_ram_fraction": peak / dev["ram_total"],
        "load_s": load_s,
    }
    noise = {
        "ttft_512_s": max(ttft_512["noise"], NOISE_FLOOR) if ttft_512 else None,
        "ttft_tools_s": max(tools["noise_cold"], NOISE_FLOOR),
        "decode_tps": max(decode["noise"], NOISE_FLOOR),
        "tool_call_s": max(tools["noise_call"], NOISE_FLOOR),
        "memory_ram_fraction": MEMORY_NOISE,
        "load_s": None,  # one load per run: no spread to state
    }
    verdict = judge(figures, prof)
    return {
        "schema": SCHEMA,
        "edgeslm": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model": {"id": entry.id, "name": entry.name, "architecture": entry.architecture,
                  "quantization": entry.quantization, "path": str(path), "sha256": entry.sha256,
                  "size_bytes": path.stat().st_size},
        "adapter": {"task": adapters[0].task, "path": str(adapters[0].gguf)} if adapters else None,
        "settings": {"n_ctx": settings.n_ctx, "n_batch": settings.n_batch, "threads": threads,
                     "constraint_engine": settings.constraint_engine, "runs": runs},
        "device": dev,
        "memory": {"plan": plan.to_json(), "budget": budget, "rss_after_load": rss_loaded, "peak_rss": peak,
                   "plan_error": (plan.total - peak) / peak},
        "measured": {"load_s": load_s, "prefill": prefill, "decode": decode, "tools": tools},
        "figures": figures,
        "noise": noise,
        "verdict": {"profile": prof.model_dump(), "overall": verdict.overall,
                    "criteria": [c.__dict__ for c in verdict.criteria]},
    }
