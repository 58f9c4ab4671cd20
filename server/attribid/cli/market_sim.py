"""run the closed loop in a simulated market against baselines

``attribid market-sim --seeds 30 [--out DIR]`` runs every market against fixed and
oracle allocations and writes ``DIR/market.md`` (every market's table) and
``DIR/market_regret.png`` (attribid.models.simulation.market_report). All figures
come from this command; intervals are 95 % t intervals over seeds. ``DIR`` is
``runs/`` unless given; ``--out docs`` regenerates the committed report.

``attribid market-sim --journeys [--seeds 30 --days 40 --markets M --methods M
--warmup-journeys N --shoppers N --out DIR]`` runs the journey-level market instead
(attribid.models.simulation.journey_market): the loop fed by each attribution method,
the true credit, Table 6's static split and the spend oracle, and writes
``DIR/market-journeys.md``, ``.json`` and ``.png``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from attribid.cli import OK, CommandError, progress
from attribid.models.simulation.market import MARKETS
from attribid.models.simulation.market_report import write_market_report

#: defaults that differ between the response-curve market and the journey market
CURVE_DAYS, JOURNEY_DAYS = 60, 40
JOURNEY_SHOPPERS, JOURNEY_WARMUP = 3000, 10_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--journeys", action="store_true",
                        help="the journey-level market: the attribution method feeds the loop")
    parser.add_argument("--seeds", type=int, default=30, help="seeds per market (>= 2)")
    parser.add_argument("--days", type=int, default=None,
                        help=f"periods (days) per run (default {CURVE_DAYS}; "
                             f"{JOURNEY_DAYS} with --journeys)")
    parser.add_argument("--learn", type=int, default=10, help="learning periods")
    parser.add_argument("--ablation-seeds", type=int, default=10,
                        help="seeds per market for the exploration comparison (0 = skip)")
    parser.add_argument("--markets", default=None,
                        help="comma-separated market names (default: every market of the mode)")
    parser.add_argument("--methods", default=None,
                        help="with --journeys: comma-separated attribution methods feeding the "
                             "loop (default: all; truth, static and oracle always run)")
    parser.add_argument("--warmup-journeys", type=int, default=JOURNEY_WARMUP,
                        help="with --journeys: journeys of each market the network trains on")
    parser.add_argument("--shoppers", type=int, default=JOURNEY_SHOPPERS,
                        help="with --journeys: shoppers per market")
    parser.add_argument("--out", default="runs",
                        help="directory for the report and its figures (default runs)")


def run(args: argparse.Namespace) -> int:
    if args.journeys:
        return run_journeys(args)
    names = [n for n in (args.markets or ",".join(MARKETS)).split(",") if n]
    unknown = [n for n in names if n not in MARKETS]
    if unknown or not names:
        raise CommandError(f"--markets: unknown {unknown} (choose from {', '.join(MARKETS)})")
    days = CURVE_DAYS if args.days is None else args.days
    if args.seeds < 2:
        raise CommandError(f"--seeds: must be >= 2, got {args.seeds}")
    if not 0 < args.learn < days // 2:
        raise CommandError(f"--learn: must be > 0 and < --days / 2 ({days // 2}), "
                           f"got {args.learn}")
    cmd = (f"attribid market-sim --seeds {args.seeds} --days {days} --learn {args.learn} "
           f"--ablation-seeds {args.ablation_seeds} --markets {','.join(names)} --out {args.out}")
    out = Path(args.out)
    path = write_market_report(names, args.seeds, days, args.learn, args.ablation_seeds, out,
                               cmd, log=lambda text: print(text, flush=True), steps=progress)
    print(f"wrote {path} and {out / 'market_regret.png'}")
    return OK


def _names(flag: str, given: str | None, known: tuple[str, ...]) -> list[str]:
    """The comma-separated names of ``flag`` (all of ``known`` when not given), checked."""
    names = list(known) if given is None else [n for n in given.split(",") if n]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise CommandError(f"{flag}: unknown {unknown} (choose from {', '.join(known)})")
    if len(set(names)) != len(names):
        raise CommandError(f"{flag}: names a method or market twice: {','.join(names)}")
    return names


def run_journeys(args: argparse.Namespace) -> int:
    """The journey-level market: check the flags, run, write the report."""
    # imported here: the journey market pulls in the attribution and network code
    from attribid.models.simulation.journey_market import (
        ATTRIBUTION_METHODS, MARKETS as JOURNEY_MARKETS,
    )
    from attribid.models.simulation.journey_market_report import Sizes, write_journey_report

    names = _names("--markets", args.markets, tuple(JOURNEY_MARKETS))
    methods = _names("--methods", args.methods, ATTRIBUTION_METHODS)
    days = JOURNEY_DAYS if args.days is None else args.days
    if args.seeds < 2:
        raise CommandError(f"--seeds: must be >= 2, got {args.seeds}")
    if days < 2:
        raise CommandError(f"--days: must be >= 2, got {days}")
    if args.shoppers < 10:
        raise CommandError(f"--shoppers: must be >= 10, got {args.shoppers}")
    if "network" in methods:
        if args.warmup_journeys < 50:
            raise CommandError(f"--warmup-journeys: must be >= 50, got {args.warmup_journeys}")
        from attribid.cli.train import require_train_extra
        require_train_extra()
    sizes = Sizes(args.seeds, days, args.shoppers, args.warmup_journeys)
    cmd = (f"attribid market-sim --journeys --seeds {args.seeds} --days {days} "
           f"--markets {','.join(names)} --methods {','.join(methods)} "
           f"--warmup-journeys {args.warmup_journeys} --shoppers {args.shoppers} --out {args.out}")
    out = Path(args.out)
    path = write_journey_report(names, methods, sizes, out, cmd, steps=progress)
    print(f"wrote {path}, {out / 'market-journeys.json'} and {out / 'market-journeys.png'}")
    return OK
