"""The journey-level plan: one grouped aggregation (a hash table keyed by journey, no sort)
gives every journey's touch count, first and last channel, channel counts and mask, from
which the rule-based methods and Shapley's set counts follow; and the same SQL for DuckDB
and Spark, whose few differences a ``Dialect`` holds.

A sort is needed only where order between the first and the last touch matters (the
Markov chain, the path report, the network's sequences); ``JourneyTables.touches`` builds
that table when first asked.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    """What differs between DuckDB's SQL and Spark's in the queries of this package."""

    #: "duckdb" or "spark"
    name: str

    def bit(self, expr: str) -> str:
        """SQL of the BIGINT ``1 << expr``."""
        if self.name == "spark":
            return f"shiftleft(CAST(1 AS BIGINT), {expr})"
        return f"(CAST(1 AS BIGINT) << ({expr}))"

    def hash_bits(self, expr: str) -> tuple[str, str]:
        """Two bit positions (0..62: a BIGINT's bits short of its sign) from independent
        bits of a hash of ``expr``."""
        if self.name == "spark":
            return (f"pmod(hash({expr}), 63)", f"pmod(shiftright(hash({expr}), 6), 63)")
        return (f"CAST(hash({expr}) % 63 AS INTEGER)",
                f"CAST((hash({expr}) >> 6) % 63 AS INTEGER)")

    def path_agg(self, value: str, order: str) -> str:
        """A journey's ``value``s in ``order``, joined by commas."""
        if self.name == "spark":
            return f"string_agg({value}, ',') WITHIN GROUP (ORDER BY {order})"
        return f"string_agg({value}, ',' ORDER BY {order})"

    def column(self, name: str) -> str:
        """A column name quoted (``timestamp`` is a keyword in both).

        >>> DUCKDB.column("timestamp"), SPARK.column("timestamp")
        ('"timestamp"', '`timestamp`')
        """
        if self.name == "spark":
            return "`" + name.replace("`", "``") + "`"
        return '"' + name.replace('"', '""') + '"'

    def finite(self, expr: str) -> str:
        """SQL true when the DOUBLE ``expr`` is neither infinite nor NaN."""
        if self.name == "spark":
            return f"NOT (isnan({expr}) OR abs({expr}) = double('inf'))"
        return f"isfinite({expr})"

    def distinct_values(self, expr: str) -> str:
        """An aggregate: the distinct values of ``expr`` as a list."""
        if self.name == "spark":
            return f"collect_set({expr})"
        return f"list(DISTINCT {expr})"

    def text_epoch(self, expr: str) -> str:
        """Epoch seconds of an ISO-8601 text (UTC unless it says otherwise); NULL if not one."""
        if self.name == "spark":
            # Spark would also read 'yesterday' or 'now' as times: only a date-led text counts
            return (f"CASE WHEN {expr} RLIKE '^[0-9]{{4}}-' THEN "
                    f"unix_micros(try_to_timestamp({expr})) / 1e6 END")
        return f"epoch(TRY_CAST({expr} AS TIMESTAMPTZ))"

    def time_epoch(self, expr: str) -> str:
        """Epoch seconds of a TIMESTAMP or DATE column."""
        if self.name == "spark":
            return f"unix_micros(CAST({expr} AS TIMESTAMP)) / 1e6"
        return f"epoch({expr})"


DUCKDB, SPARK = Dialect("duckdb"), Dialect("spark")


def _counts(n_channels: int, kept: str) -> list[str]:
    return [f"count(*) FILTER (WHERE {kept} AND channel = {c}) AS c{c}"
            for c in range(n_channels)]


def journeys_sql(dialect: Dialect, source: str, n_channels: int, key: str = "pos") -> str:
    """One row per journey of ``source`` (counted touches, with ``converted``, ``value``,
    ``conv_ts``): ``n``, ``converted``, ``value``, ``first_ts``, ``last_ts``, ``conv_ts``,
    ``mask`` (bit c: channel c present), ``first_channel`` and ``last_channel`` (by
    ``key``), and ``c0``... (touches per channel).

    >>> "min_by(channel, pos)" in journeys_sql(DUCKDB, "touches", 2)
    True
    """
    columns = ["journey", "count(*) AS n", "bool_or(converted) AS converted",
               "any_value(value) AS value", "min(ts) AS first_ts", "max(ts) AS last_ts",
               "any_value(conv_ts) AS conv_ts", f"bit_or({dialect.bit('channel')}) AS mask",
               f"min_by(channel, {key}) AS first_channel",
               f"max_by(channel, {key}) AS last_channel", *_counts(n_channels, "true")]
    return f"SELECT {', '.join(columns)} FROM {source} GROUP BY journey"


def all_journeys_sql(dialect: Dialect, rows: str) -> str:
    """A row per journey of every touch row (``rows``: journey, ts, channel): ``rows_all``,
    ``mask_all``, and ``maybe_tied`` (false only when no two rows of the journey can share a
    time: each row's time hashes to a bit of its own in one of two 63-bit masks).

    >>> "maybe_tied" in all_journeys_sql(SPARK, "rows")
    True
    """
    masks = [f"bit_count(bit_or({dialect.bit(b)}))" for b in dialect.hash_bits("ts")]
    return (f"SELECT journey, count(*) AS rows_all, bit_or({dialect.bit('channel')}) AS mask_all, "
            f"(count(*) > 1 AND {masks[0]} < count(*) AND {masks[1]} < count(*)) AS maybe_tied "
            f"FROM {rows} GROUP BY journey")


def picked_rows_sql(rows: str, conversions: str) -> str:
    """The rows of the converting journeys (with ``value`` and ``conv_ts``) and of the
    journeys that may hold a tie (``conv_ts`` NULL unless they converted), by one scan and
    one hash probe: what the rules and the tie check read again, a fraction of the rows."""
    return f"""
        SELECT r.journey AS journey, r.ts AS ts, r.channel AS channel, k.value AS value,
               k.conv_ts AS conv_ts
        FROM {rows} r JOIN (
            SELECT journey, conv_ts, value FROM {conversions}
            UNION ALL
            SELECT a.journey, NULL, NULL FROM all_journeys a
            LEFT JOIN {conversions} c ON a.journey = c.journey
            WHERE a.maybe_tied AND c.journey IS NULL) k ON r.journey = k.journey"""


def converted_rows_sql() -> str:
    """The counted touches of the converting journeys, from ``picked_rows``."""
    return ("SELECT journey, ts, channel, true AS converted, value, conv_ts FROM picked_rows "
            "WHERE conv_ts IS NOT NULL AND ts <= conv_ts")


def tie_sql() -> str:
    """Whether two rows of a journey share a time (a row when they do)."""
    return """
        SELECT 1 FROM picked_rows
        WHERE journey IN (SELECT journey FROM all_journeys WHERE maybe_tied)
        GROUP BY journey, ts HAVING count(*) > 1 LIMIT 1"""


def journeys_view_sql(n_channels: int) -> str:
    """``journeys`` from ``all_journeys`` and ``converted_journeys``: an unconverted journey
    counts every row; its first and last channel and counts are not needed (no rule credits
    it)."""
    nulls = ", ".join(["NULL AS first_channel", "NULL AS last_channel",
                       *[f"NULL AS c{c}" for c in range(n_channels)]])
    return f"""
        SELECT * FROM converted_journeys
        UNION ALL
        SELECT a.journey, a.rows_all AS n, false AS converted, 0e0 AS value,
               NULL AS first_ts, NULL AS last_ts, NULL AS conv_ts, a.mask_all AS mask, {nulls}
        FROM all_journeys a LEFT JOIN cv ON a.journey = cv.journey WHERE cv.journey IS NULL"""


def _is(column: str, code: int) -> str:
    return f"CASE WHEN {column} = {code} THEN 1e0 ELSE 0e0 END"


def rule_credit_sql(method: str, code: int) -> str:
    """SQL of the credit one converting journey (a row of ``journeys``) gives channel
    ``code`` under a rule: from its first and last channel, its length and its counts.

    >>> rule_credit_sql("linear", 3)
    'c3 * 1e0 / n'
    """
    first, last = _is("first_channel", code), _is("last_channel", code)
    if method == "last-click":
        return last
    if method == "first-click":
        return first
    if method == "linear":
        return f"c{code} * 1e0 / n"
    if method == "position-based":
        middle = f"(c{code} - {first} - {last}) * 0.2e0 / (n - 2)"
        return (f"CASE WHEN n = 1 THEN {first} WHEN n = 2 THEN 0.5e0 * ({first} + {last}) "
                f"ELSE 0.4e0 * ({first} + {last}) + {middle} END")
    raise ValueError(f"no journey-level rule {method!r}")


def rule_sql(method: str, journeys: str, n_channels: int) -> str:
    """One row: every channel's credited conversions, then every channel's revenue."""
    credits = [rule_credit_sql(method, c) for c in range(n_channels)]
    sums = [f"sum({c})" for c in credits] + [f"sum(({c}) * value)" for c in credits]
    return f"SELECT {', '.join(sums)} FROM {journeys} WHERE converted"


def time_decay_sql(touches: str, journeys: str, n_channels: int) -> str:
    """One row as ``rule_sql``'s for time-decay: weights ``2^(-age / half-life)``, ages from
    the journey's latest counted touch (the parameter ``?`` is the half-life in seconds)."""
    weights = ", ".join(f"sum(w) FILTER (WHERE channel = {c}) AS w{c}"
                        for c in range(n_channels))
    sums = ([f"sum(coalesce(w{c}, 0e0) / total)" for c in range(n_channels)]
            + [f"sum(coalesce(w{c}, 0e0) / total * value)" for c in range(n_channels)])
    return f"""
        WITH w AS (SELECT t.journey AS journey, t.channel AS channel, j.value AS value,
                          pow(2e0, -(j.last_ts - t.ts) / ?) AS w
                   FROM {touches} t JOIN {journeys} j ON t.journey = j.journey
                   WHERE j.converted AND t.ts <= j.conv_ts),
             s AS (SELECT journey, any_value(value) AS value, sum(w) AS total, {weights}
                   FROM w GROUP BY journey)
        SELECT {', '.join(sums)} FROM s"""
