"""What a person at a terminal sees, and what a script reading a pipe gets."""
from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from attribid.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "allocation_spec.json"
DATA = ROOT / "tests" / "data"
JSON_KEYS = ["allocation", "revenue", "acquisitions", "exposure", "cpa", "objective", "method",
             "certificate"]


def on_a_terminal(*argv: str) -> tuple[int, str]:
    """``attribid ARGV`` with stdout on a pseudo-terminal; its exit code and what it showed."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "attribid.cli", *argv], stdout=follower,
                            stderr=subprocess.DEVNULL, cwd=ROOT)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:            # the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=120), b"".join(chunks).decode().replace("\r\n", "\n")


def test_allocate_prints_a_plan_on_a_terminal() -> None:
    code, shown = on_a_terminal("allocate", "--spec", str(EXAMPLE))
    assert code == 0
    assert shown.startswith("Budget 100,000.00: 83,369.98 allocated, 16,630.02 unspent\n")
    assert ("Binding: the CPA cap of 33.00: 16,630.02 of the budget stays unspent, since more "
            "spend would raise the CPA above the cap") in shown
    search = next(line for line in shown.splitlines() if line.startswith("search "))
    assert search.split()[:3] == ["search", "36,978.14", "44.4%"]
    assert "{" not in shown


def test_allocate_json_is_unchanged_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["allocate", "--spec", str(EXAMPLE)]) == 0
    piped = capsys.readouterr().out
    assert list(json.loads(piped)) == JSON_KEYS
    assert main(["allocate", "--spec", str(EXAMPLE), "--format", "json"]) == 0
    assert capsys.readouterr().out == piped
    code, shown = on_a_terminal("allocate", "--spec", str(EXAMPLE), "--format", "json")
    assert code == 0 and json.loads(shown) == json.loads(piped)


def test_attribute_prints_a_table_on_a_terminal() -> None:
    code, shown = on_a_terminal("attribute", "--touchpoints", str(DATA / "touchpoints.csv"),
                                "--conversions", str(DATA / "conversions.csv"),
                                "--method", "last-click")
    assert code == 0
    assert shown.startswith("4 journeys; 2 conversions credited; revenue 119.49; spend 3.83\n")
    assert "channel    conversions   share  revenue  spend   ROAS   CPA" in shown
