"""report the journeys' paths: top paths, lengths, time to conversion, transitions

``attribid paths --touchpoints F --conversions F`` (or ``--paths F``) prints the top
paths (``--top N``, default 20) with their journeys, conversions, conversion rate and
value; the distribution of path lengths and of the time from first touch to
conversion; and the first-order Markov chain's transition matrix. ``--format``:
``table`` (the default on a terminal), ``markdown``, ``json`` (the default when stdout
is not a terminal) or ``csv``: every path in ChannelAttribution's format (``path``,
``total_conversions``, ``total_conversion_value``, ``total_null``), which
``attribid attribute --paths`` reads back. ``--lookback DAYS`` applies as in
``attribid attribute``; warnings about the input go to stderr. ``--engine duckdb`` (the
default) aggregates by SQL where the files lie, ``--engine spark`` by the same SQL on
Spark; ``--engine memory`` reads them first.
"""
from __future__ import annotations

import argparse
import sys

from attribid.cli import OK, CommandError
from attribid.cli.attribute import SQL_ENGINES, add_input_arguments, load_input, open_tables
from attribid.models.attribution.paths import FORMATS, path_report, render_paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    parser.add_argument("--top", type=int, default=20, help="how many top paths to show")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="output format (default: table on a terminal, else json)")


def run(args: argparse.Namespace) -> int:
    """Load, summarise, print; returns the exit code."""
    if args.top < 1:
        raise CommandError(f"--top must be >= 1, got {args.top}")
    tables = open_tables(args) if args.engine in SQL_ENGINES and args.paths is None else None
    if tables is not None:
        from attribid.models.batch.paths_sql import sql_path_report

        try:
            report = sql_path_report(tables)
        finally:
            tables.close()
    else:
        loaded = load_input(args)
        report = path_report(loaded.journeys, loaded.weight, loaded.timed)
    fmt = args.format or ("table" if sys.stdout.isatty() else "json")
    sys.stdout.write(render_paths(report, fmt, args.top))
    sys.stdout.flush()
    return OK
