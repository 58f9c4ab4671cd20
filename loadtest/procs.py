"""Servers under test as child processes: pinned to cores, readiness, CPU time, clean stop.

Every process started here listens on 127.0.0.1 only and is stopped by the
``with`` block that started it.

>>> with started(["python3", "-m", "http.server", "--bind", "127.0.0.1", "0"],
...              cores="0") as proc:   # doctest: +SKIP
...     proc.cpu_seconds()
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import orjson

_TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cmd: list[str], cores: str | None) -> list[str]:
    """``cmd`` prefixed by ``taskset -c cores`` when taskset exists and cores are given.

    >>> pinned(["x"], None)
    ['x']
    """
    if cores is None or shutil.which("taskset") is None:
        return list(cmd)
    return ["taskset", "-c", cores, *cmd]


def pin_self(cores: str | None) -> None:
    """Pin this process (the load generator) to ``cores``, e.g. "1" or "0,1"."""
    if cores is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in cores.split(",")})


@dataclass
class Proc:
    """A running server: its process, log file and (once known) bound address."""

    popen: subprocess.Popen
    log: Path
    address: str = ""

    def cpu_seconds(self) -> float:
        """User + system CPU of the process and all its descendants so far."""
        return tree_cpu_seconds(self.popen.pid)

    def thread_cpu_seconds(self) -> tuple[float, float]:
        """(main threads, all other threads) CPU so far, over the process tree.

        In a grpc.aio server the main thread runs the event loop: its share per
        call is what one process can never overlap with anything else.
        """
        main = other = 0.0
        for pid in _tree(self.popen.pid):
            with contextlib.suppress(OSError):
                for task in Path(f"/proc/{pid}/task").iterdir():
                    if _is_spinner(task):
                        continue
                    seconds = _cpu_path(task / "stat")
                    if int(task.name) == pid:
                        main += seconds
                    else:
                        other += seconds
        return main, other

    def wait_for_address(self, timeout: float, host: str = "127.0.0.1") -> str:
        """Poll the log for a JSON line carrying the bound ``address`` (or ``port``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"server exited with {self.popen.returncode}; see {self.log}")
            for line in self.log.read_text(errors="replace").splitlines():
                if line.startswith("{"):
                    with contextlib.suppress(orjson.JSONDecodeError):
                        record = orjson.loads(line)
                        if not isinstance(record, dict):
                            continue
                        found = record.get("address") or (
                            f"{host}:{record['port']}" if record.get("port") else "")
                        if found:
                            self.address = str(found)
                            return self.address
            time.sleep(0.1)
        raise TimeoutError(f"no address logged within {timeout} s; see {self.log}")


@contextlib.contextmanager
def started(cmd: list[str], cores: str | None, log: Path,
            env: dict[str, str] | None = None, cwd: str | None = None) -> Iterator[Proc]:
    """Start ``cmd`` pinned to ``cores`` with output to ``log``; SIGTERM it on exit."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        popen = subprocess.Popen(pinned(cmd, cores), stdout=out, stderr=subprocess.STDOUT,
                                 env={**os.environ, **(env or {})}, cwd=cwd,
                                 start_new_session=True)
    proc = Proc(popen=popen, log=log)
    try:
        yield proc
    finally:
        stop(popen)


def stop(popen: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not exited within ``grace``."""
    if popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGTERM)
        try:
            popen.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGKILL)
            popen.wait(5)


#: attribid's idle spinners (``--spin-idle``) name their threads so: they fill idle time at
#: idle priority, so their CPU is left out of every figure of work done
SPIN_THREAD = "attribid-spin"


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU so far of ``root`` and its descendants (from /proc), spinners left out."""
    return sum(_cpu(pid) - _spinner_cpu(pid) for pid in _tree(root))


def _spinner_cpu(pid: int) -> float:
    total = 0.0
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            if _is_spinner(task):
                total += _cpu_path(task / "stat")
    return total


def _is_spinner(task: Path) -> bool:
    """``task`` (a /proc/<pid>/task/<tid> folder) is one of attribid's idle spinners."""
    with contextlib.suppress(OSError):
        return (task / "comm").read_text().startswith(SPIN_THREAD)
    return False


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def _cpu(pid: int) -> float:
    return _cpu_path(Path(f"/proc/{pid}/stat"))


def _cpu_path(stat: Path) -> float:
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = stat.read_text().rsplit(")", 1)[1].split()
        # fields[11], fields[12] = utime, stime (fields 14, 15 of proc(5))
        return (int(fields[11]) + int(fields[12])) / _TICK
    return 0.0
