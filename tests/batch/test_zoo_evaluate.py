"""``attribid evaluate --zoo``: end to end through the command line, on two tiny worlds."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from attribid.cli.main import main  # noqa: E402
from attribid.models.evaluation.zoo import NETWORK, TARGET, ZooResult, zoo_names  # noqa: E402
from attribid.models.evaluation.zoo_report import markdown, shortfalls  # noqa: E402
from attribid.models.simulation.zoo_world import FORMS  # noqa: E402

#: the smallest training that still runs both stages
TINY = ["--epochs", "1", "--distill-epochs", "1", "--distill-journeys", "50"]


def test_zoo_run_writes_both_reports_and_prints_json(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "zoo"
    assert main(["evaluate", "--zoo", "2", "--journeys", "2000", "--seed", "3", *TINY,
                 "--format", "json", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((out / "zoo.json").read_text())
    assert printed == written
    worlds = written["worlds"]
    assert [w["world"] for w in worlds] == zoo_names(2, 3) == ["zoo:additive:3", "zoo:noisy-or:4"]
    for w in worlds:
        assert {NETWORK, "shapley", "markov", "last-click", "linear"} <= set(w["accuracy"])
        assert all(0.0 <= a <= 1.0 for a in w["accuracy"].values())
        assert w["journeys"] == 2000 and w["conversions"] > 0 and w["train_seconds"] > 0
        best = max((m for m in w["accuracy"] if m != NETWORK), key=w["accuracy"].get)
        assert w["best_classic"] == best
        assert w["margin"] == pytest.approx(w["accuracy"][NETWORK] - w["accuracy"][best],
                                            abs=1e-6)
    assert written["command"] == ("attribid evaluate --zoo 2 --seed 3 --journeys 2000 "
                                  f"{' '.join(TINY)} --out {out}")
    text = (out / "zoo.md").read_text()
    assert f"Regenerate: `{written['command']}`" in text
    assert "| additive | 1 |" in text and "| noisy-or | 1 |" in text and "| all | 2 |" in text


def test_zoo_flags_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--zoo", "0", "--out", str(tmp_path)]) == 2
    assert "--zoo: must be >= 1" in capsys.readouterr().err
    assert main(["evaluate", "--epochs", "1", "--out", str(tmp_path)]) == 2
    assert "--epochs applies to --zoo only" in capsys.readouterr().err
    assert main(["evaluate", "--jobs", "2", "--out", str(tmp_path)]) == 2
    assert main(["evaluate", "--zoo", "1", "--jobs", "0", "--out", str(tmp_path)]) == 2
    assert main(["evaluate", "--zoo", "1", "--worlds", "recency", "--out", str(tmp_path)]) == 2
    assert main(["evaluate", "--zoo", "1", "--journeys", "50", "--out", str(tmp_path)]) == 2
    assert not list(tmp_path.iterdir())


def _result(world: str, network: float, shapley: float) -> ZooResult:
    return ZooResult(world=world, form=world.split(":")[1], channels=7, journeys=100,
                     conversions=10, conversion_rate=0.1, harvest=["direct"],
                     accuracy={NETWORK: network, "shapley": shapley, "last-click": 0.5,
                               "markov": 0.6},
                     journey_accuracy={},
                     true_shares={"direct": 0.1, "search": 0.6, "email": 0.3},
                     network_shares={"direct": 0.35, "search": 0.5, "email": 0.15},
                     train_seconds=1.0)


def test_the_report_lists_every_world_that_falls_short() -> None:
    results = [_result("zoo:additive:1", 0.97, 0.90), _result("zoo:noisy-or:2", 0.96, 0.98),
               _result("zoo:logistic:3", 0.90, 0.80)]
    assert [r.fails() for r in results] == [False, True, True]
    lines = shortfalls(results)
    assert len(lines) == 2
    assert lines[0].startswith("- zoo:noisy-or:2") and "shapley 0.980 is ahead by 0.020" in lines[0]
    assert f"0.900 < {TARGET}" in lines[1]
    assert "Largest miss: direct (a harvesting channel)" in lines[1]
    text = markdown(results, "attribid evaluate --zoo 3", "test machine", 60.0)
    assert "(2 of 3)" in text and set(FORMS[:3]) <= set(text.split())
    assert shortfalls(results[:1]) == ["- none"]
