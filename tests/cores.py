"""The threads each test process computes with. `make test` runs two xdist workers on this machine's
cores, so each worker gets its share: llama.cpp's threads (and OpenMP's, under torch) spin while they
wait for each other. Two processes of 2 threads each on 2 cores ran a fixed prefill-and-decode 1.35x
slower than two of 1 thread each under edgeslm's GOMP_SPINCOUNT=1000 (14.2-14.5 s against 10.5-10.6 s),
and 3.5x slower under libgomp's default spin (36-39 s against 10-11 s; 2026-12-04)."""

from __future__ import annotations

import os

import psutil

WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
THREADS = max(1, (psutil.cpu_count(logical=False) or os.cpu_count() or 1) // WORKERS)
# torch's OpenMP team, in this process (set before torch is imported) and in every subprocess it starts
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
