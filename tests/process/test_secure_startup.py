"""`attribid serve` refuses, with exit code 1 and one clear log line, to start unprotected or
with a token file it cannot use."""
from __future__ import annotations

from tests.serverproc import ServerProcess


def test_a_non_loopback_address_without_tls_and_tokens_exits_1_naming_the_setting():
    proc = ServerProcess("--address", "0.0.0.0:0").start()
    assert proc.wait(60) == 1
    (line,) = proc.events("cannot start")
    assert line["level"] == "error"
    assert line["detail"].startswith("address: 0.0.0.0:0 is not a loopback address")
    assert "--insecure" in line["detail"] and not proc.events("listening")


def test_a_malformed_token_file_exits_1_naming_the_file_and_line(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("# admins\nadmin-token-0123456789 shop-a admin\nbidder-token-0123456789\n")
    proc = ServerProcess("--auth-tokens", str(tokens)).start()
    assert proc.wait(60) == 1
    (line,) = proc.events("cannot start")
    assert line["detail"] == f"{tokens}:3: expected TOKEN TENANT ROLE, got 1 field"
    assert "0123456789" not in str(proc.lines)
