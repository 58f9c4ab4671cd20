"""The network's credit over journeys larger than memory: converting journeys streamed
from DuckDB in bounded Arrow batches, ordered by journey and time, featurized by the one
featurizer (attribid.models.network.dataset, through ``predict_journeys``) and run by
onnxruntime, summed per channel as they go.

Memory is bounded by the batch: ``batch_rows`` touch rows, plus the one journey a batch
ends inside of (at most the model's ``max_len`` touches, all it reads), carried into the
next batch. Only the last ``max_len`` touches of each journey leave DuckDB.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from attribid.kernels.taxonomy import UNKNOWN_CATEGORY
from attribid.models.attribution.classic import Totals
from attribid.models.attribution.network_credit import predict_journeys, to_model_channels
from attribid.models.batch.engine import JourneyTables
from attribid.models.data.journeys import Journeys
from attribid.models.progress import counter

#: touch rows per Arrow batch by default (~10 MB of columns)
BATCH_ROWS = 131_072
_COLUMNS = ("journey", "ts", "channel", "interaction", "cost", "device", "journey_category",
            "conv_ts", "value")


@dataclass(frozen=True)
class StreamStats:
    """What a stream held at most: the bound the tests check."""

    batches: int
    journeys: int
    #: most touch rows in one chunk of journeys handed to the model
    largest_chunk: int


def stream_sql(touches: str, max_len: int) -> str:
    """Converting journeys' last ``max_len`` touches with the model's columns, ordered."""
    # the journey's category: its latest touch naming a known one (the loader's rule)
    return f"""
        WITH cat AS (SELECT journey, coalesce(arg_max(category, pos) FILTER
                                              (WHERE category <> {UNKNOWN_CATEGORY}),
                                              {UNKNOWN_CATEGORY}) AS journey_category
                     FROM {touches} WHERE converted GROUP BY journey)
        SELECT t.journey, t.ts, t.channel, t.interaction, t.cost, t.device,
               c.journey_category, t.conv_ts, t.value
        FROM {touches} t JOIN cat c USING (journey)
        WHERE t.converted AND t.pos > t.n - {int(max_len)}
        ORDER BY t.journey, t.pos"""


def _journeys(cols: dict[str, np.ndarray], channels: tuple[str, ...]) -> Journeys:
    """One chunk of whole journeys (rows grouped by journey, in time order) as Journeys."""
    ids = cols["journey"]
    starts = np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]]))
    offsets = np.append(starts, ids.shape[0]).astype(np.int64)
    return Journeys(
        ids=ids[starts], offsets=offsets, channel=cols["channel"].astype(np.int32),
        timestamp=cols["ts"].astype(np.float64), interaction=cols["interaction"].astype(np.int8),
        cost=cols["cost"].astype(np.float64), device=cols["device"].astype(np.int8),
        category=cols["journey_category"][starts].astype(np.int32),
        converted=np.ones(starts.shape[0], dtype=bool),
        conversion_time=cols["conv_ts"][starts].astype(np.float64),
        value=cols["value"][starts].astype(np.float64), channels=channels)


def _columns(batch: Any) -> dict[str, np.ndarray]:
    return {name: batch.column(name).to_numpy(zero_copy_only=False) for name in _COLUMNS}


def stream_journeys(tables: JourneyTables, max_len: int, batch_rows: int = BATCH_ROWS
                    ) -> Iterator[Journeys]:
    """Converting journeys, truncated to their last ``max_len`` touches, in chunks of whole
    journeys of at most ``batch_rows + max_len`` touches.

    >>> from attribid.models.batch.engine import open_journeys
    >>> t = open_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> [c.ids.tolist() for c in stream_journeys(t, 64, batch_rows=3)]
    [['a'], ['c']]
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
    reader = tables.con.sql(stream_sql(tables.touches(), max_len)).to_arrow_reader(batch_rows)
    carry: dict[str, np.ndarray] | None = None
    for batch in reader:
        cols = _columns(batch)
        if carry is not None:
            cols = {k: np.concatenate([carry[k], cols[k]]) for k in _COLUMNS}
        ids = cols["journey"]
        if ids.shape[0] == 0:
            continue
        # the last journey may go on in the next batch: hold it back
        others = np.flatnonzero(ids != ids[-1])
        cut = int(others[-1]) + 1 if others.size else 0
        carry = {k: v[cut:] for k, v in cols.items()}
        if cut:
            yield _journeys({k: v[:cut] for k, v in cols.items()}, tables.channels)
    if carry is not None and carry["journey"].shape[0]:
        yield _journeys(carry, tables.channels)


def network_totals(tables: JourneyTables, model_path: str | None = None,
                   batch_rows: int = BATCH_ROWS, stats: list[StreamStats] | None = None
                   ) -> Totals:
    """The network's credited conversions and revenue per channel, streamed.

    ``stats``, when given, receives what the stream held at most.

    >>> from attribid.models.batch.engine import open_journeys
    >>> t = open_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> round(float(network_totals(t).conversions.sum()), 6)
    2.0
    """
    from attribid.models.onnx.runtime import load_model

    model = load_model(model_path)
    known = {name.casefold(): code for code, name in enumerate(model.channels)}
    columns = np.array([known.get(c.casefold(), -1) for c in tables.channels])
    conversions, revenue = np.zeros(len(tables.channels)), np.zeros(len(tables.channels))
    batches = journeys = largest = 0
    with counter(tables.conversions, desc="network", unit="journey") as done:
        for chunk in stream_journeys(tables, model.max_len, batch_rows):
            # a channel the model does not know is refused here, naming it
            _, credit, _ = predict_journeys(model, to_model_channels(chunk, model),
                                            ref_time=chunk.conversion_time)
            present = columns >= 0
            conversions[present] += credit[:, columns[present]].sum(axis=0)
            revenue[present] += chunk.value @ credit[:, columns[present]]
            batches, journeys = batches + 1, journeys + chunk.n_journeys
            largest = max(largest, chunk.n_touchpoints)
            done.update(chunk.n_journeys)
    if stats is not None:
        stats.append(StreamStats(batches, journeys, largest))
    return Totals(conversions, revenue)
