"""``attribid paths``' report (attribid.models.attribution.paths.PathReport) as SQL
aggregations over ``JourneyTables``: a row per distinct path, per path length and per
time bucket, and the first-order chain's transition counts.
"""
from __future__ import annotations

import math

import numpy as np

from attribid.models.attribution.paths import (
    LENGTH_BUCKETS, TIME_BUCKETS, PathReport, PathStats,
)
from attribid.models.batch.classic_sql import markov_chain
from attribid.models.batch.engine import JourneyTables


def path_rows(tables: JourneyTables) -> list[PathStats]:
    """Every distinct path with its journeys, conversions and value; most conversions first.

    >>> from attribid.models.batch.engine import open_journeys
    >>> t = open_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> top = path_rows(t)[0]
    >>> top.path, top.journeys, top.conversions, round(top.value, 2)
    (('affiliate', 'search'), 1.0, 1.0, 79.5)
    """
    path = tables.dialect.path_agg("CAST(channel AS STRING)", "pos")
    rows = tables.query(f"""
        WITH p AS (SELECT journey, {path} AS path,
                          any_value(converted) AS converted, any_value(value) AS value
                   FROM {tables.touches()} GROUP BY journey)
        SELECT path, count(*), count(*) FILTER (WHERE converted),
               coalesce(sum(value) FILTER (WHERE converted), 0e0) FROM p GROUP BY path""")
    names = tables.channels
    out = [PathStats(tuple(names[int(c)] for c in path.split(",")), float(n), float(conv),
                     float(value)) for path, n, conv, value in rows]
    out.sort(key=lambda r: (-r.conversions, -r.journeys, r.path))
    return out


def _bucket_counts(tables: JourneyTables, column: str, buckets: list[tuple[float, float]],
                   where: str, closed_top: bool) -> list[tuple[float, float]]:
    """(journeys, conversions) of each [lo, hi] (``closed_top``) or [lo, hi) bucket."""
    top = "<=" if closed_top else "<"
    parts = []
    for lo, hi in buckets:
        inside = f"{column} >= {lo!r}" + ("" if math.isinf(hi) else f" AND {column} {top} {hi!r}")
        parts += [f"count(*) FILTER (WHERE {inside})",
                  f"count(*) FILTER (WHERE {inside} AND converted)"]
    row = tables.query(f"SELECT {', '.join(parts)} FROM {tables.per_journey()} {where}")[0]
    return [(float(row[2 * k]), float(row[2 * k + 1])) for k in range(len(buckets))]


def sql_path_report(tables: JourneyTables) -> PathReport:
    """Paths, length and time-to-conversion distributions and the transition matrix.

    >>> from attribid.models.batch.engine import open_journeys
    >>> r = sql_path_report(open_journeys("tests/data/touchpoints.csv",
    ...                                   "tests/data/conversions.csv"))
    >>> r.lengths[1], r.time_to_conversion[1]
    (('2', 3.0, 1.0), ('1-24 hours', 2.0))
    """
    lengths = _bucket_counts(tables, "n", [(lo, hi) for _, lo, hi in LENGTH_BUCKETS], "", True)
    length_rows = tuple((label, n, c) for (label, _, _), (n, c) in zip(LENGTH_BUCKETS, lengths))
    time_rows, median = None, None
    if tables.conversions:
        hours = "(conv_ts - first_ts) / 3600e0"
        times = _bucket_counts(tables, hours, [(lo, hi) for _, lo, hi in TIME_BUCKETS],
                               "WHERE converted", False)
        time_rows = tuple((label, c) for (label, _, _), (_, c) in zip(TIME_BUCKETS, times))
        # the memory report's median: the first hour count whose running total reaches half
        k = math.ceil(tables.conversions / 2) - 1
        median = float(tables.query(f"SELECT {hours} AS h FROM {tables.per_journey()} "
                                    f"WHERE converted ORDER BY h LIMIT 1 OFFSET {int(k)}")[0][0])
    rows, cols, matrix = markov_chain(tables, 1).transition_matrix()
    return PathReport(float(tables.n_journeys), float(tables.conversions), tables.revenue,
                      tuple(path_rows(tables)), length_rows, time_rows, median,
                      (rows, cols, np.asarray(matrix)))
