"""`edgeslm qualify` end to end: resolve the model (and adapter: the default one folded into a served copy,
as `serve` runs it), probe the device, plan memory and refuse before loading what cannot fit, load, measure,
judge, and assemble the report.

Owns the order of those steps and the report's content (schema SCHEMA). Formats live in report.py.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import time
from collections.abc import Callable

from edgeslm import __version__, device
from edgeslm.backends import build_features, memory, offload
from edgeslm.config import Settings
from edgeslm.errors import EdgeError
from edgeslm.qualify.profile import Profiler, VramPeak, peak_rss
from edgeslm.qualify.verdict import judge, load_profiles, pick
from edgeslm.store import folded
from edgeslm.store.adapters import AdapterStore
from edgeslm.store.registry import Catalog, shipped_catalog

log = logging.getLogger("edgeslm.qualify")

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


def _build_copy(settings: Settings, model: str) -> str | None:
    """In a child process: the served copy of `model` built unless it exists; None, or why not."""
    from edgeslm.engine import fold

    try:
        catalog = Catalog(settings)
        fold(settings, catalog, catalog.entry_for(model))
        return None
    except (EdgeError, OSError) as e:
        return str(getattr(e, "message", e))


def _measure(settings: Settings, entry, catalog, adapters, runs: int, step, ram_total: int, folded=None) -> dict:
    """Load the model once with these settings, measure it, and unload it: one device's run. `folded`
    (adapter, copy): the served copy with the default adapter folded in, as `serve` runs it."""
    from edgeslm.engine import ModelWorker

    vram = VramPeak()
    step("loading")
    t0 = time.perf_counter()
    # plans first; refuses what cannot fit, unloaded
    worker = ModelWorker(entry, settings, catalog, [] if folded else adapters, folded=folded)
    load_s = time.perf_counter() - t0
    plan = worker.plan
    rss_loaded = peak_rss()
    try:
        p = Profiler(worker, runs=runs, step=step)
        prefill, decode, tools = p.prefill(), p.decode(), p.tools()
    finally:
        worker.close()
        worker.thread.join(timeout=30)
        vram.stop()
    peak = peak_rss()
    ttft_512 = next((x for x in prefill if x["target_tokens"] == 512), None)
    figures = {
        "ttft_512_s": ttft_512["ttft_s"] if ttft_512 else None,
        "ttft_tools_s": tools["ttft_cold_s"],
        "decode_tps": decode["tokens_per_s"],
        "tool_call_s": tools["call_s_median"],
        "memory_ram_fraction": peak / ram_total,
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
    gpu = {"layers": plan.gpu_layers, "reason": plan.gpu_reason, "vram_plan": plan.vram_total,
           "vram_peak": vram.peak, "vram_source": vram.source,
           "vram_plan_error": (plan.vram_total - vram.peak) / vram.peak if vram.peak else None}
    return {"device": plan.device, "plan": plan, "rss_after_load": rss_loaded, "peak_rss": peak, "figures": figures,
            "noise": noise, "measured": {"load_s": load_s, "prefill": prefill, "decode": decode, "tools": tools},
            "gpu": gpu}


def qualify(settings: Settings, model: str, profile: str = "interactive-agent", adapter: str | None = None,
            runs: int = 5, step: Callable[[str], None] | None = None) -> dict:
    """Measure `model` (+ `adapter`) on this machine and judge it under `profile`, on the device the
    memory plan chooses (with a GPU: also on the CPU alone, side by side). Bad input (unknown model,
    profile or adapter, a corrupt GGUF, a budget too small) raises before anything loads."""
    step = step or (lambda label: None)
    prof = pick(profiles(settings), profile)
    catalog, entry, path, adapters = resolve(settings, model, adapter)
    step("device probe")
    dev = {**device.describe(probe=True), "backend": build_features(entry.format),
           "gpu_build": offload.gpu_build() if entry.format == "gguf" else None}
    threads = settings.threads or dev["free_cores"]
    settings = settings.model_copy(update={"threads": threads})
    budget = memory.budget_of(settings.memory_budget)
    from edgeslm.engine import fold, foldable

    made = None
    default = foldable(settings, entry, adapters[0].task if adapters else None)
    if default is not None:
        step("the default adapter folded into a served copy, as serve runs it")
        why = None
        if folded.find(settings.cache, entry.sha256, default.gguf) is None:
            # built in a child process: a build holds the weights in numpy, and this process's peak
            # memory is the report's memory figure (a first run would otherwise report the build's peak)
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                why = pool.apply(_build_copy, (settings, model))
        try:
            if why:
                raise EdgeError(why)
            made = fold(settings, catalog, entry)  # found now
        except (EdgeError, OSError) as e:  # as serve: the adapter is then applied at decode time
            log.warning("the default adapter stays unfolded: %s", getattr(e, "message", e))
    main = _measure(settings, entry, catalog, adapters, runs, step, dev["ram_total"], made)
    other = None
    if main["plan"].gpu_layers:  # the same model on the CPU alone, for the side-by-side
        step("CPU-only run")
        other = _measure(settings.model_copy(update={"gpu_layers": "0"}), entry, catalog, adapters, runs, step,
                         dev["ram_total"], made)
    plan, figures = main["plan"], main["figures"]
    verdict = judge(figures, prof)
    device_name = (f"{dev['gpus'][0]['name'] if dev['gpus'] else dev['gpu_build']} ({plan.device})"
                   if plan.gpu_layers else f"{dev['cpu']} (CPU)")
    return {
        "schema": SCHEMA,
        "edgeslm": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model": {"id": entry.id, "name": entry.name, "architecture": entry.architecture,
                  "quantization": entry.quantization, "path": str(path), "sha256": entry.sha256,
                  "size_bytes": path.stat().st_size},
        "adapter": {"task": adapters[0].task, "path": str(adapters[0].gguf)} if adapters else None,
        # the default adapter as serve runs it (folded into a copy of the weights), named or not
        "folded": {"task": made[0].task, "copy": str(made[1])} if made else None,
        "settings": {"n_ctx": settings.n_ctx, "n_batch": settings.n_batch, "threads": threads,
                     "constraint_engine": settings.constraint_engine, "runs": runs, "gpu_layers": settings.gpu_layers},
        "device": dev,
        "memory": {"plan": plan.to_json(), "budget": budget.to_json(), "rss_after_load": main["rss_after_load"],
                   "peak_rss": main["peak_rss"], "plan_error": (plan.total - main["peak_rss"]) / main["peak_rss"]},
        "gpu": {**main["gpu"], "measured": bool(plan.gpu_layers), "build": dev["gpu_build"],
                "not_measured": None if plan.gpu_layers else f"no GPU run: {plan.gpu_reason}"},
        "measured": main["measured"],
        "figures": figures,
        "noise": main["noise"],
        "cpu_run": None if other is None else {"figures": other["figures"], "noise": other["noise"],
                                               "peak_rss": other["peak_rss"], "measured": other["measured"]},
        "verdict": {"profile": prof.model_dump(), "overall": verdict.overall, "device": device_name,
                    "criteria": [c.__dict__ for c in verdict.criteria]},
    }
