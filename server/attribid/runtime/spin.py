"""Keep the server's cores awake between calls: one idle-priority spinning thread per core.

On a virtual machine an idle core halts, and the host may hand the physical
core to someone else; the next call then starts on a cold core with cold
caches, and at concurrency 1 every call does. docs/performance.md measures a
server that only runs the forward pass with and without spinners, and
attribid with and without ``--spin-idle``.

Each spinner thread pins itself to one core, lowers itself to ``SCHED_IDLE``
(the kernel runs it only when nothing else wants that core and preempts it at
once when something does) and spins in compiled code without the GIL. The
cost is a core that always reads 100 % busy; the gain is latency at low load.
Off by default (``--spin-idle``).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import time

from attribid.kernels.config import jit_nogil

#: the spinners' thread name in /proc and top, so tools can leave their CPU time out
THREAD_NAME = "attribid-spin"
_PR_SET_NAME = 15

#: seconds each GIL-free spin lasts before the thread looks for a stop request;
#: long enough that the GIL is taken back rarely, short enough to stop promptly
CHUNK_S = 0.02


@jit_nogil
def _spin(n: int) -> float:
    # A dependent chain of multiply-adds the compiler cannot drop, since the
    # result is returned; it touches no memory, so it evicts nothing from cache.
    x = 0.0
    for _ in range(n):
        x = x * 0.999999 + 1.0
    return x


class IdleSpinners:
    """``start()`` one spinner per core this process may run on; ``stop()`` ends them."""

    def __init__(self, cores: set[int] | None = None) -> None:
        self.cores = sorted(cores if cores is not None else os.sched_getaffinity(0))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._iterations = 0

    def calibrate(self) -> int:
        """Iterations of the spin loop that last about ``CHUNK_S`` on this machine."""
        _spin(1000)  # compile (or load from cache) before timing
        n = 200_000
        t0 = time.perf_counter()
        _spin(n)
        per_iteration = max((time.perf_counter() - t0) / n, 1e-10)
        self._iterations = max(1000, int(CHUNK_S / per_iteration))
        return self._iterations

    def start(self) -> None:
        if not self._iterations:
            self.calibrate()
        for core in self.cores:
            t = threading.Thread(target=self._run, args=(core,), daemon=True,
                                 name=f"attribid-spin-{core}")
            t.start()
            self._threads.append(t)

    def _run(self, core: int) -> None:
        _name_this_thread(THREAD_NAME)
        os.sched_setaffinity(0, {core})  # 0 = this thread on Linux
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        n = self._iterations
        while not self._stop.is_set():
            _spin(n)

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()

    @property
    def running(self) -> int:
        return sum(t.is_alive() for t in self._threads)


def _name_this_thread(name: str) -> None:
    """Set the calling thread's kernel name (Linux ``prctl``); a no-op elsewhere."""
    path = ctypes.util.find_library("c")
    if path is None:
        return
    try:
        ctypes.CDLL(path, use_errno=True).prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass
