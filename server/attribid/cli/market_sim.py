"""run the closed loop in a simulated market against baselines

``attribid market-sim --seeds 30 [--out DIR]`` runs every market against fixed and
oracle allocations and writes ``DIR/market.md`` (every market's table) and
``DIR/market_regret.png`` (attribid.models.simulation.market_report). All figures
come from this command; intervals are 95 % t intervals over seeds. ``DIR`` is
``runs/`` unless given; ``--out docs`` regenerates the committed report.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from attribid.cli import OK, CommandError, progress
from attribid.models.simulation.market import MARKETS
from attribid.models.simulation.market_report import write_market_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=int, default=30, help="seeds per market (>= 2)")
    parser.add_argument("--days", type=int, default=60, help="periods (days) per run")
    parser.add_argument("--learn", type=int, default=10, help="learning periods")
    parser.add_argument("--ablation-seeds", type=int, default=10,
                        help="seeds per market for the exploration comparison (0 = skip)")
    parser.add_argument("--markets", default=",".join(MARKETS), help="comma-separated market names")
    parser.add_argument("--out", default="runs",
                        help="directory for market.md and market_regret.png (default runs)")


def run(args: argparse.Namespace) -> int:
    names = [n for n in args.markets.split(",") if n]
    unknown = [n for n in names if n not in MARKETS]
    if unknown or not names:
        raise CommandError(f"--markets: unknown {unknown} (choose from {', '.join(MARKETS)})")
    if args.seeds < 2:
        raise CommandError(f"--seeds: must be >= 2, got {args.seeds}")
    if not 0 < args.learn < args.days // 2:
        raise CommandError(f"--learn: must be > 0 and < --days / 2 ({args.days // 2}), "
                           f"got {args.learn}")
    cmd = (f"attribid market-sim --seeds {args.seeds} --days {args.days} --learn {args.learn} "
           f"--ablation-seeds {args.ablation_seeds} --markets {','.join(names)} --out {args.out}")
    out = Path(args.out)
    path = write_market_report(names, args.seeds, args.days, args.learn, args.ablation_seeds, out,
                               cmd, log=lambda text: print(text, flush=True), steps=progress)
    print(f"wrote {path} and {out / 'market_regret.png'}")
    return OK
