"""measure private attribution reports' accuracy against epsilon on simulated truth

``attribid privacy [--epsilons 0.1,0.5,1,2,5 --journeys 2000,20000,200000 --repeats 30
--out DIR]`` simulates journeys, releases the ``linear`` report with each epsilon
(``attribid attribute --epsilon``) over many noise draws and writes ``DIR/privacy.md``:
accuracy against the simulator's true shares, beside the exact report's. ``DIR`` is
``runs/`` unless given; ``--out docs`` regenerates the committed report.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from attribid.cli import OK, CommandError, progress
from attribid.models.attribution.privacy import write_privacy_report

DEFAULTS = {"epsilons": "0.1,0.5,1,2,5", "journeys": "2000,20000,200000", "repeats": 30,
            "seed": 7}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epsilons", default=DEFAULTS["epsilons"], help="comma-separated epsilons")
    parser.add_argument("--journeys", default=DEFAULTS["journeys"],
                        help="comma-separated numbers of journeys")
    parser.add_argument("--repeats", type=int, default=DEFAULTS["repeats"],
                        help="noise draws per cell")
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="simulation seed")
    parser.add_argument("--out", default="runs", help="directory for privacy.md (default runs)")


def _numbers(flag: str, text: str, kind: type) -> list:
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CommandError(f"--{flag}: expected comma-separated numbers, got {text!r}") from None
    if not values or min(values) <= 0:
        raise CommandError(f"--{flag}: every value must be > 0, got {text!r}")
    return values


def run(args: argparse.Namespace) -> int:
    epsilons = _numbers("epsilons", args.epsilons, float)
    sizes = _numbers("journeys", args.journeys, int)
    if args.repeats < 2:
        raise CommandError(f"--repeats must be >= 2, got {args.repeats}")
    command = (f"attribid privacy --epsilons {args.epsilons} --journeys {args.journeys} "
               f"--repeats {args.repeats} --seed {args.seed} --out {args.out}")
    path = write_privacy_report(Path(args.out) / "privacy.md", command, epsilons, sizes,
                                args.repeats, args.seed, log=progress)
    print(f"wrote {path}")
    return OK
