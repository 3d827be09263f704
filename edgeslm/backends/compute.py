"""The one thread on which every llama.cpp decode of the process runs (backends/llamacpp hands each
batch to it).

Owns that thread and its queue of work.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any


# Every llama_decode of the process runs on one thread. llama.cpp computes with OpenMP, and libgomp
# keeps a team for each thread that ran one; once two such threads are alive (two resident models, each
# with its worker thread) it counts more threads than cores and stops spinning at its barriers, and every
# decode step ran at ~0.6x (43.9 -> 26 tok/s, README "Cost at serve time"). The hand-off costs ~0.1% of
# a step; two models' steps take turns, as they would on the same cores anyway.
class _ComputeThread:
    """One daemon thread that runs every llama_decode. Not a ThreadPoolExecutor: that one refuses work once
    the interpreter starts shutting down, and a generation still running then failed with a traceback."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def run(self, fn: Any, *args: Any) -> Any:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():  # also after a fork
                self._thread = threading.Thread(target=self._serve, name="llama-compute", daemon=True)
                self._thread.start()
        done: Future = Future()
        self._jobs.put((done, fn, args))
        return done.result()

    def _serve(self) -> None:
        while True:
            done, fn, args = self._jobs.get()
            try:
                done.set_result(fn(*args))
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                done.set_exception(e)


COMPUTE = _ComputeThread()
