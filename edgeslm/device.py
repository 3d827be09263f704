"""What this machine is: cores (and which are free), memory, accelerators. No model knowledge."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess

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


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpus() -> list[dict]:
    """GPUs with their total (`memory`) and free VRAM in bytes and where that was read: NVML
    (nvidia-ml-py) first, then torch, then nvidia-smi; empty when there are none."""
    try:
        import pynvml

        pynvml.nvmlInit()
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem, name = pynvml.nvmlDeviceGetMemoryInfo(h), pynvml.nvmlDeviceGetName(h)
            out.append({"name": name.decode() if isinstance(name, bytes) else name, "memory": int(mem.total),
                        "free": int(mem.free), "source": "nvml"})
        return out
    except Exception:  # no library, no driver, no device: try the next source
        pass
    try:
        import torch

        if torch.cuda.is_available():
            out = []
            for i in range(torch.cuda.device_count()):
                free, total = torch.cuda.mem_get_info(i)
                out.append({"name": torch.cuda.get_device_name(i), "memory": total, "free": free, "source": "torch"})
            return out
    except Exception:  # torch missing, or a CUDA build without a usable driver
        pass
    if shutil.which("nvidia-smi"):
        try:
            text = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"],
                                  capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        rows = [r.rsplit(",", 2) for r in text.strip().splitlines() if r.count(",") >= 2]
        return [{"name": n.strip(), "memory": int(float(t)) << 20, "free": int(float(f)) << 20, "source": "nvidia-smi"}
                for n, t, f in rows]
    return []


def describe(probe: bool = False) -> dict:
    """This machine. `probe` adds what takes a moment to learn: free cores and accelerators."""
    vm = psutil.virtual_memory()
    facts = {
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "cpu": cpu_name(),
        "physical_cores": physical_cores(),
        "logical_cores": psutil.cpu_count(logical=True),
        "ram_total": vm.total,
        "ram_available": vm.available,
    }
    if probe:
        facts["free_cores"] = free_cores()
        facts["gpus"] = gpus()
    return facts
