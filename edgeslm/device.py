"""What this machine is: cores (and which are free), memory, accelerators. No model knowledge."""

from __future__ import annotations

import os
import platform

import psutil


def physical_cores() -> int:
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def free_cores(sample_s: float = 0.25, busy_pct: float = 50.0) -> int:
    """Physical cores not busy right now.

    Samples per-CPU load briefly; a logical CPU above `busy_pct` counts as taken. More threads than
    free cores collapses llama.cpp throughput (measured: 1 tok/s at 2 threads with one core busy).
    """
    loads = psutil.cpu_percent(interval=sample_s, percpu=True)
    logical = len(loads) or 1
    idle_logical = sum(1 for x in loads if x < busy_pct)
    per_core = max(1, logical // physical_cores())  # SMT siblings per physical core
    return max(1, min(physical_cores(), idle_logical // per_core))


def default_threads() -> int:
    return free_cores()


def describe() -> dict:
    vm = psutil.virtual_memory()
    return {
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "cpu": platform.processor() or platform.machine(),
        "physical_cores": physical_cores(),
        "logical_cores": psutil.cpu_count(logical=True),
        "ram_total": vm.total,
        "ram_available": vm.available,
    }
