"""The README's client example runs as written (against a real server)."""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_client_example_runs(server):
    (block,) = [b for b in python_blocks() if "Client(" in b]
    assert len(block.strip().splitlines()) <= 12
    code = block.replace("127.0.0.1:50051", server.address).replace("timeout=0.05", "timeout=5")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    probability, *_rest = out.getvalue().split(" ", 1)
    assert 0 < float(probability) < 1
    assert "search" in out.getvalue() and "email" in out.getvalue()


def test_score_command_prints_credit_and_bids(server):
    import json
    import subprocess
    import sys

    root = README.parent
    done = subprocess.run([sys.executable, "-m", "attribid.cli.main", "score", "--journey",
                           str(root / "examples" / "journey.json"), "--address", server.address,
                           "--timeout", "10"], capture_output=True, text=True, timeout=60, cwd=root)
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)
    assert set(reply["credit"]) == {"display", "social", "email", "search"}
    assert abs(sum(reply["credit"].values()) - 1) < 1e-6
    assert 0 < reply["conversion_probability"] < 1 and len(reply["bid"]) == 7


def test_score_command_reports_refusals(server, tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.json"
    bad.write_text('[{"channel": "radio", "timestamp": 1764300000, "interaction": "click"}]')
    done = subprocess.run([sys.executable, "-m", "attribid.cli.main", "score", "--journey", str(bad),
                           "--address", server.address, "--timeout", "10"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "INVALID_ARGUMENT: journey[0].channel: unknown channel 'radio'" in done.stderr
