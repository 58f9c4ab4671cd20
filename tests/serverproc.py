"""Real servers on a free loopback port for end-to-end tests.

``InProcessServer`` runs ``AttribidServer`` on a uvloop event loop in a thread of
the test process: what every API test needs. ``ServerProcess`` runs
``attribid serve`` as a child process: only for what needs a process of its own
(signals, exit codes, ``--workers``, start-up failures, the console command).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import orjson

ROOT = Path(__file__).resolve().parent.parent


class _Capture(logging.Handler):
    """The records one server's event loop thread logs, as the JSON objects ``serve`` prints."""

    def __init__(self, lines: list[dict[str, Any]]) -> None:
        super().__init__(logging.DEBUG)
        from attribid.runtime.logs import JsonFormatter

        self.setFormatter(JsonFormatter())
        self.lines = lines
        self.thread: int | None = None

    def emit(self, record: logging.LogRecord) -> None:
        # Every server logs from its loop's thread; other servers in the process have their own.
        if record.thread == self.thread:
            self.lines.append(orjson.loads(self.format(record)))


class InProcessServer:
    """``with InProcessServer(deadline_margin_ms=500) as s: s.address`` - returns once SERVING.

    Keyword arguments are ``Settings`` fields; the address and metrics port are free
    loopback ports. ``lines`` holds the server's log records as ``serve`` would print them.
    """

    def __init__(self, clock: Callable[[], float] | None = None, **settings: Any) -> None:
        from attribid.runtime.settings import Settings

        # Campaign state in memory unless a test names a store: tests share no files.
        self.settings = Settings(**{"address": "127.0.0.1:0", "metrics_port": 0,
                                    "state": "memory://", **settings})
        self.clock = clock
        self.server: Any = None  # the AttribidServer, once bound
        self.port: int | None = None
        self.metrics_port: int | None = None
        self.lines: list[dict[str, Any]] = []
        self.stopped = False
        self._capture = _Capture(self.lines)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._halt: asyncio.Event | None = None
        self._grace: float | None = None
        self._bound = threading.Event()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="attribid-test-server", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == name]

    def start(self, timeout: float = 120.0) -> "InProcessServer":
        from attribid.runtime import logs

        logger = logs.get()
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)  # the lifecycle events are info records
        logger.addHandler(self._capture)
        self._thread.start()
        if not self._ready.wait(timeout) or self._failure is not None:
            self.stop()
            raise RuntimeError(f"server did not start: {self._failure!r}; {self.lines[-5:]}")
        return self

    def _run(self) -> None:
        import uvloop

        self._capture.thread = threading.get_ident()
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(self._main())

    async def _main(self) -> None:
        from attribid.runtime.server import AttribidServer

        self._loop = asyncio.get_running_loop()
        self._halt = asyncio.Event()
        kwargs = {} if self.clock is None else {"clock": self.clock}
        server = AttribidServer(self.settings, **kwargs)
        try:
            await server.start()
            self.server, self.port, self.metrics_port = server, server.port, server.metrics_port
            self._bound.set()
            await server.wait_ready()
            self._ready.set()
            await self._halt.wait()
        except BaseException as exc:  # reported by start() on the test's thread
            self._failure = exc
            self._ready.set()
        finally:
            await server.stop(self._grace)
            self.stopped = True

    def call(self, fn: Callable[[], Any], timeout: float = 60.0) -> Any:
        """Run ``fn()`` (a coroutine function or a plain one) on the server's loop; its result."""
        assert self._loop is not None

        async def run() -> Any:
            out = fn()
            return await out if asyncio.iscoroutine(out) else out

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def stop(self, grace: float | None = 5.0, timeout: float = 60.0) -> None:
        """``AttribidServer.stop(grace)`` on the server's loop; returns once it has stopped."""
        self._grace = grace
        if self._loop is not None and self._halt is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._halt.set)
        if self._thread.is_alive():
            self._thread.join(timeout)
        from attribid.runtime import logs

        logs.get().removeHandler(self._capture)

    def __enter__(self) -> "InProcessServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def console_command() -> list[str]:
    """The ``attribid`` console script next to this interpreter (what a user runs)."""
    script = Path(sys.executable).with_name("attribid")
    found = str(script) if script.exists() else shutil.which("attribid")
    return [found] if found else [sys.executable, "-m", "attribid.cli.main"]


class ServerProcess:
    """``with ServerProcess(*flags) as s: s.address`` - waits for the "listening" log line."""

    def __init__(self, *flags: str, env: dict[str, str] | None = None,
                 command: list[str] | None = None) -> None:
        self.flags = list(flags)
        # Campaign state in memory unless a test names a store (a flag or the variable); a
        # group of workers shares a SQLite file of its own, removed with the process.
        self.env = {**os.environ, "ATTRIBID_STATE": "memory://", **(env or {})}
        self._state_dir: str | None = None
        if "--workers" in flags and "--state" not in flags and "ATTRIBID_STATE" not in (env or {}):
            self._state_dir = tempfile.mkdtemp(prefix="attribid-state-")
            self.env["ATTRIBID_STATE"] = f"sqlite:///{self._state_dir}/state.sqlite"
        self.command = command or [sys.executable, "-m", "attribid.cli.main"]
        self.proc: subprocess.Popen[str] | None = None
        self.port: int | None = None
        self.metrics_port: int | None = None
        self.lines: list[dict] = []
        self._listening = threading.Event()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> "ServerProcess":
        cmd = [*self.command, "serve", "--address", "127.0.0.1:0", "--metrics-port", "0",
               *self.flags]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._listening.wait(timeout):
            self.kill()
            raise RuntimeError(f"server did not start: {self.lines[-5:]}")
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for raw in self.proc.stderr:
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"event": "raw", "text": raw.rstrip()}
            self.lines.append(line)
            if line.get("event") == "listening":
                self.port = line["port"]
                self.metrics_port = line["metrics_port"]
                self._listening.set()
        self.proc.stderr.close()
        self._listening.set()  # the process ended: nobody waits for a line that cannot come

    def events(self, name: str) -> list[dict]:
        return [line for line in self.lines if line.get("event") == name]

    def wait_event(self, name: str, timeout: float = 60.0) -> dict:
        """The first log line with this event, once it has arrived."""
        deadline = time.monotonic() + timeout
        while not self.events(name):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {name!r} line within {timeout} s: {self.lines[-5:]}")
            time.sleep(0.01)
        return self.events(name)[0]

    def signal(self, signum: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
            self._reader.join(5)

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)


def wait_serving(address: str, timeout: float = 60.0) -> list[str]:
    """Poll health until SERVING; returns the statuses seen, in order, without repeats."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    seen: list[str] = []
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0).status
                name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
            except grpc.RpcError as exc:
                name = f"error:{exc.code().name}"
            if not seen or seen[-1] != name:
                seen.append(name)
            if name == "SERVING":
                return seen
            time.sleep(0.01)
    raise TimeoutError(f"not SERVING after {timeout} s; saw {seen}")
