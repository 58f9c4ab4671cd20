"""Batch channel credit from the attribution network (onnxruntime + NumPy only).

One forward pass per journey: the model's ``channel_credit`` output already is
the credit (see models.network). Journeys are scored at their conversion time,
as in training.
"""
from __future__ import annotations

import numpy as np

from attribid.models.data.journeys import Journeys
from attribid.models.network.dataset import featurize_journeys, reference_times, truncate
from attribid.models.onnx.runtime import OnnxModel, load_model


def network_credit(journeys: Journeys, model_path: str | None = None,
                   batch_size: int = 512) -> np.ndarray:
    """Channel credit float64 [J, C] (columns = ``journeys.channels``).

    Rows of converting journeys sum to 1 over the channels they touched (a
    converting journey without touchpoints has nothing to credit and stays 0);
    other rows are 0. ``model_path`` None means the shipped model.

    >>> from attribid.models.data.loader import load_journeys
    >>> js = load_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> credit = network_credit(js)  # journeys a and c converted
    >>> credit.shape, credit.sum(axis=1).round(6).tolist()
    ((4, 7), [1.0, 0.0, 1.0, 0.0])
    """
    model = load_model(model_path)
    rows = np.flatnonzero(journeys.converted)
    out = np.zeros((journeys.n_journeys, len(journeys.channels)))
    if rows.size == 0:
        return out
    picked = to_model_channels(journeys.subset(rows), model)
    _, credit, _ = predict_journeys(model, picked, batch_size)
    # A channel of the data the model does not know never occurs here (checked above).
    known = _model_codes(model)
    for c, name in enumerate(journeys.channels):
        if name.casefold() in known:
            out[rows, c] = credit[:, known[name.casefold()]]
    return out


def _model_codes(model: OnnxModel) -> dict[str, int]:
    # channel names match whatever their case, as the loader reads them
    return {name.casefold(): code for code, name in enumerate(model.channels)}


def predict_journeys(model: OnnxModel, journeys: Journeys, batch_size: int = 512,
                     ref_time: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Conversion [J], credit [J, C_model] and attention (one array per journey) from ONNX.

    ``journeys`` must already use the model's channel codes (``to_model_channels``).

    >>> from attribid.models.data.loader import load_journeys
    >>> js = load_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> model = load_model(None)
    >>> converted = to_model_channels(js.subset(np.flatnonzero(js.converted)), model)
    >>> conv, credit, attention = predict_journeys(model, converted)
    >>> conv.shape, credit.shape, [a.shape for a in attention]
    ((2,), (2, 7), [(3,), (2,)])
    """
    journeys = truncate(journeys, model.max_len)
    if ref_time is None:
        ref_time = reference_times(journeys)
    conv = np.zeros(journeys.n_journeys)
    credit = np.zeros((journeys.n_journeys, len(model.channels)))
    attention: list[np.ndarray] = [np.zeros(0)] * journeys.n_journeys
    lengths = journeys.lengths()
    # Similar lengths per batch keep padding, and so wasted compute, small.
    order = np.argsort(lengths, kind="stable")
    for lo in range(0, order.shape[0], batch_size):
        idx = order[lo:lo + batch_size]
        features, mask = featurize_journeys(journeys.subset(idx), model.max_len,
                                            ref_time=ref_time[idx])
        c, cr, att = model.run(features, mask)
        conv[idx], credit[idx] = c, cr
        for k, j in enumerate(idx):
            attention[j] = att[k, :lengths[j]].astype(np.float64)
    return conv, credit, attention


def to_model_channels(journeys: Journeys, model: OnnxModel) -> Journeys:
    """The same journeys with channel codes re-numbered to the model's channel list.

    Names match whatever their case (``Search`` is the model's ``search``).

    >>> from attribid.models.data.loader import load_journeys
    >>> js = load_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> model = load_model(None)
    >>> converted = to_model_channels(js.subset(np.flatnonzero(js.converted)), model)
    >>> converted.channels == model.channels, [model.channels[c] for c in converted.channel]
    (True, ['display', 'search', 'direct', 'affiliate', 'search'])
    """
    # Only channels that occur need to be known to the model.
    used = np.unique(journeys.channel)
    known = _model_codes(model)
    unknown = [journeys.channels[c] for c in used if journeys.channels[c].casefold() not in known]
    if unknown:
        raise ValueError(f"channel: {unknown} not among the model's channels "
                         f"{list(model.channels)} ({model.path})")
    code = np.full(len(journeys.channels), -1, dtype=np.int32)
    for c in used:
        code[c] = known[journeys.channels[c].casefold()]
    return Journeys(
        ids=journeys.ids, offsets=journeys.offsets, channel=code[journeys.channel],
        timestamp=journeys.timestamp, interaction=journeys.interaction, cost=journeys.cost,
        device=journeys.device, category=journeys.category, converted=journeys.converted,
        conversion_time=journeys.conversion_time, value=journeys.value,
        channels=model.channels)
