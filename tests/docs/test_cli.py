"""The `attribid` command: help for every command, --version, one way to fail, exit codes."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from attribid.cli.main import COMMANDS, main, summary
from attribid.models.network.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"


def attribid(*argv: str) -> subprocess.CompletedProcess[str]:
    """``attribid ARGV`` as the console script runs it, in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "attribid.cli", *argv], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def test_help_lists_every_command_and_the_exit_codes() -> None:
    done = attribid("--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: attribid ")
    for name in COMMANDS:
        assert f"    {name} " in done.stdout or f"    {name}\n" in done.stdout, name
    assert "Exit codes:" in done.stdout and "2  usage error or bad input" in done.stdout


def test_version_is_the_installed_distribution() -> None:
    done = attribid("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"attribid {version('attribid')}\n"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: attribid {name} ")
    assert summary(name) in " ".join(out.split())
    assert "options:" in out and "--" in out.split("options:", 1)[1]


def test_serve_help_shows_a_percent_sign_and_loads_no_model_runtime() -> None:
    code = ("import contextlib, io, sys\n"
            "from attribid.cli.main import main\n"
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out):\n"
            "    rc = main(['serve', '--help'])\n"
            "heavy = [m for m in ('onnxruntime', 'torch') if m in sys.modules]\n"
            "print(rc, heavy, '100 % busy' in ' '.join(out.getvalue().split()))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "[]", "True"]


def test_train_flags_are_the_config_fields_with_their_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for f in dataclasses.fields(TrainConfig):
        assert f"--{f.name.replace('_', '-')}" in out, f.name
        assert f"{f.metadata['help']} (default {f.default})" in out, f.name


def test_a_bad_spec_names_the_file_line_and_column(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text('{"budget": 100,\n "channels": [}\n')
    assert main(["allocate", "--spec", str(spec)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"attribid allocate: {spec}:2:15: ")
    assert main(["pareto", "--spec", str(tmp_path / "missing.json"), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("attribid pareto: ")


def test_a_bad_journey_file_names_the_file_line_and_column(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "touchpoints.csv"
    bad.write_text("journey_id,timestamp,channel,interaction,cost\nj1,100,search,click,-1\n")
    assert main(["attribute", "--touchpoints", str(bad), "--conversions",
                 str(DATA / "conversions.csv"), "--method", "linear"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"attribid attribute: {bad}, line 2, column 'cost'"), err


def test_a_bad_flag_names_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["market-sim", "--markets", "table6,mars"]) == 2
    assert capsys.readouterr().err == (
        "attribid market-sim: --markets: unknown ['mars'] (choose from table6, hill, near-static)\n")
    assert main(["simulate", "--journeys", "3"]) == 2  # --out is required
    err = capsys.readouterr().err
    assert err.startswith("usage: attribid simulate ")
    assert err.splitlines()[-1] == "attribid simulate: the following arguments are required: --out"


def test_no_command_or_an_unknown_one_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: attribid " in capsys.readouterr().err
    assert main(["bogus"]) == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


def test_an_unreachable_server_fails_with_exit_1() -> None:
    # port 1 on loopback: nothing listens there, so the connection is refused at once
    done = attribid("score", "--journey", "examples/journey.json", "--address", "127.0.0.1:1",
                    "--timeout", "0.5")
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("attribid score: 127.0.0.1:1: ")
    assert "UNAVAILABLE" in done.stderr or "DEADLINE_EXCEEDED" in done.stderr
    assert done.stdout == ""
