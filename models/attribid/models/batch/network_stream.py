"""The network's credit over journeys larger than memory: converting journeys streamed
in bounded Arrow batches, grouped by journey and in time order, featurized by the one
featurizer (attribid.models.network.dataset, through ``predict_journeys``) and run by
onnxruntime, summed per channel as they go, where the rows are: in this process from
DuckDB, on each executor from Spark (``SqlRunner.map_sorted``); only the sums come back.

Memory is bounded by the batch: ``batch_rows`` touch rows, plus the one journey a batch
ends inside of (at most the model's ``max_len`` touches, all it reads), carried into the
next batch. Only the last ``max_len`` touches of each journey leave the SQL engine.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from attribid.kernels.taxonomy import UNKNOWN_CATEGORY
from attribid.models.attribution.classic import Totals
from attribid.models.attribution.network_credit import predict_journeys, to_model_channels
from attribid.models.batch.engine import JourneyTables
from attribid.models.data.journeys import Journeys
from attribid.models.onnx.runtime import OnnxModel, load_model
from attribid.models.progress import counter

#: touch rows per Arrow batch by default (~10 MB of columns)
BATCH_ROWS = 131_072
_COLUMNS = ("journey", "ts", "channel", "interaction", "cost", "device", "journey_category",
            "conv_ts", "value")
#: the stream's order: journeys whole, each in time order
STREAM_ORDER = ("journey", "pos")
#: the models loaded in this process (a Spark executor's Python worker runs many tasks)
_MODELS: dict[str, OnnxModel] = {}


@dataclass(frozen=True)
class StreamStats:
    """What a stream held at most: the bound the tests check."""

    batches: int
    journeys: int
    #: most touch rows in one chunk of journeys handed to the model
    largest_chunk: int


def stream_sql(touches: str, max_len: int) -> str:
    """Converting journeys' last ``max_len`` touches with the model's columns (and ``pos``,
    to order them by ``STREAM_ORDER``)."""
    # the journey's category: its latest touch naming a known one (the loader's rule)
    return f"""
        WITH cat AS (SELECT journey, coalesce(max_by(category, pos) FILTER
                                              (WHERE category <> {UNKNOWN_CATEGORY}),
                                              {UNKNOWN_CATEGORY}) AS journey_category
                     FROM {touches} WHERE converted GROUP BY journey)
        SELECT t.journey AS journey, t.pos AS pos, t.ts AS ts, t.channel AS channel,
               t.interaction AS interaction, t.cost AS cost, t.device AS device,
               c.journey_category AS journey_category, t.conv_ts AS conv_ts, t.value AS value
        FROM {touches} t JOIN cat c ON t.journey = c.journey
        WHERE t.converted AND t.pos > t.n - {int(max_len)}"""


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


def chunk_journeys(batches: Iterable[Any], channels: tuple[str, ...]) -> Iterator[Journeys]:
    """Arrow batches of rows sorted by ``STREAM_ORDER`` as chunks of whole journeys: the
    journey a batch ends inside of is held back for the next."""
    carry: dict[str, np.ndarray] | None = None
    for batch in batches:
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
            yield _journeys({k: v[:cut] for k, v in cols.items()}, channels)
    if carry is not None and carry["journey"].shape[0]:
        yield _journeys(carry, channels)


def _as_they_come(batches: Iterator[Any]) -> Iterator[Any]:
    return batches


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
    yield from chunk_journeys(tables.runner.map_sorted(
        stream_sql(tables.touches(), max_len), STREAM_ORDER, _as_they_come, batch_rows),
        tables.channels)


def _model(path: str) -> OnnxModel:
    if path not in _MODELS:
        _MODELS[path] = load_model(path)
    return _MODELS[path]


@dataclass(frozen=True)
class JourneyCredit:
    """The network's credit of a stream's journeys, per input channel: the work
    ``SqlRunner.map_sorted`` runs where the rows are (pickled to Spark's executors), one
    row of sums per chunk of journeys, or the first chunk's refusal."""

    #: the model file's path where the work runs
    model_file: Callable[[], str]
    channels: tuple[str, ...]

    #: the rows it yields, as Spark's DDL
    SCHEMA = ("journeys BIGINT, touchpoints BIGINT, conversions ARRAY<DOUBLE>, "
              "revenue ARRAY<DOUBLE>, refusal STRING")

    def __call__(self, batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        model = _model(self.model_file())
        known = {name.casefold(): code for code, name in enumerate(model.channels)}
        columns = np.array([known.get(c.casefold(), -1) for c in self.channels])
        present = columns >= 0
        for chunk in chunk_journeys(batches, self.channels):
            conversions, revenue = np.zeros(len(self.channels)), np.zeros(len(self.channels))
            refusal = None
            try:
                _, credit, _ = predict_journeys(model, to_model_channels(chunk, model),
                                                ref_time=chunk.conversion_time)
                conversions[present] = credit[:, columns[present]].sum(axis=0)
                revenue[present] = chunk.value @ credit[:, columns[present]]
            except ValueError as exc:
                # a channel the model does not know: said once, where the sums are read
                refusal = str(exc)
            yield pa.RecordBatch.from_pydict({
                "journeys": [chunk.n_journeys], "touchpoints": [chunk.n_touchpoints],
                "conversions": [conversions.tolist()], "revenue": [revenue.tolist()],
                "refusal": [refusal]}, schema=pa.schema([
                    ("journeys", pa.int64()), ("touchpoints", pa.int64()),
                    ("conversions", pa.list_(pa.float64())), ("revenue", pa.list_(pa.float64())),
                    ("refusal", pa.string())]))
            if refusal is not None:
                return


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
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
    model = load_model(model_path)
    _MODELS.setdefault(model.path, model)
    work = JourneyCredit(tables.runner.ship(model.path), tables.channels)
    conversions, revenue = np.zeros(len(tables.channels)), np.zeros(len(tables.channels))
    batches = journeys = largest = 0
    sums = tables.runner.map_sorted(stream_sql(tables.touches(), model.max_len), STREAM_ORDER,
                                    work, batch_rows, JourneyCredit.SCHEMA)
    with counter(tables.conversions, desc="network", unit="journey") as done:
        for batch in sums:
            for row in batch.to_pylist():
                if row["refusal"] is not None:
                    raise ValueError(row["refusal"])
                conversions += np.asarray(row["conversions"])
                revenue += np.asarray(row["revenue"])
                batches, journeys = batches + 1, journeys + int(row["journeys"])
                largest = max(largest, int(row["touchpoints"]))
                done.update(int(row["journeys"]))
    if stats is not None:
        stats.append(StreamStats(batches, journeys, largest))
    return Totals(conversions, revenue)
