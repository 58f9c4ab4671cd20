"""Conversions credited over their journeys: what ReportConversions feeds a campaign.

Each conversion's journey is validated as a Score request's is (the same validator, the
conversion's time as the reference time, so a touch after the conversion is refused) and
credited by the campaign's attribution: the served network (the same featurizer and model
as Score, batched, with buffers of its own so it never shares the inference thread's), or
a rule over the journey (``attribid.kernels.classic.rule_credit``), or a model fitted on
the campaign's window of recent journeys, converting and not (``markov``, ``shapley``:
``attribid.models.campaign.window``; the batch's non-converting journeys are validated at
the server's clock and join the window). The result is a row of shares per conversion over
the model's channels; a journey's shares sum to 1 (over the channels it touched, except
``markov``, whose removal effects split every conversion over all channels alike).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from attribid.kernels.classic import rule_credit
from attribid.models.campaign import model as cm
from attribid.models.errors import MAX_ID_BYTES, InvalidArgument, check_id
from attribid.core.scoring import Scorer
from attribid.core.types import Journey, RawJourney
from attribid.core.validate import RequestValidator

#: conversions featurized and run through the network at once
CREDIT_BATCH = 256


@dataclass(frozen=True)
class RawConversion:
    """One conversion of a ReportConversions request, before validation."""

    conversion_id: str
    timestamp_ms: int
    value: float
    journey: RawJourney


#: a campaign's window credit: (method, converting paths, non-converting paths) -> shares
WindowCredit = Callable[[str, Sequence[np.ndarray], Sequence[np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class Credited:
    """A batch of conversions, validated and credited."""

    #: float64 [n]: each conversion's time (epoch s) and value
    at: np.ndarray
    value: np.ndarray
    #: float64 [n, channels]: each conversion's shares over the model's channels
    credit: np.ndarray
    #: for a window attribution: the channel paths that join the campaign's window
    paths: tuple[np.ndarray, ...] = ()
    idle: tuple[np.ndarray, ...] = ()

    def per_channel(self, channels: Sequence[str]) -> tuple[dict[str, float], dict[str, float]]:
        """This batch's credited conversions and value per channel (channels with credit)."""
        conversions = self.credit.sum(axis=0)
        value = self.credit.T @ self.value
        used = np.flatnonzero(conversions > 0).tolist()
        return ({channels[c]: float(conversions[c]) for c in used},
                {channels[c]: float(value[c]) for c in used})


def _within(i: int, exc: InvalidArgument) -> InvalidArgument:
    """The validator's error for a Score journey, named as this conversion's field."""
    field = exc.field.replace("impression.timestamp_ms", "timestamp_ms")
    return InvalidArgument(f"conversions[{i}].{field}", exc.message)


def validate_conversions(validator: RequestValidator, raws: Sequence[RawConversion],
                         now: float, max_id_bytes: int = MAX_ID_BYTES
                         ) -> tuple[list[Journey], np.ndarray, np.ndarray]:
    """The journeys (scored at their conversion's time), times (epoch s) and values;
    InvalidArgument naming ``conversions[i].<field>`` for the first bad one."""
    journeys: list[Journey] = []
    at = np.empty(len(raws))
    value = np.empty(len(raws))
    for i, raw in enumerate(raws):
        check_id(f"conversions[{i}].conversion_id", raw.conversion_id, max_id_bytes)
        if raw.timestamp_ms <= 0:
            raise InvalidArgument(f"conversions[{i}].timestamp_ms", "required (epoch ms > 0)")
        v = float(raw.value)
        if not (math.isfinite(v) and 0 <= v <= cm.MAX_AMOUNT):
            raise InvalidArgument(f"conversions[{i}].value",
                                  f"must be a finite number in [0, {cm.MAX_AMOUNT:g}], got {v:g}")
        try:
            journeys.append(validator.validate(raw.journey, now))
        except InvalidArgument as exc:
            raise _within(i, exc) from None
        at[i] = raw.timestamp_ms / 1000.0
        value[i] = v
    return journeys, at, value


def network_credit(scorer: Scorer, journeys: Sequence[Journey]) -> np.ndarray:
    """Each journey's shares from the network ``scorer`` serves now, float64 [n, channels]."""
    out = np.zeros((len(journeys), scorer.n_channels))
    # Its own buffers: the serving Scorer's belong to the inference thread.
    own = Scorer(scorer.model, min(CREDIT_BATCH, max(len(journeys), 1)), scorer.max_journey)
    # Runs of similar lengths: a run is padded to its longest journey, and a batch's
    # lengths are mostly short with a long tail.
    order = np.argsort([j.channel.shape[0] for j in journeys], kind="stable")
    for start in range(0, len(journeys), CREDIT_BATCH):
        rows = order[start:start + CREDIT_BATCH]
        for k, scored in zip(rows.tolist(), own.infer_batch([journeys[k] for k in rows])):
            out[k] = scored.credit
    return out


def rule_based_credit(rule: str, journeys: Sequence[Journey], n_channels: int) -> np.ndarray:
    """Each journey's shares under ``rule`` (one of ``model.RULE_ATTRIBUTIONS``)."""
    lengths = np.fromiter((j.channel.shape[0] for j in journeys), np.int64, len(journeys))
    offsets = np.zeros(len(journeys) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    channel = np.concatenate([j.channel for j in journeys]) if journeys else np.empty(0, np.int32)
    timestamp = np.concatenate([j.timestamp for j in journeys]) if journeys else np.empty(0)
    return rule_credit(offsets, channel, timestamp, np.ones(len(journeys), bool), n_channels,
                       rule)


def validate_idle(validator: RequestValidator, raws: Sequence[RawJourney],
                  now: float) -> list[Journey]:
    """Journeys that ended without converting, at the server's clock; InvalidArgument
    naming ``non_converting[i].journey...`` for the first bad one."""
    out = []
    for i, raw in enumerate(raws):
        try:
            out.append(validator.validate(raw, now))
        except InvalidArgument as exc:
            raise InvalidArgument(f"non_converting[{i}].{exc.field}", exc.message) from None
    return out


def credit_conversions(method: str, scorer: Scorer, validator: RequestValidator,
                       raws: Sequence[RawConversion], now: float,
                       max_id_bytes: int = MAX_ID_BYTES,
                       idle: Sequence[RawJourney] = (),
                       window: WindowCredit | None = None) -> Credited:
    """Validate ``raws`` (and, for a window attribution, ``idle``) and credit them by
    ``method`` (a campaign's attribution); ``window`` credits the window attributions."""
    journeys, at, value = validate_conversions(validator, raws, now, max_id_bytes)
    if method in cm.WINDOW_ATTRIBUTIONS:
        if window is None:
            raise ValueError(f"attribution {method!r} needs the campaign's window")
        paths = tuple(j.channel.astype(np.int64) for j in journeys)
        idle_paths = tuple(j.channel.astype(np.int64)
                           for j in validate_idle(validator, idle, now))
        credit = (window(method, paths, idle_paths) if paths
                  else np.zeros((0, scorer.n_channels)))
        return Credited(at, value, credit, paths, idle_paths)
    if not journeys:
        credit = np.zeros((0, scorer.n_channels))
    elif method == cm.NETWORK:
        credit = network_credit(scorer, journeys)
    elif method in cm.RULE_ATTRIBUTIONS:
        credit = rule_based_credit(method, journeys, scorer.n_channels)
    else:
        raise ValueError(f"no crediting for attribution {method!r}")
    return Credited(at, value, credit)
