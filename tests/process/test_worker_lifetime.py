"""--workers groups: workers die with their parent, a held address refuses a second group
(unless --take-over), and a port left in TIME_WAIT by a killed group is free to bind."""
from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

from attribid.client import score_request
from attribid.runtime.group import holder
from attribid.v1 import attribution_pb2_grpc as pb_grpc
from tests.serverproc import ServerProcess

TIME_WAIT, LISTEN = "06", "0A"  # socket states as /proc/net/tcp writes them


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie waiting for its new parent to reap it does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def local_states(port: int) -> list[str]:
    """States of this machine's TCP sockets whose local port is ``port``."""
    states = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if int(local.rsplit(":", 1)[1], 16) == port:
                states.append(state)
    return states


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


def score(address: str) -> None:
    journey = [{"channel": "search", "timestamp": time.time() - 60, "interaction": "click"}]
    with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
        pb_grpc.AttributionStub(ch).Score(score_request(journey), timeout=10)


def test_time_wait_does_not_hold_a_port_but_any_listener_does() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:  # SO_REUSEADDR, as gRPC binds
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        conn, _ = listener.accept()
        conn.close()  # the server's side closes first, so it is the side left in TIME_WAIT
        assert client.recv(1) == b""
        client.close()
    wait_for(lambda: TIME_WAIT in local_states(port), 5, "a TIME_WAIT socket on the port")
    assert LISTEN not in local_states(port)
    assert holder("127.0.0.1", port) is None
    # What TIME_WAIT does to the other probes: nothing answers a connection, and a bind
    # without SO_REUSEADDR is refused (that probe would call a free port held).
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    with socket.socket() as plain, pytest.raises(OSError) as err:
        plain.bind(("127.0.0.1", port))
    assert err.value.errno == errno.EADDRINUSE
    # Any listener holds it, one that shares its port (as workers do) too.
    for reuse_port in (False, True):
        with socket.create_server(("127.0.0.1", port), reuse_port=reuse_port):
            assert holder("127.0.0.1", port) == f"127.0.0.1:{port}"
            assert holder("localhost", port) is not None


# A worker (no server in it): prints how it dies with its parent, then "SIGTERM" when it
# gets one. "poll" takes the kernel's signal away, as where prctl is not to be had.
WORKER = """
import signal, sys, time
from attribid.runtime import group, logs
logs.configure()
if sys.argv[1] == "poll":
    group.parent_death_signal = lambda signum: False
def on_term(*_):
    print("SIGTERM", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
print(group.die_with_parent(int(sys.argv[2]), 1.0), flush=True)
while True:
    time.sleep(0.05)
"""
# Its parent: starts it under group.spawning(), prints its pid and waits to be killed.
PARENT = """
import os, subprocess, sys, time
from attribid.runtime import group
with group.spawning():
    child = subprocess.Popen([sys.executable, "-c", sys.argv[2], sys.argv[1], str(os.getpid())],
                             stderr=subprocess.STDOUT)
print(child.pid, flush=True)
time.sleep(120)
"""


class Lines:
    """A child's stdout, line by line, read in a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._proc = proc
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line.rstrip())

    def close(self) -> None:
        self._thread.join(10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def wait(self, count: int, timeout: float = 30.0) -> list[str]:
        wait_for(lambda: len(self.lines) >= count, timeout, f"{count} lines: {self.lines}")
        return self.lines


@pytest.mark.parametrize("mode", ["kernel", "poll"])
def test_a_worker_gets_one_sigterm_when_its_parent_is_killed(mode: str) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, mode, WORKER],
                              stdout=subprocess.PIPE, text=True)
    out = Lines(parent)
    child = 0
    try:
        child = int(out.wait(1)[0])
        how = out.wait(2)[1]
        assert ("PR_SET_PDEATHSIG" in how) == (mode == "kernel") and "poll" in how
        parent.kill()
        parent.wait(10)
        wait_for(lambda: not alive(child), 15, "the worker gone")
        lines = out.wait(4)
        notice = json.loads(next(line for line in lines if "parent exited" in line))
        assert notice["noticed_by"] == mode and notice["pid"] == child
        assert lines.count("SIGTERM") == 1
    finally:
        if child and alive(child):
            os.kill(child, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()
        parent.wait(10)
        out.close()


def test_a_worker_whose_parent_is_already_gone_does_not_start() -> None:
    script = ("from attribid.runtime import group\n"
              "try:\n    group.die_with_parent(-1, 1.0)\n"
              "except group.ParentGone as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert "exited before this worker started" in done.stdout, done


def test_a_group_on_an_address_another_process_listens_on_exits_1_naming_it() -> None:
    with socket.create_server(("127.0.0.1", 0), reuse_port=True) as taken:
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        group = ServerProcess("--workers", "2", "--address", address).start()
        assert group.wait(60) == 1
    (line,) = group.events("cannot start")
    assert line["address"] == address and address in line["detail"]
    assert "--take-over" in line["detail"]
    assert not group.events("worker started") and not group.events("listening")


@pytest.mark.slow
def test_workers_die_with_their_parent_and_the_port_is_free_at_once() -> None:
    address = f"127.0.0.1:{(port := free_port())}"
    old = ServerProcess("--workers", "2", "--address", address).start()
    assert old.proc is not None
    parent = old.proc
    groups = [old]
    pids: set[int] = set()
    try:
        wait_for(lambda: len(old.events("serving")) == 2, 60, "two workers serving")
        started = old.events("worker started")
        pids = {line["pid"] for line in started}
        assert pids == {line["pid"] for line in old.events("serving")} and len(pids) == 2
        assert all(line["parent_pid"] == parent.pid for line in started)
        assert all("PR_SET_PDEATHSIG" in line["dies_with_parent"] for line in started)
        # Connections open at the kill: the workers' side closes first and stays in TIME_WAIT.
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(8)]
        score(address)

        parent.send_signal(signal.SIGKILL)  # kill -9 of the group's parent
        parent.wait(10)
        wait_for(lambda: not any(alive(pid) for pid in pids), 15, f"workers {pids} gone")
        # Each worker heard of it and drained as on SIGTERM.
        wait_for(lambda: len(old.events("stopped")) == 2, 5, "two stopped lines")
        assert {line["pid"] for line in old.events("parent exited")} == pids
        assert {line["noticed_by"] for line in old.events("parent exited")} == {"kernel"}
        assert not old.events("second signal: exiting now")
        for s in idle:  # read what the server sent (its HTTP/2 settings) up to its close
            s.settimeout(5)
            while s.recv(4096):
                pass
            s.close()
        wait_for(lambda: TIME_WAIT in local_states(port), 5, "TIME_WAIT on the port")
        assert LISTEN not in local_states(port)

        # Restarted at once, without --take-over: the port is free.
        new = ServerProcess("--workers", "2", "--address", address).start()
        groups.append(new)
        wait_for(lambda: len(new.events("serving")) == 2, 60, "the new group serving")
        assert all(line["port"] == port for line in new.events("listening"))
        score(address)

        # A second group on the held port says so and exits 1, the first serving on.
        second = ServerProcess("--workers", "2", "--address", address).start()
        groups.append(second)
        assert second.wait(60) == 1
        (line,) = second.events("cannot start")
        assert line["address"] == address and not second.events("listening")

        # The rolling-restart mode binds beside the live group.
        beside = ServerProcess("--workers", "2", "--address", address, "--take-over").start()
        groups.append(beside)
        wait_for(lambda: len(beside.events("listening")) == 2, 60, "take-over group bound")
        assert all(line["port"] == port for line in beside.events("listening"))
        assert {line["start_id"] for line in beside.events("listening")}.isdisjoint(
            line["start_id"] for line in new.events("listening"))
        wait_for(lambda: len(beside.events("serving")) == 2, 60, "take-over group serving")
        for _ in range(4):  # fresh connections, answered by either group
            score(address)
        for proc in (beside, new):
            proc.signal(signal.SIGTERM)
            assert proc.wait(30) == 0
    finally:
        for proc in groups:
            proc.__exit__()
        for pid in pids:  # workers of the killed group, should a failure have left one
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
