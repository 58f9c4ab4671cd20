"""The README's client example runs as written (against a real server)."""
from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Callable

import pytest

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


# --- the batch section: every command as written, sizes cut where the README says so ---

#: README command -> (text replaced, replacement) or flags appended, as the README states them
SMALLER: dict[str, tuple[str, str]] = {
    "simulate": ("--journeys 100000", "--journeys 3000"),
    "train": ("--out runs/model", "--out runs/model --epochs 1 --distill-epochs 1 "
                                  "--distill-journeys 50"),
    "evaluate": ("attribid evaluate", "attribid evaluate --journeys 400 --worlds recency "
                                      "--fidelity-journeys 20 --latency-repeats 5"),
    "market-sim": ("--seeds 30", "--seeds 2 --days 12 --learn 2 --ablation-seeds 0 "
                                 "--markets table6"),
    "pareto": ("--spec examples/allocation_spec.json", "--spec examples/allocation_spec.json "
                                                       "--steps 3"),
    "importance": ("--conversions runs/sim/conversions.csv", "--conversions "
                   "runs/sim/conversions.csv --journeys 300 --bootstrap 2"),
    "privacy": ("attribid privacy", "attribid privacy --journeys 2000 --repeats 3"),
}
#: README lines holding this text -> (text replaced, replacement), before SMALLER by name
SMALLER_LINES: dict[str, tuple[str, str]] = {
    "market-sim --journeys": ("--seeds 30", "--seeds 2 --days 4 --shoppers 300 "
                                            "--warmup-journeys 400 "
                                            "--markets last-touch,brand-search"),
}
#: commands that take more than a few seconds even when small (train and importance need
#: the training extra)
HEAVY = ("train", "evaluate", "pareto", "market-sim", "importance", "privacy")


def batch_commands() -> list[tuple[str, str]]:
    """(command name, line) of every command in the README's batch section, in order."""
    text = README.read_text()
    section = text[text.index("## Batch commands, for marketers"):]
    section = section[:section.index("\n## ", 5)]
    (block,) = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    lines = [line for line in block.splitlines() if line.strip()]
    return [(line.split()[1], line) for line in lines]


def run_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
              keep: Callable[[str, str], bool]) -> dict[str, str]:
    """Run the README's batch lines that ``keep(name, line)`` picks, in order, in a fresh
    directory holding only the venv and the examples, as in a fresh clone.

    The first line runs through the shell as written; the others run through the same
    entry point in this process (``>`` redirects stdout to the file, as the shell would),
    which spares an interpreter start and the kernels' loading per line.
    """
    import shlex
    import subprocess

    from attribid.cli.main import main

    root = README.parent
    (tmp_path / ".venv").symlink_to(root / ".venv")
    (tmp_path / "examples").symlink_to(root / "examples")
    monkeypatch.chdir(tmp_path)
    outputs: dict[str, str] = {}
    for name, line in batch_commands():
        if not keep(name, line):
            continue
        assert line.startswith(".venv/bin/attribid "), line   # reachable after the set-up
        old, new = next((v for k, v in SMALLER_LINES.items() if k in line),
                        SMALLER.get(name, ("", "")))
        if old:
            assert old in line, (name, old)
            line = line.replace(old, new)
        if not outputs:
            done = subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True,
                                  text=True, timeout=300)
            assert done.returncode == 0, (line, done.stderr[-2000:])
            outputs[line] = done.stdout
            continue
        words = shlex.split(line, comments=True)
        target = None
        if ">" in words:
            target, words = words[words.index(">") + 1], words[:words.index(">")]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(words[1:])
        assert code == 0, line
        if target:
            (tmp_path / target).write_text(out.getvalue())
        outputs[line] = out.getvalue()
    return outputs


def test_readme_batch_commands_run_as_written(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # every line but those that need PyTorch's model or take long (the slow test runs them)
    outputs = run_batch(tmp_path, monkeypatch, lambda name, line: name not in HEAVY
                        and "--method network" not in line)
    assert len(outputs) >= 7
    runs = tmp_path / "runs"
    assert (runs / "sim" / "touchpoints.csv").is_file()
    table = (runs / "attribution.md").read_text()
    assert "### Credited conversions (share)" in table and " markov |" in table
    assert "95 % interval" in table
    paths = (runs / "paths.csv").read_text().splitlines()
    assert paths[0] == "path,total_conversions,total_conversion_value,total_null"
    # the plain markov line prints JSON for a script (stdout is not a terminal here)
    markov = next(out for line, out in outputs.items() if line.endswith("--method markov"))
    credit = json.loads(markov)
    assert sum(credit.values()) > 0 and "search" in credit
    allocate = next(out for line, out in outputs.items() if " allocate " in line)
    assert "allocation" in json.loads(allocate)
    assert not (tmp_path / "docs").exists()


@pytest.mark.slow
def test_readme_heavy_batch_commands_run_as_written(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    # the network line needs the model train writes, which needs simulate's journeys
    outputs = run_batch(tmp_path, monkeypatch, lambda name, line: name in (*HEAVY, "simulate")
                        or "--method network" in line)
    runs = tmp_path / "runs"
    for name in ("evaluation.md", "pareto.md", "pareto.png", "market.md", "market_regret.png",
                 "market-journeys.md", "market-journeys.json",
                 "model/attribid.onnx", "importance.png", "privacy.md"):
        assert (runs / name).is_file(), name
    network = next(out for line, out in outputs.items() if "--method network" in line)
    assert sum(json.loads(network).values()) > 0
    # nothing went to docs/: the committed reports stay as they are
    assert not (tmp_path / "docs").exists()
