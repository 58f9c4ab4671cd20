"""A group of worker processes on one port (``--workers``): each worker dies with its
parent, and a group does not start on an address another process already listens on.

Parent death: a watchdog thread in each worker waits for the kernel's parent-death signal
(Linux ``PR_SET_PDEATHSIG``), polling ``os.getppid()`` between waits as the fallback, and
once the parent that started the worker is gone sends the worker one SIGTERM: it drains as
on any SIGTERM, and ends outright if the drain has not finished ``grace_s`` +
``FORCE_AFTER_S`` seconds later. The kernel's signal is a wake-up, not the SIGTERM itself: it
comes each time a thread of the parent exits (a multi-threaded parent sends several), and a
second SIGTERM would cut the drain short.

A held address: a socket bound with SO_REUSEADDR but without SO_REUSEPORT, as a lone server
binds, fails with EADDRINUSE exactly when some socket listens on it (whether or not that one
shares its port); sockets left in TIME_WAIT by a killed server do not count.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import sys
import threading
import time
from typing import Iterator

from attribid.runtime import logs

#: prctl option: the signal the calling thread gets when its parent dies (linux/prctl.h)
PR_SET_PDEATHSIG = 1
#: what the kernel sends a worker when its parent dies: blocked in every thread of the
#: worker and taken only by the watchdog, so it never ends the worker by itself
WAKE_SIGNAL = signal.SIGUSR2
#: longest the watchdog waits between two reads of the parent's pid, in seconds
POLL_S = 0.2
#: seconds past the grace period after which an orphaned worker exits without finishing
FORCE_AFTER_S = 3.0


class ParentGone(RuntimeError):
    """The parent that started this worker had already exited when it started."""


def parent_death_signal(signum: int) -> bool:
    """Ask the kernel to send ``signum`` to this process when its parent dies; False where
    that cannot be had (not Linux, or prctl refused).

    The kernel sends it when the parent thread that forked us exits (and again for each
    thread of the parent that takes us over before the parent is gone).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                      ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0


def blocked_everywhere(signum: int) -> bool:
    """Whether every thread of this process blocks ``signum`` (Linux /proc; False elsewhere).

    >>> blocked_everywhere(signal.SIGTERM)
    False
    """
    bit = 1 << (int(signum) - 1)
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/status") as status:
                mask = next(int(line.split()[1], 16) for line in status
                            if line.startswith("SigBlk:"))
            if not mask & bit:
                return False
    except (OSError, StopIteration, ValueError):
        return False
    return True


def spawning() -> "contextlib.AbstractContextManager[None]":
    """Around starting workers: they start with WAKE_SIGNAL blocked, so every thread they
    ever run (even one an import starts before the worker's own code) blocks it."""
    return _masked({WAKE_SIGNAL})


@contextlib.contextmanager
def _masked(signals: set[signal.Signals]) -> Iterator[None]:
    old = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def die_with_parent(parent: int, grace_s: float) -> str:
    """Make this worker drain and exit when ``parent`` (the pid that started it) dies; says how.

    The kernel's signal is asked for only when every thread of the worker blocks it (started
    under ``spawning()``): a thread that did not would let it end the worker undrained.
    Raises ParentGone when the parent died before the kernel was asked to tell us (our
    parent is then already another process, init or a subreaper), so no orphan starts serving.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, {WAKE_SIGNAL})
    kernel = blocked_everywhere(WAKE_SIGNAL) and parent_death_signal(WAKE_SIGNAL)
    if os.getppid() != parent:
        raise ParentGone(f"the parent process {parent} exited before this worker started")
    threading.Thread(target=_watch, args=(parent, grace_s), daemon=True,
                     name="attribid-parent-watch").start()
    return (f"the kernel's parent-death signal (PR_SET_PDEATHSIG, {WAKE_SIGNAL.name}) and a "
            f"poll of the parent pid every {POLL_S:g} s" if kernel
            else f"a poll of the parent pid every {POLL_S:g} s")


def _watch(parent: int, grace_s: float) -> None:
    woken = None
    while os.getppid() == parent:
        woken = signal.sigtimedwait([WAKE_SIGNAL], POLL_S)
    log = logs.get()
    log.warning("parent exited", extra={"parent_pid": parent, "pid": os.getpid(),
                                        "noticed_by": "kernel" if woken else "poll"})
    os.kill(os.getpid(), signal.SIGTERM)  # one SIGTERM: the worker drains as on any other
    time.sleep(grace_s + FORCE_AFTER_S)
    log.error("exiting without finishing the drain", extra={"pid": os.getpid(),
                                                            "parent_pid": parent})
    logs.flush()
    os._exit(1)


def holder(host: str, port: int) -> str | None:
    """The address (``host:port``) on which some process already listens, or None.

    Each address ``host`` resolves to is bound once, with SO_REUSEADDR (TIME_WAIT sockets do
    not count) and without SO_REUSEPORT (a listener that shares its port counts). An address
    that cannot be bound for another reason (not local, privileged) is left to the server's
    own bind to report.

    >>> with socket.create_server(("127.0.0.1", 0)) as taken:
    ...     port = taken.getsockname()[1]
    ...     holder("127.0.0.1", port) == f"127.0.0.1:{port}"
    True
    >>> holder("127.0.0.1", port) is None
    True
    """
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return None
    for family, kind, proto, _, sockaddr in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    shown = f"[{sockaddr[0]}]" if family == socket.AF_INET6 else sockaddr[0]
                    return f"{shown}:{port}"
    return None
