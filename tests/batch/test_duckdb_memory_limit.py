"""--duckdb-memory-limit: the DuckDB engine's memory before it spills, a checked setting."""
from __future__ import annotations

import json

import pytest

from attribid.cli.main import main
from attribid.models.batch.engine import MEMORY_LIMIT, connect

INPUT = ["--touchpoints", "tests/data/touchpoints.csv", "--conversions",
         "tests/data/conversions.csv"]


def limit_of(con) -> str:
    return con.execute("SELECT current_setting('memory_limit')").fetchone()[0]


def test_the_connection_holds_the_limit_it_was_given() -> None:
    assert limit_of(connect("64MB")) != limit_of(connect(MEMORY_LIMIT))


def test_the_flag_sets_the_limit_and_the_answer_is_the_same(capsys) -> None:
    assert main(["attribute", *INPUT, "--method", "last-click", "--format", "json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert main(["attribute", *INPUT, "--method", "last-click", "--format", "json",
                 "--duckdb-memory-limit", "64MB"]) == 0
    assert json.loads(capsys.readouterr().out) == default


@pytest.mark.parametrize("bad", ["lots", "512", "-1GB", "1 PB"])
def test_a_bad_size_names_the_flag(capsys, bad) -> None:
    assert main(["attribute", *INPUT, "--method", "last-click",
                 "--duckdb-memory-limit", bad]) == 2
    assert "--duckdb-memory-limit" in capsys.readouterr().err
