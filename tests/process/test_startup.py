"""Start-up failures of `attribid serve`: exit code 1 and one clear log line."""
from __future__ import annotations

import socket
import time

from attribid.client import Client
from tests.serverproc import ServerProcess, wait_serving


def test_a_model_that_cannot_load_exits_non_zero_with_a_clear_log(tmp_path):
    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"not an onnx file")
    proc = ServerProcess("--model-path", str(bogus)).start()
    assert proc.wait(60) == 1
    (line,) = proc.events("cannot serve")
    assert line["level"] == "error" and ("onnx" in line["detail"].lower() or "model" in line["detail"])


def test_a_missing_model_path_names_the_setting(tmp_path):
    proc = ServerProcess("--model-path", str(tmp_path / "missing.onnx")).start()
    assert proc.wait(60) == 1
    (line,) = proc.events("cannot serve")
    assert "model_path" in line["detail"]


def test_a_port_already_taken_exits_non_zero_naming_the_address():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = ServerProcess("--address", f"127.0.0.1:{port}").start()
        assert proc.wait(60) == 1
    (line,) = proc.events("cannot start")
    assert line["level"] == "error" and f"127.0.0.1:{port}" in line["detail"]
    assert not proc.events("listening")


def test_a_second_server_on_a_served_port_exits_1_and_the_first_keeps_serving():
    with ServerProcess() as first:
        wait_serving(first.address)
        second = ServerProcess("--address", first.address).start()
        assert second.wait(60) == 1
        (line,) = second.events("cannot start")
        assert first.address in line["detail"] and not second.events("listening")
        assert not any("Traceback" in str(raw.get("text", "")) for raw in second.events("raw"))
        with Client(first.address, timeout=10) as client:
            client.score([{"channel": "search", "timestamp": time.time() - 60,
                           "interaction": "click"}])


def test_a_state_store_of_a_newer_schema_exits_1_naming_it(tmp_path):
    import sqlite3

    from attribid.state.store import SCHEMA_VERSION

    path = tmp_path / "state.sqlite"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    proc = ServerProcess("--state", f"sqlite:///{path}").start()
    assert proc.wait(60) == 1
    (line,) = proc.events("cannot start")
    assert "newer" in line["detail"] and str(path) in line["detail"]
    assert not proc.events("listening")
    db = sqlite3.connect(path)  # the store is left as it was
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    db.close()
