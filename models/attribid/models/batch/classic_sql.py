"""The classic attribution methods as SQL aggregations over ``JourneyTables``.

Each method's per-channel ``Totals`` equal ``attribid.models.attribution.classic``'s
(floating-point sums aside): the rules credit each converting journey from its row of
``journeys`` (first and last channel, length, touches per channel; time-decay from its
touches' ages), with no sort; the Markov chain's transitions are counted per (from, to)
state over the ordered ``touches`` and solved by ``MarkovChain.from_counts``; Shapley's
set values come from the journeys and conversions of each channel set, then the
``set_shapley`` kernel. Only those aggregates (at most a row per channel, transition or
channel set) reach Python. The SQL is common to DuckDB and Spark (number literals
written ``1e0``: a double in both).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from attribid.kernels.shapley import MAX_SET_CHANNELS
from attribid.models.attribution.classic import (
    METHODS, MarkovChain, Totals, markov_shares, set_shares, set_values_of_counts,
)
from attribid.models.batch.engine import JourneyTables
from attribid.models.batch.grouped_sql import rule_sql, time_decay_sql

#: the rules credited from each journey's row of ``journeys``
JOURNEY_RULES = ("last-click", "first-click", "linear", "position-based")


def _per_channel(tables: JourneyTables, sql: str, params: list[Any] | None = None) -> Totals:
    """Totals from rows of (channel, conversions, revenue)."""
    conversions, revenue = np.zeros(len(tables.channels)), np.zeros(len(tables.channels))
    for code, conv, rev in tables.query(sql, params):
        conversions[int(code)], revenue[int(code)] = float(conv), float(rev)
    return Totals(conversions, revenue)


def rule_totals(tables: JourneyTables, method: str, half_life_hours: float = 168.0) -> Totals:
    """A rule-based method's credited conversions and revenue per channel.

    >>> from attribid.models.batch.engine import open_journeys
    >>> t = open_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> rule_totals(t, "last-click").conversions.tolist()
    [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    """
    n_channels = len(tables.channels)
    if method == "time-decay":
        if not half_life_hours > 0:
            raise ValueError(f"half_life_hours must be > 0, got {half_life_hours}")
        # ages from the journey's latest touch: the kernel's shares, with no underflow
        sql = time_decay_sql(tables.touch_rows, tables.per_journey(), n_channels)
        row = tables.query(sql, [half_life_hours * 3600.0])[0]
    elif method in JOURNEY_RULES:
        row = tables.query(rule_sql(method, tables.per_journey(), n_channels))[0]
    else:
        raise ValueError(f"rule must be one of {', '.join([*JOURNEY_RULES, 'time-decay'])}, "
                         f"got {method!r}")
    values = np.array([0.0 if v is None else float(v) for v in row])
    return Totals(values[:n_channels], values[n_channels:])


def _state(order: int, n_channels: int) -> str:
    """SQL of the chain's state after a touch: digit k = the channel k touches back."""
    base = n_channels + 1
    # BIGINT: a state of many digits passes an INTEGER's range
    digits = ["CAST(channel AS BIGINT)"] + [
        f"coalesce(CAST(lag(channel, {k}) OVER j AS BIGINT), {n_channels}) * {base ** k}"
        for k in range(1, order)]
    return " + ".join(digits)


def markov_chain(tables: JourneyTables, order: int = 1) -> MarkovChain:
    """The order-``order`` chain of ``MarkovChain``, its transitions counted in SQL.

    >>> from attribid.models.batch.engine import open_journeys
    >>> t = open_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> markov_chain(t).transition_matrix()[0][0]
    'START'
    """
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    n_channels = len(tables.channels)
    if (n_channels + 1) ** order > 2 ** 40:
        raise ValueError(f"order {order} with {n_channels} channels has too many states")
    start = (n_channels + 1) ** order
    rows = tables.query(f"""
        WITH s AS (SELECT journey, pos, n, converted, value, {_state(order, n_channels)} AS state
                   FROM {tables.touches()} WINDOW j AS (PARTITION BY journey ORDER BY pos)),
             t AS (SELECT coalesce(lag(state) OVER (PARTITION BY journey ORDER BY pos), {start})
                          AS src, state AS dst, 0e0 AS value FROM s
                   UNION ALL
                   SELECT state, CASE WHEN converted THEN {start + 1} ELSE {start + 2} END,
                          CASE WHEN converted THEN value ELSE 0e0 END FROM s WHERE pos = n)
        SELECT src, dst, count(*), sum(value) FROM t GROUP BY src, dst ORDER BY src, dst""")
    src, dst, count, value = (np.array(col, dtype=kind) for col, kind in zip(
        zip(*rows), (np.int64, np.int64, np.float64, np.float64))) if rows else (
        np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
    return MarkovChain.from_counts(tables.channels, order, src, dst, count, value)


def _presence_totals(tables: JourneyTables, effects: np.ndarray) -> Totals:
    """Each converting journey split over its present channels by ``effects`` (>= 0);
    evenly when they all weigh 0 (the ``weighted_presence`` kernel's rule)."""
    weights = ", ".join(f"({c}, CAST({max(float(e), 0.0)!r} AS DOUBLE))"
                        for c, e in enumerate(effects))
    return _per_channel(tables, f"""
        WITH p AS (SELECT DISTINCT journey, channel, value FROM {tables.touches()}
                   WHERE converted),
             w AS (SELECT p.*, e.weight FROM p JOIN (VALUES {weights}) AS e(channel, weight)
                   USING (channel)),
             s AS (SELECT *, sum(weight) OVER (PARTITION BY journey) AS total,
                          count(*) OVER (PARTITION BY journey) AS k FROM w),
             c AS (SELECT channel, value, CASE WHEN total > 0 THEN weight / total
                                               ELSE 1e0 / k END AS credit FROM s)
        SELECT channel, sum(credit), sum(credit * value) FROM c GROUP BY channel""")


def markov_totals(tables: JourneyTables, method: str = "markov", order: int = 1) -> Totals:
    """``markov`` (RE_c / sum(RE) of all conversions and revenue) or ``markov-per-journey``."""
    effects = markov_chain(tables, order).removal_effects()
    if method == "markov-per-journey":
        return _presence_totals(tables, effects.conversion)
    return Totals(tables.conversions * markov_shares(effects.conversion),
                  tables.revenue * markov_shares(effects.value))


def shapley_totals(tables: JourneyTables) -> Totals:
    """Data-driven Shapley credit: set values from each channel set's counts.

    >>> from attribid.models.batch.engine import open_journeys
    >>> t = open_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> round(float(shapley_totals(t).conversions.sum()), 6)
    2.0
    """
    n_channels = len(tables.channels)
    if n_channels > MAX_SET_CHANNELS:
        raise ValueError(f"shapley supports at most {MAX_SET_CHANNELS} channels, "
                         f"got {n_channels}")
    rows = tables.query(f"""
        SELECT mask, count(*), count(*) FILTER (WHERE converted),
               coalesce(sum(value) FILTER (WHERE converted), 0e0)
        FROM {tables.per_journey()} GROUP BY mask ORDER BY mask""")
    size = 1 << n_channels
    seen, conv = np.zeros(size), np.zeros(size)
    value_of = np.zeros(size)
    for mask, n, c, v in rows:
        seen[int(mask)], conv[int(mask)], value_of[int(mask)] = n, c, v
    sets = np.flatnonzero(conv > 0)
    shares = set_shares(sets, set_values_of_counts(seen, conv), n_channels)
    return Totals(conv[sets] @ shares, value_of[sets] @ shares)


def sql_totals(tables: JourneyTables, method: str, **options: Any) -> Totals:
    """``method``'s (one of ``classic.METHODS``) credited conversions and revenue per channel.

    >>> from attribid.models.batch.engine import open_journeys
    >>> t = open_journeys("tests/data/touchpoints.csv", "tests/data/conversions.csv")
    >>> round(float(sql_totals(t, "linear").conversions.sum()), 9)
    2.0
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    allowed = {"time-decay": {"half_life_hours"}, "markov": {"order"},
               "markov-per-journey": {"order"}}.get(method, set())
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(f"method {method!r} takes no option {', '.join(sorted(unknown))}")
    if tables.n_journeys == 0:
        zeros = np.zeros(len(tables.channels))
        return Totals(zeros, zeros.copy())
    if method in ("markov", "markov-per-journey"):
        return markov_totals(tables, method, int(options.get("order", 1)))
    if method == "shapley":
        return shapley_totals(tables)
    return rule_totals(tables, method, float(options.get("half_life_hours", 168.0)))
