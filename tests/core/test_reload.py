"""Model reload in the core: a batch runs on one model, a swap lands between batches, a bad
file never serves."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from attribid.core.scoring import Scorer
from attribid.core.service import ScoringService
from attribid.core.types import RawJourney
from attribid.core.validate import RequestValidator
from attribid.kernels.taxonomy import CLICK
from attribid.models.campaign.tenants import TenantBooks
from attribid.models.onnx import contract
from attribid.models.onnx.runtime import OnnxModel, load_model
from attribid.runtime import logs
from attribid.runtime.metrics import Metrics
from attribid.runtime.settings import Settings
from tests.batch.test_onnx_runtime import variant

CHANNELS = ("search", "display", "social", "email", "affiliate", "direct", "offline")


def model(tmp_path: Path, version: str, base_rate: float = 0.02, **meta: str) -> Path:
    """A copy of the shipped model that says it is ``version`` (and other metadata)."""
    return variant(tmp_path, f"{version}.onnx", meta={
        contract.META_VERSION: version,
        contract.META_BASE_RATE: json.dumps({"base_rate": base_rate}), **meta})


class Gated(OnnxModel):
    """The real model, whose run waits for ``go`` once it has started (``entered``)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.entered = threading.Event()
        self.go = threading.Event()

    def run(self, features: np.ndarray, mask: np.ndarray):
        self.entered.set()
        assert self.go.wait(30)
        return super().run(features, mask)


def raw(n: int = 4, seed: int = 0) -> RawJourney:
    now = time.time()
    return RawJourney.of([(CHANNELS[(seed + i) % 7], int((now - 3600 + 60 * i) * 1000), CLICK,
                           0.1, 0) for i in range(n)], request_id=str(seed))


def journeys(k: int):
    validator = RequestValidator(CHANNELS, 512, 64, 300.0)
    return [validator.validate(raw(3 + i, seed=i), time.time()) for i in range(k)]


def test_a_batch_finishes_on_its_model_and_the_next_batch_runs_on_the_new_one(tmp_path):
    gated = Gated(model(tmp_path, "v1", base_rate=0.01))
    scorer = Scorer(gated, max_batch=4, max_journey=64)
    results: list = []
    running = threading.Thread(target=lambda: results.extend(scorer.infer_batch(journeys(3))))
    running.start()
    assert gated.entered.wait(30)
    new = load_model(model(tmp_path, "v2", base_rate=0.05))
    assert scorer.swap(new) is gated  # while the batch is inside onnxruntime
    gated.go.set()
    running.join(30)
    assert [r.model_version for r in results] == ["v1"] * 3
    after = scorer.infer_batch(journeys(2))
    assert [r.model_version for r in after] == ["v2"] * 2
    # The fallback answers with the serving model's base rate, and says which model that is.
    fallback = scorer.fallback(journeys(1)[0], "deadline")
    assert (fallback.probability, fallback.model_version) == (0.05, "v2")


def test_a_model_with_other_channels_or_another_length_is_refused(tmp_path):
    scorer = Scorer(load_model(model(tmp_path, "v1")), max_batch=4, max_journey=64)
    reordered = load_model(model(tmp_path, "reordered", **{
        contract.META_CHANNELS: json.dumps(list(reversed(CHANNELS)))}))
    shorter = load_model(model(tmp_path, "shorter", **{contract.META_MAX_LEN: "32"}))
    with pytest.raises(ValueError, match=r"model_path: .*reordered.onnx: channels .* differ"):
        scorer.check(reordered)
    with pytest.raises(ValueError, match=r"model_path: .*shorter.onnx: scores 32 touchpoints"):
        scorer.swap(shorter)  # swap checks too: no way round the check
    assert scorer.model.info.version == "v1"
    # A longer model still scores what the server was configured to (max_journey): it may serve.
    capped = Scorer(load_model(model(tmp_path, "v1b")), max_batch=4, max_journey=32)
    capped.check(shorter)


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def events(self, name: str) -> list[dict]:
        return [vars(r) for r in self.records if r.getMessage() == name]


@pytest.fixture
def lines():
    logger, handler = logs.get(), Lines()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def service_for(scorer: Scorer) -> ScoringService:
    return ScoringService(Settings(), scorer, TenantBooks(scorer.channels), Metrics.create())


def test_a_call_in_flight_finishes_on_the_old_model_and_the_next_call_gets_the_new(
        tmp_path, lines):
    live = tmp_path / "attribid.onnx"
    os.replace(model(tmp_path, "v1"), live)
    gated = Gated(live)
    service = service_for(Scorer(gated, max_batch=4, max_journey=64))

    async def main():
        service.start()
        in_flight = asyncio.ensure_future(service.score(raw(5), None))
        while not gated.entered.is_set():
            await asyncio.sleep(0.001)
        os.replace(model(tmp_path, "v2"), live)
        done = await service.reload()  # swapped while the first call is inside onnxruntime
        gated.go.set()
        first = await in_flight
        second = await service.score(raw(5, seed=1), None)
        await service.batcher.close(5.0)
        return done, first, second

    done, first, second = asyncio.run(main())
    assert (done.reloaded, done.old_version, done.new_version) == (True, "v1", "v2")
    assert first.model_version == "v1" and not first.fallback
    assert second.model_version == "v2" and not second.fallback
    (line,) = lines.events("model reloaded")
    assert (line["old_version"], line["new_version"]) == ("v1", "v2")
    assert line["model_path"] == str(live)


def test_a_file_that_fails_to_load_or_to_fit_leaves_the_old_model_serving(tmp_path, lines):
    live = tmp_path / "attribid.onnx"
    os.replace(model(tmp_path, "v1"), live)
    service = service_for(Scorer(load_model(live), max_batch=4, max_journey=64))
    other = model(tmp_path, "other-taxonomy", **{
        contract.META_CHANNELS: json.dumps(list(reversed(CHANNELS)))})
    v3 = model(tmp_path, "v3")

    async def main():
        service.start()
        live.write_bytes(b"not an onnx file")
        broken = await service.reload()
        misfit = await service.reload(str(other))
        missing = await service.reload(str(tmp_path / "absent.onnx"))
        still = await service.score(raw(4), None)
        named = await service.reload(str(v3))
        again = await service.reload()  # reads the file the served model came from: v3's
        await service.batcher.close(5.0)
        return broken, misfit, missing, still, named, again

    broken, misfit, missing, still, named, again = asyncio.run(main())
    for refused, why in ((broken, "not a loadable ONNX model"), (misfit, "channels"),
                         (missing, "no ONNX file")):
        assert not refused.reloaded and refused.old_version == refused.new_version == "v1"
        assert refused.detail.startswith("model_path: ") and why in refused.detail
    assert still.model_version == "v1" and not still.fallback
    assert named.reloaded and named.new_version == "v3" and named.model_path == str(v3)
    assert again.reloaded and again.model_path == str(v3) and service.model_path == str(v3)
    failed = lines.events("model reload failed")
    assert len(failed) == 3 and all(f["model_version"] == "v1" for f in failed)
    assert [f["levelname"] for f in failed] == ["ERROR"] * 3
    assert "channels" in failed[1]["detail"] and failed[1]["model_path"] == str(other)
