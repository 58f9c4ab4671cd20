"""Permutation importance of the network's feature groups (the paper's Table 7)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attribid.cli.main import main
from attribid.models.attribution.importance import GROUPS, _Batches, permutation_importance
from attribid.models.data.loader import write_journeys
from attribid.models.onnx.runtime import load_model
from attribid.models.simulation.simulate import WORLDS, simulate


def test_groups_cover_every_feature_once() -> None:
    columns = [c for cols in GROUPS.values() for c in cols]
    assert sorted(columns) == list(range(64))


def test_a_shuffle_moves_only_its_group_among_real_touches() -> None:
    journeys, _ = simulate(WORLDS["balanced"], 300, seed=2)
    batches = _Batches(load_model(None), journeys, batch_size=64)
    cols = np.array(GROUPS["recency"])
    before = [f.copy() for _, f, _ in batches.parts]
    seen: list[np.ndarray] = []

    class Recorder:
        """Stands in for the model: keeps the features it is given."""
        channels = ("x",) * 7

        def run(self, f: np.ndarray, m: np.ndarray):
            seen.append(f)
            return np.zeros(f.shape[0]), np.zeros((f.shape[0], 7)), np.zeros(m.shape)

    batches.model = Recorder()  # type: ignore[assignment]
    batches.run(GROUPS["recency"], np.random.default_rng(0))
    other = np.setdiff1d(np.arange(64), cols)
    for (_, f, m), f0, f1 in zip(batches.parts, before, seen):
        np.testing.assert_array_equal(f, f0)                       # the cache is untouched
        np.testing.assert_array_equal(f1[..., other], f0[..., other])
        np.testing.assert_array_equal(f1[m == 0], f0[m == 0])      # padding stays zero

    def real(features: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([f[m > 0][:, cols] for (_, _, m), f in zip(batches.parts, features)])

    a, b = real(before), real(seen)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(np.sort(a, axis=0), np.sort(b, axis=0))   # the same values


def test_channel_drives_the_credit_most() -> None:
    journeys, _ = simulate(WORLDS["synergy"], 600, seed=3)
    imp = permutation_importance(journeys, load_model(None), bootstrap=3, seed=1)
    k = imp.groups.index("channel")
    assert imp.credit_tv[k] == imp.credit_tv.max() and imp.credit_tv[k] > 0.1
    assert imp.credit_tv_samples.shape == (3, len(GROUPS))
    assert 0.0 <= imp.credit_rank_stability.min() <= imp.credit_rank_stability.max() <= 1.0
    assert imp.channel_change.shape == (len(GROUPS), 7) and np.all(imp.channel_change >= 0)


def test_importance_command_writes_table_and_png(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    journeys, _ = simulate(WORLDS["recency"], 500, seed=4)
    write_journeys(journeys, tmp_path / "t.csv", tmp_path / "c.csv")
    out = tmp_path / "out"
    assert main(["importance", "--touchpoints", str(tmp_path / "t.csv"), "--conversions",
                 str(tmp_path / "c.csv"), "--journeys", "300", "--bootstrap", "2",
                 "--out", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["journeys"] <= 300 and doc["bootstrap"] == 2
    assert set(doc["groups"]) == set(GROUPS)
    assert (out / "importance.png").stat().st_size > 1000
    assert main(["importance", "--touchpoints", str(tmp_path / "t.csv"), "--conversions",
                 str(tmp_path / "c.csv"), "--journeys", "300", "--bootstrap", "0",
                 "--out", str(out), "--format", "markdown"]) == 0
    assert "### What drives the credit" in capsys.readouterr().out
