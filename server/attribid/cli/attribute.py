"""credit conversions, revenue and spend to channels with one or more models

``attribid attribute --touchpoints F --conversions F --method M[,M...|all]`` (or
``--paths F`` for ChannelAttribution's aggregated paths) prints, per channel, the
credited conversions, their share, the credited revenue (the conversions' value),
the spend (the touchpoints' cost), ROAS and CPA, for each method side by side.

``--format``: ``table`` (aligned, rounded; the default on a terminal), ``markdown``,
``csv`` (unrounded; ``channel,credit,...``), ``report-json`` (the whole report) or
``json`` (the default when stdout is not a terminal): an object from channel to
credited conversions, or for several methods an object from method to such an
object. The credits sum to the number of converting journeys that have a
touchpoint at or before their conversion. Warnings about the input (conversions
without touchpoints, journeys whose every touch follows the conversion, repeated
rows) and progress go to stderr; ``--strict`` makes a warning exit 2.
``--epsilon E`` (with ``--value-cap`` and ``--cost-cap``) releases the figures with
E-differential privacy instead; the report states E and the noise.
``--engine duckdb`` (the default) credits the classic methods by SQL over the files where
they lie (CSV, Parquet, globs of parts, a DuckDB file), holding no touchpoint in Python;
``--engine spark`` runs the same SQL on Apache Spark (``--spark-master``, default
``local[*]``; CSV or Parquet files and globs of them; PySpark from the ``spark`` extra);
``--engine memory`` reads every journey into memory first. The network streams its
journeys from DuckDB in bounded batches (on Spark, through the model on each executor).
Bootstrap intervals, ``--epsilon`` and ``--paths`` need each journey's credit: they read
in memory.
"""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from attribid.cli import BAD_INPUT, FAILED, OK, CommandError, errors_as, progress
from attribid.models.attribution.channels import ALL_METHODS, TIMED
from attribid.models.attribution.privacy import PRIVATE_METHODS, PrivacySpec
from attribid.models.attribution.report import FORMATS, Report, build_report, render
from attribid.models.data.loader import (
    TIME_UNITS, DataError, DataIssue, LoadedJourneys, read_journeys, read_paths,
)

if TYPE_CHECKING:
    from attribid.models.batch.engine import JourneyTables

#: where the journeys are credited: by SQL where they lie (DuckDB, Spark), or read into
#: memory first
ENGINES: tuple[str, ...] = ("duckdb", "spark", "memory")
#: the engines that credit by SQL
SQL_ENGINES = ("duckdb", "spark")

#: flag -> (option name, methods it applies to)
_METHOD_FLAGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "half_life": ("half_life_hours", ("time-decay",)),
    "order": ("order", ("markov", "markov-per-journey")),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    parser.add_argument("--method", required=True,
                        help=f"attribution model, a comma-separated list, or 'all': "
                             f"{', '.join(ALL_METHODS)}")
    parser.add_argument("--model", default=None,
                        help="network model (a .onnx file or a directory holding attribid.onnx); "
                             "default: the shipped model")
    parser.add_argument("--half-life", type=float, default=None,
                        help="time-decay half-life in hours (default 168)")
    parser.add_argument("--order", type=int, default=None,
                        help="markov chain order (default 1)")
    parser.add_argument("--bootstrap", type=int, default=0, metavar="N",
                        help="95 %% intervals from N resamples of the journeys (default: none)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="output format (default: table on a terminal, else json)")
    private = parser.add_argument_group(
        "differential privacy", "release the figures with epsilon-differential privacy: "
        "Laplace noise on per-channel sums, one journey added or removed "
        "(attribid.models.attribution.privacy)")
    private.add_argument("--epsilon", type=float, default=None,
                         help="privacy budget of the whole report (default: exact figures)")
    private.add_argument("--value-cap", type=float, default=None,
                         help="conversion values are clipped to this (needed with --epsilon)")
    private.add_argument("--cost-cap", type=float, default=None,
                         help="each journey's touch costs are scaled to sum to at most this "
                              "(needed with --epsilon, unless --paths)")
    private.add_argument("--min-count", type=float, default=10.0,
                         help="channels with fewer noisy conversions are withheld (default 10)")
    private.add_argument("--noise-seed", type=int, default=None,
                         help="seed of the noise, for tests only: whoever knows it can remove "
                              "the noise (default: the OS's entropy)")


def privacy_of(args: argparse.Namespace) -> PrivacySpec | None:
    """The privacy flags as a spec (None without --epsilon); a flag alone is refused.

    >>> privacy_of(argparse.Namespace(epsilon=None, value_cap=None, cost_cap=None,
    ...                               min_count=10.0, noise_seed=None, paths=None)) is None
    True
    """
    if args.epsilon is None:
        for flag in ("value_cap", "cost_cap", "noise_seed"):
            if getattr(args, flag) is not None:
                raise CommandError(f"--{flag.replace('_', '-')} applies with --epsilon only")
        return None
    if args.value_cap is None:
        raise CommandError("--epsilon needs --value-cap: the largest conversion value to count "
                           "in full (fixed in advance, never read off the data)")
    if args.cost_cap is None and args.paths is None:
        raise CommandError("--epsilon needs --cost-cap: the most one journey's touches can "
                           "add to spend")
    try:
        return PrivacySpec(args.epsilon, args.value_cap,
                           args.cost_cap if args.cost_cap is not None else 1.0,
                           args.min_count, args.noise_seed)
    except ValueError as exc:
        raise CommandError(f"--{str(exc).split(' must', 1)[0].replace(' ', '-')}: {exc}") from None


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """The input flags `attribute` and `paths` share."""
    parser.add_argument("--touchpoints", help="touchpoints file (CSV or Parquet)")
    parser.add_argument("--conversions", help="conversions file (CSV or Parquet)")
    parser.add_argument("--paths", default=None,
                        help="aggregated paths instead (ChannelAttribution's format: path, "
                             "total_conversions[, total_conversion_value][, total_null])")
    parser.add_argument("--path-separator", default=">",
                        help="channel separator within --paths' paths (default '>')")
    parser.add_argument("--lookback", type=float, default=None, metavar="DAYS",
                        help="touches more than DAYS before the conversion do not count "
                             "(default: no window)")
    parser.add_argument("--time-unit", choices=tuple(TIME_UNITS), default=None,
                        help="unit of epoch timestamps (default: milliseconds from 1e11 up, "
                             "else seconds)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 2 on any warning about the input")
    parser.add_argument("--engine", choices=ENGINES, default="duckdb",
                        help="duckdb: SQL over the files where they lie (CSV, Parquet, globs, "
                             "a DuckDB file); spark: the same SQL on Apache Spark (CSV, "
                             "Parquet, globs; needs pyspark); memory: every journey read into "
                             "memory first (default duckdb)")
    parser.add_argument("--spark-master", default=None, metavar="URL",
                        help="where --engine spark runs, e.g. local[4] or spark://host:7077 "
                             "(default local[*]: this machine, a thread per core)")
    parser.add_argument("--duckdb-memory-limit", default=None, metavar="SIZE",
                        help="memory DuckDB holds before it spills to disk, e.g. 512MB or 4GB "
                             "(default 512MB)")
    parser.add_argument("--duckdb-threads", type=int, default=None, metavar="N",
                        help="threads DuckDB runs on (default: one per core)")


def _check_input_flags(args: argparse.Namespace) -> None:
    if args.paths is not None:
        if args.touchpoints or args.conversions:
            raise CommandError("--paths replaces --touchpoints and --conversions: give one or "
                               "the other")
        for flag, value in (("--lookback", args.lookback), ("--time-unit", args.time_unit)):
            if value is not None:
                raise CommandError(f"{flag} needs touch times: not available with --paths")
        return
    if not (args.touchpoints and args.conversions):
        raise CommandError("give --touchpoints and --conversions (or --paths)")
    if args.lookback is not None and not args.lookback > 0:
        raise CommandError(f"--lookback must be > 0 days, got {args.lookback}")


def _check_engine_flags(args: argparse.Namespace) -> None:
    """Refuse the flags of an engine other than the one chosen, and a DuckDB file to Spark."""
    engine = getattr(args, "engine", "duckdb")
    if engine == "spark":
        for flag in ("duckdb_memory_limit", "duckdb_threads"):
            if getattr(args, flag, None) is not None:
                raise CommandError(f"--{flag.replace('_', '-')} applies to --engine duckdb "
                                   "only")
        from attribid.models.batch.sources import is_glob, kind_of

        for flag, path in (("--touchpoints", args.touchpoints),
                           ("--conversions", args.conversions)):
            if path and not is_glob(path) and kind_of(path) == "database":
                raise CommandError(f"{flag} {path}: a DuckDB database file is read by "
                                   "--engine duckdb only; --engine spark reads CSV or Parquet "
                                   "files (or globs of them)")
    elif getattr(args, "spark_master", None) is not None:
        raise CommandError("--spark-master applies to --engine spark only")


def report_issues(args: argparse.Namespace, issues: tuple[DataIssue, ...]) -> None:
    """Warnings and notes to stderr; under ``--strict`` a warning is bad input (exit 2)."""
    for issue in issues:
        progress(f"attribid: {issue}")
    warnings = [i for i in issues if i.warning]
    if args.strict and warnings:
        raise CommandError(f"--strict: {len(warnings)} warning(s) about the input, the first: "
                           f"{warnings[0].message}")


def _spark_tables(args: argparse.Namespace) -> "JourneyTables":
    """The journeys as Spark tables (``--engine spark``)."""
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        raise CommandError("--engine spark needs PySpark: pip install pyspark (or pip install "
                           "'attribid[spark]')", FAILED)
    from attribid.models.batch.spark_engine import (
        SPARK_MASTER, SparkUnavailable, open_spark_journeys,
    )

    try:
        return open_spark_journeys(args.touchpoints, args.conversions, time_unit=args.time_unit,
                                   lookback_days=args.lookback,
                                   master=args.spark_master or SPARK_MASTER)
    except SparkUnavailable as exc:
        raise CommandError(str(exc), FAILED) from exc


def open_tables(args: argparse.Namespace) -> "JourneyTables | None":
    """The journeys as SQL tables (``--engine duckdb`` or ``spark``); None when the engine
    cannot read input the line scanner can (then the caller reads it in memory)."""
    import re

    from attribid.models.batch.engine import MEMORY_LIMIT, UnreadableBySql, connect, open_journeys

    _check_input_flags(args)
    _check_engine_flags(args)
    if getattr(args, "engine", "duckdb") == "spark":
        with errors_as(BAD_INPUT, ValueError, OSError):
            try:
                tables = _spark_tables(args)
            except UnreadableBySql:
                return None
        report_issues(args, tables.issues)
        return tables
    limit = getattr(args, "duckdb_memory_limit", None) or MEMORY_LIMIT
    if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", limit):
        raise CommandError(f"--duckdb-memory-limit: a size such as 512MB or 4GB, got {limit!r}")
    threads = getattr(args, "duckdb_threads", None)
    if threads is not None and threads < 1:
        raise CommandError(f"--duckdb-threads must be >= 1, got {threads}")
    with errors_as(BAD_INPUT, ValueError, OSError):
        try:
            tables = open_journeys(args.touchpoints, args.conversions,
                                   time_unit=args.time_unit, lookback_days=args.lookback,
                                   con=connect(memory_limit=limit, threads=threads))
        except UnreadableBySql:
            return None
    report_issues(args, tables.issues)
    return tables


def load_input(args: argparse.Namespace) -> LoadedJourneys:
    """The journeys the input flags name; warnings and notes to stderr.

    Under ``--strict`` a warning is bad input (exit 2).
    """
    _check_input_flags(args)
    if args.paths is not None:
        with errors_as(BAD_INPUT, DataError, OSError):
            loaded = read_paths(args.paths, args.path_separator)
    else:
        with errors_as(BAD_INPUT, DataError, OSError):
            loaded = read_journeys(args.touchpoints, args.conversions, time_unit=args.time_unit,
                                   lookback_days=args.lookback)
    report_issues(args, loaded.issues)
    return loaded


def methods_of(text: str, timed: bool) -> list[str]:
    """The methods a --method value names (``all``: every one the input allows).

    >>> methods_of("linear, markov", True)
    ['linear', 'markov']
    >>> methods_of("all", False)[-2:]
    ['markov-per-journey', 'shapley']
    """
    if text.strip() == "all":
        return [m for m in ALL_METHODS if timed or m not in TIMED]
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in ALL_METHODS]
    if unknown or not names:
        raise CommandError(f"--method: unknown {unknown or [text]} (choose from "
                           f"{', '.join(ALL_METHODS)}, or all)")
    if not timed:
        untimed = [m for m in names if m in TIMED]
        if untimed:
            raise CommandError(f"--method {', '.join(untimed)}: needs touch times and features, "
                               "not available with --paths")
    return list(dict.fromkeys(names))


def method_options(args: argparse.Namespace, methods: list[str]) -> dict[str, dict[str, float | int]]:
    """Each method's options from the flags; a flag that applies to none of them is refused.

    >>> method_options(argparse.Namespace(order=2, half_life=None, model=None), ["markov", "linear"])
    {'markov': {'order': 2}}
    """
    chosen: dict[str, dict[str, float | int]] = {}
    if args.half_life is not None:
        if "time-decay" not in methods:
            raise CommandError("--half-life applies to --method time-decay only")
        if not args.half_life > 0:
            raise CommandError(f"--half-life must be > 0, got {args.half_life}")
    if args.order is not None:
        if not {"markov", "markov-per-journey"} & set(methods):
            raise CommandError("--order applies to --method markov only (markov-per-journey too)")
        if args.order < 1:
            raise CommandError(f"--order must be >= 1, got {args.order}")
    for flag, (name, applies) in _METHOD_FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            for m in methods:
                if m in applies:
                    chosen.setdefault(m, {})[name] = value
    if args.model is not None and "network" not in methods:
        raise CommandError("--model applies to --method network only")
    return chosen


def _network_fits(model: str | None, channels: tuple[str, ...]) -> str | None:
    """Why the network cannot credit these channels (None: it can)."""
    from attribid.models.onnx.runtime import load_model

    known = {c.casefold() for c in load_model(model).channels}
    unknown = [c for c in channels if c.casefold() not in known]
    return f"channels {unknown} unknown to the model" if unknown else None


def _arrow_installed() -> bool:
    """Whether pyarrow is there: the network's stream from DuckDB comes in Arrow batches."""
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def _network_in_all(args: argparse.Namespace, methods: list[str],
                    channels: tuple[str, ...]) -> None:
    """Leave the network out of ``--method all`` when it cannot credit these channels."""
    if args.method.strip() == "all" and "network" in methods:
        with errors_as(BAD_INPUT, ValueError, OSError):
            why = _network_fits(args.model, channels)
        if why:
            progress(f"attribid: note: network left out of 'all': {why}")
            methods.remove("network")


def _memory_report(args: argparse.Namespace, methods: list[str],
                   chosen: dict[str, dict[str, float | int]], privacy: PrivacySpec | None,
                   inputs: dict[str, str]) -> Report:
    """The report of journeys read into memory (every method, bootstrap, privacy)."""
    loaded = load_input(args)
    _network_in_all(args, methods, loaded.journeys.channels)
    # the network refuses a model file it cannot use, or journeys with channels it does not know
    with errors_as(BAD_INPUT, ValueError, OSError):
        return build_report(loaded, methods, chosen, args.model, args.bootstrap, args.seed,
                            args.lookback, inputs, log=progress, privacy=privacy)


def run(args: argparse.Namespace) -> int:
    """Load, attribute, print; returns the exit code (bad input raises CommandError)."""
    if args.bootstrap < 0:
        raise CommandError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    timed_input = args.paths is None
    methods = methods_of(args.method, timed_input)
    chosen = method_options(args, methods)
    privacy = privacy_of(args)
    if privacy is not None:
        if args.method.strip() == "all":
            methods = [m for m in methods if m in PRIVATE_METHODS]
        if args.bootstrap:
            raise CommandError("--bootstrap does not go with --epsilon: a private report "
                               "states its noise instead")
    inputs = ({"paths": args.paths} if args.paths else
              {"touchpoints": args.touchpoints, "conversions": args.conversions})
    # what needs each journey's credit (resamples, noise per journey) reads in memory
    by_sql = (args.engine in SQL_ENGINES and args.paths is None and not args.bootstrap
              and privacy is None and ("network" not in methods or _arrow_installed()))
    tables = open_tables(args) if by_sql else None
    if tables is not None:
        from attribid.models.batch.report import sql_report

        try:
            _network_in_all(args, methods, tables.channels)
            # the network refuses a model file it cannot use, or channels it does not know
            with errors_as(BAD_INPUT, ValueError, OSError):
                report = sql_report(tables, methods, chosen, args.lookback, inputs, args.model)
        finally:
            tables.close()
    else:
        report = _memory_report(args, methods, chosen, privacy, inputs)
    fmt = args.format or ("table" if sys.stdout.isatty() else "json")
    sys.stdout.write(render(report, fmt))
    sys.stdout.flush()
    return OK
