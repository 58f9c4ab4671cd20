"""The JSON allocation spec and the `attribid allocate` command."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from attribid.cli.main import main
from attribid.models.allocation.spec import SpecError, load, parse

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "allocation_spec.json"


def doc(**channel: object) -> dict:
    ch = {"name": "a", "value_per_conversion": 2.0,
          "conversions": {"curve": "hill", "top": 5.0, "half": 3.0, "slope": 0.7}}
    ch.update(channel)
    return {"budget": 10.0, "objective": {"revenue": 1.0}, "channels": [ch]}


@pytest.mark.parametrize("change,field", [
    ({"min": -1}, "channels[0].min"),
    ({"min": 5, "max": 2}, "channels[0].min"),
    ({"conversions": {"curve": "hill", "top": 5.0, "half": 0.0, "slope": 1.0}}, "channels[0].conversions.half"),
    ({"conversions": {"curve": "cubic", "top": 5.0}}, "channels[0].conversions.curve"),
    ({"impressions": {"curve": "exponential", "top": 1.0}}, "channels[0].impressions.scale"),
    ({"name": ""}, "channels[0].name"),
    ({"min": 50, "max": 100}, "budget"),
])
def test_spec_errors_name_the_field(change: dict, field: str) -> None:
    with pytest.raises(SpecError) as err:
        parse(doc(**change))
    assert err.value.field == field


def test_spec_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"budget": 10,\n  "channels": [}\n')
    with pytest.raises(SpecError, match=r"bad.json:2:16"):
        load(bad)


def test_allocate_command_prints_the_allocation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["allocate", "--spec", str(EXAMPLE), "--check"]) == 0
    out = json.loads(capsys.readouterr().out)
    spec = json.loads(EXAMPLE.read_text())
    assert set(out["allocation"]) == {c["name"] for c in spec["channels"]}
    assert sum(out["allocation"].values()) <= spec["budget"] * (1 + 1e-9)
    assert out["cpa"] <= spec["max_cpa"] * (1 + 1e-9)
    assert out["certificate"]["stationarity"] < 1e-8
    assert out["objective"] >= out["slsqp"]["objective"] * (1 - 1e-9)


def test_allocate_command_names_an_infeasible_constraint(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    spec = json.loads(EXAMPLE.read_text())
    spec["max_cpa"] = 1.0
    path = tmp_path / "s.json"
    path.write_text(json.dumps(spec))
    assert main(["allocate", "--spec", str(path)]) == 3
    assert "max_cpa" in capsys.readouterr().err
