"""The Score pipeline after validation: featurize -> infer -> attribute, and the fallback.

``Scorer.infer_batch`` runs in the inference thread (Numba featurization and
onnxruntime both release the GIL); everything else here is microseconds.
Nothing in this module knows about gRPC.

The model can be replaced while serving (``Scorer.swap``): a batch reads ``Scorer.model``
once, so every call in it is scored, and answered with the version of, one model.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from attribid.kernels.fallback import position_based_credit
from attribid.kernels.credit import shares_over_present_kernel
from attribid.kernels.featurize import N_FEATURES, featurize_kernel
from attribid.models.onnx.runtime import OnnxModel
from attribid.core.runs import ONE_RUN, RunCost, fit_run_cost, plan_runs
from attribid.core.validate import Journey


class Bidder(Protocol):
    def bids_into(self, campaign_id: str, conversion_probability: float,
                  credit: np.ndarray, out: np.ndarray) -> None: ...


@dataclass(slots=True)
class Scored:
    journey: Journey
    probability: float
    credit: np.ndarray        # float64 [channels], shares over the journey's channels
    fallback: bool = False
    reason: str = ""
    bids: np.ndarray | None = None
    impression_bid: float = 0.0
    #: version of the model that scored this call (its base rate, for a fallback)
    model_version: str = ""


class Scorer:
    """Featurize and run the network over a batch; build the fallback answer."""

    def __init__(self, model: OnnxModel, max_batch: int, max_journey: int) -> None:
        #: the model serving now; read once per batch, replaced only by ``swap``
        self.model = model
        self.channels = model.info.channels
        self.n_channels = len(self.channels)
        self.max_len = min(max_journey, model.info.max_len)
        self.max_batch = max_batch
        self.max_journey = max_journey
        # One flat buffer, viewed as [batch, steps, 64] per run so each view is
        # contiguous (onnxruntime copies non-contiguous inputs).
        self._features = np.zeros(max_batch * self.max_len * N_FEATURES, np.float32)
        self._mask = np.zeros(max_batch * self.max_len, np.float32)
        self._lengths = np.zeros(max_batch, np.int64)
        # A batch of one's offsets, category and reference time, filled in place per run
        self._one_offsets = np.zeros(2, np.int64)
        self._one_category = np.zeros(1, np.int32)
        self._one_ref_time = np.zeros(1, np.float64)
        #: what one run costs on the served model: a batch of mixed lengths is split into
        #: runs of similar lengths when that is cheaper (attribid.core.runs); fitted at warm-up
        self.run_cost: RunCost = ONE_RUN
        self._prepared: tuple[OnnxModel, RunCost] | None = None

    def infer_batch(self, journeys: Sequence[Journey]) -> list[Scored]:
        # Read once: a swap during this batch takes effect from the next one.
        model = self.model
        if len(journeys) > 1 and self.run_cost is not ONE_RUN:
            max_len = self.max_len
            lengths = [min(j.channel.shape[0], max_len) for j in journeys]
            # journeys of one length make one run (plan_runs would say so, after sorting them)
            runs = (plan_runs(np.array(lengths, np.int64), self.run_cost)
                    if min(lengths) != max(lengths) else ())
            if len(runs) > 1:
                out: list[Scored | None] = [None] * len(journeys)
                for run in runs:
                    picked = run.tolist()
                    for k, scored in zip(picked, self._run(model, [journeys[k] for k in picked])):
                        out[k] = scored
                return out  # type: ignore[return-value]  # every index is in one run
        return self._run(model, journeys)

    def _run(self, model: OnnxModel, journeys: Sequence[Journey]) -> list[Scored]:
        """One onnxruntime run over ``journeys``, padded to the longest."""
        b = len(journeys)
        if b == 1:
            # As every call at low load is run: the journey's own arrays go to the kernels,
            # without a batch's concatenations and per-journey lists, which cost a lone call
            # twice the Python around its run.
            j = journeys[0]
            offsets = self._one_offsets
            offsets[1] = longest = j.channel.shape[0]
            self._one_category[0] = j.category
            self._one_ref_time[0] = j.ref_time
            cost = j.cost
            # The caller's array: the kernels are compiled for writable ones.
            cost = cost if cost.flags.writeable else cost.copy()
            channel = j.channel
            columns = (j.timestamp, j.interaction, cost, j.device, self._one_category,
                       self._one_ref_time)
        else:
            lengths = [j.channel.shape[0] for j in journeys]
            offsets = np.zeros(b + 1, np.int64)
            np.cumsum(lengths, out=offsets[1:])
            longest = max(lengths)
            cat = np.concatenate
            channel = cat([j.channel for j in journeys])
            columns = (cat([j.timestamp for j in journeys]),
                       cat([j.interaction for j in journeys]), cat([j.cost for j in journeys]),
                       cat([j.device for j in journeys]),
                       np.fromiter((j.category for j in journeys), np.int32, b),
                       np.fromiter((j.ref_time for j in journeys), np.float64, b))
        steps = min(longest, self.max_len)
        features = self._features[: b * steps * N_FEATURES].reshape(b, steps, N_FEATURES)
        mask = self._mask[: b * steps].reshape(b, steps)
        # Inputs were checked by the validator, so the kernel is called directly
        # (the public wrapper's checks cost more than the kernel at batch 1).
        featurize_kernel(offsets, channel, *columns, self.max_len, features, mask, self._lengths)
        conversion, credit, _attention = model.run(features, mask)
        shares = np.empty(credit.shape, np.float64)
        shares_over_present_kernel(credit, offsets, channel, shares)
        version = model.info.version
        return [Scored(j, float(conversion[k]), shares[k], model_version=version)
                for k, j in enumerate(journeys)]

    def fallback(self, journey: Journey, reason: str) -> Scored:
        info = self.model.info
        credit = position_based_credit(journey.channel, np.zeros(self.n_channels))
        return Scored(journey, info.base_rate, credit, fallback=True, reason=reason,
                      model_version=info.version)

    def check(self, model: OnnxModel) -> None:
        """Raise ValueError naming ``model_path`` unless ``model`` can take over from this one.

        It must serve the same channels in the same order (the validator, the campaign book
        and every caller's bids use them) and score as many touchpoints (the validator cuts
        journeys to that length before they are batched).

        >>> from attribid.models.onnx.runtime import load_model
        >>> model = load_model(None)
        >>> Scorer(model, 4, 64).check(load_model(None)) is None
        True
        """
        path = model.info.path
        if model.info.channels != self.channels:
            raise ValueError(f"model_path: {path}: channels {list(model.info.channels)} differ "
                             f"from the served {list(self.channels)}; a new taxonomy needs a "
                             f"restart")
        max_len = min(self.max_journey, model.info.max_len)
        if max_len != self.max_len:
            raise ValueError(f"model_path: {path}: scores {max_len} touchpoints per journey, "
                             f"the served model {self.max_len}; a new length needs a restart")

    def prepare(self, model: OnnxModel, now: float) -> None:
        """Check ``model`` (``check``) and warm it on buffers of its own, beside serving."""
        self.check(model)
        fresh = Scorer(model, self.max_batch, self.max_journey)
        fresh.warm(now)
        self._prepared = (model, fresh.run_cost)  # the new model's own timing, for swap

    def swap(self, model: OnnxModel) -> OnnxModel:
        """Serve ``model`` from the next batch on (``prepare`` it first); returns the old one.

        The batch running now finishes on the old model, which is released after it.
        """
        self.check(model)
        prepared = self._prepared
        old, self.model = self.model, model
        if prepared is not None and prepared[0] is model:
            self.run_cost = prepared[1]
        self._prepared = None
        return old

    def warm(self, now: float) -> None:
        """Run every batch size once so no call pays for first-run costs, then time the
        model for length-aware batching (``run_cost``)."""
        rng = np.random.default_rng(0)
        for b in sorted({1, 2, 4, 8, 16, 32, self.max_batch}):
            if b > self.max_batch:
                continue
            journeys = [_synthetic(rng, self.n_channels, self.max_len, now) for _ in range(b)]
            self.infer_batch(journeys)
        self.fallback(_synthetic(rng, self.n_channels, 3, now), "warm-up")
        self.run_cost = self.time_runs(now)

    def time_runs(self, now: float, repeats: int = 7) -> RunCost:
        """Fit the run cost model on the served model: the fastest of ``repeats`` runs of
        one short journey, one full-length journey and a full batch of them (the fastest,
        since other work on the machine only ever adds time)."""
        if self.max_batch < 2 or self.max_len < 2:
            return ONE_RUN
        rng = np.random.default_rng(1)
        short_steps = max(1, self.max_len // 8)
        model = self.model

        def fastest(journeys: list[Journey]) -> float:
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                self._run(model, journeys)
                best = min(best, time.perf_counter() - t0)
            return best

        short = fastest([_synthetic(rng, self.n_channels, short_steps, now)])
        long = fastest([_synthetic(rng, self.n_channels, self.max_len, now)])
        full = fastest([_synthetic(rng, self.n_channels, self.max_len, now)
                        for _ in range(self.max_batch)])
        return fit_run_cost(short, long, full, short_steps, self.max_len, self.max_batch)


def _synthetic(rng: np.random.Generator, n_channels: int, n: int, now: float) -> Journey:
    return Journey(
        request_id="warm-up", campaign_id="", channel=rng.integers(0, n_channels, n).astype(np.int32),
        timestamp=np.sort(now - rng.uniform(0, 86400 * 7, n)), interaction=rng.integers(1, 3, n).astype(np.int8),
        cost=rng.uniform(0, 2, n), device=rng.integers(0, 4, n).astype(np.int8), category=0,
        ref_time=now, impression_channel=-1, floor_price=0.0, truncated=False,
    )
