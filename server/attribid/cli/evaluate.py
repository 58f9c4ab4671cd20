"""score every attribution model against simulated ground truth

``attribid evaluate [--journeys N --seed S --out DIR --model PATH --world-models DIR]``
simulates each world with a seed the shipped model never trained on, scores
the classic models and the network(s), and writes ``OUT/evaluation.md`` plus
the PNG plots it references (``OUT`` is ``runs/`` unless given: the committed
report is regenerated with ``--out docs``, as its first line says). ``--world-models DIR`` adds, per world, the
network in ``DIR/<world>/attribid.onnx`` (trained on that world only, as a user
would train on their own journeys: ``attribid train-shipped --per-world DIR``).

``attribid evaluate --zoo N [--journeys 100000 --seed S --format table|json --out DIR]``
runs N random zoo worlds instead (the forms in turn: attribid.models.evaluation.zoo):
per world it simulates the journeys, trains the network with the default recipe on them
(``--epochs``, ``--distill-epochs``, ``--distill-journeys`` change it), and scores every
method against the exact truth; it writes ``OUT/zoo.md`` and ``OUT/zoo.json`` (``OUT`` is
``runs/``; ``--out docs`` writes the committed docs/zoo.md) and prints the tables, or the
JSON with ``--format json``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import time
from pathlib import Path

from attribid.cli import BAD_INPUT, OK, CommandError, errors_as, progress
from attribid.models.evaluation.suite import run_evaluation, world_model
from attribid.models.network.config import TrainConfig
from attribid.models.onnx.runtime import load_model
from attribid.models.simulation.simulate import WORLDS

#: flags whose defaults are left out of the regenerating command line the report quotes
DEFAULTS = {"worlds": ",".join(WORLDS), "latency_repeats": 200, "fidelity_journeys": 1500}


#: journeys per world: the project's worlds, and zoo worlds
JOURNEYS, ZOO_JOURNEYS = 20_000, 100_000
#: the training settings --zoo lets a run change (attribid train's flags of the same names)
ZOO_TRAIN = ("epochs", "patience", "distill_epochs", "distill_journeys", "blend")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--journeys", type=int, default=None,
                        help=f"journeys per world (default {JOURNEYS:,}; "
                             f"{ZOO_JOURNEYS:,} with --zoo)")
    parser.add_argument("--seed", type=int, default=2026, help="simulation seed")
    parser.add_argument("--out", default="runs",
                        help="directory for evaluation.md and PNGs (default runs; docs holds "
                             "the committed report)")
    parser.add_argument("--model", default=None, help="network to score (default: shipped)")
    parser.add_argument("--world-models", default=None,
                        help="directory with <world>/attribid.onnx trained per world")
    parser.add_argument("--worlds", default=DEFAULTS["worlds"],
                        help="comma-separated worlds (default: all)")
    parser.add_argument("--latency-repeats", type=int, default=DEFAULTS["latency_repeats"],
                        help="calls timed for the serving latency figures")
    parser.add_argument("--fidelity-journeys", type=int, default=DEFAULTS["fidelity_journeys"],
                        help="converting journeys per world checked against exact network Shapley")
    parser.add_argument("--zoo", type=int, default=None, metavar="N",
                        help="evaluate on N random zoo worlds (the forms in turn) instead, "
                             "training the network on each: OUT/zoo.md and OUT/zoo.json")
    parser.add_argument("--jobs", type=int, default=1,
                        help="--zoo: worlds evaluated at a time, one process each (default 1)")
    parser.add_argument("--format", choices=("table", "json"), default="table",
                        help="--zoo: what stdout carries (the report's tables, or its JSON)")
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for name in ZOO_TRAIN:
        f = fields[name]
        parser.add_argument("--" + name.replace("_", "-"), type=type(f.default), default=None,
                            help=f"--zoo: {f.metadata['help']} (default {f.default})")


def run(args: argparse.Namespace) -> int:
    """Check the inputs, evaluate, write the report; returns the exit code."""
    if getattr(args, "zoo", None) is not None:
        return run_zoo_command(args)
    for name in ZOO_TRAIN:
        if getattr(args, name, None) is not None:
            raise CommandError(f"--{name.replace('_', '-')} applies to --zoo only")
    if getattr(args, "jobs", 1) != 1:
        raise CommandError("--jobs applies to --zoo only")
    if args.journeys is None:
        args.journeys = JOURNEYS
    worlds = [w.strip() for w in args.worlds.split(",") if w.strip()]
    unknown = [w for w in worlds if w not in WORLDS]
    if unknown or not worlds:
        raise CommandError(f"--worlds: unknown {unknown} (choose from {', '.join(WORLDS)})")
    if args.journeys < 100:
        raise CommandError(f"--journeys: must be >= 100, got {args.journeys}")
    # every model is checked before the minutes of work start
    for name in worlds if args.world_models else []:
        if not world_model(args.world_models, name).is_file():
            raise CommandError(f"--world-models: no {world_model(args.world_models, name)}")
    with errors_as(BAD_INPUT, ValueError, OSError):
        load_model(args.model)
    command = "attribid evaluate " + " ".join(shlex.quote(a) for a in command_line(args))
    path = run_evaluation(Path(args.out), command, worlds, args.journeys, args.seed, args.model,
                          args.world_models, args.fidelity_journeys, args.latency_repeats,
                          log=progress)
    progress(f"wrote {path}")
    return OK


def command_line(args: argparse.Namespace) -> list[str]:
    """The flags that regenerate this run, defaults left out.

    >>> command_line(argparse.Namespace(journeys=600, seed=1, out="d", model=None,
    ...     world_models=None, worlds="recency", latency_repeats=200, fidelity_journeys=1500))
    ['--journeys', '600', '--seed', '1', '--out', 'd', '--worlds', 'recency']
    """
    out = ["--journeys", str(args.journeys), "--seed", str(args.seed), "--out", str(args.out)]
    if args.model:
        out += ["--model", str(args.model)]
    if args.world_models:
        out += ["--world-models", str(args.world_models)]
    for name, default in DEFAULTS.items():
        if getattr(args, name) != default:
            out += ["--" + name.replace("_", "-"), str(getattr(args, name))]
    return out


def run_zoo_command(args: argparse.Namespace) -> int:
    """``evaluate --zoo N``: train and score on N zoo worlds, write zoo.md and zoo.json."""
    from attribid.cli.train import require_train_extra
    from attribid.models.evaluation.zoo import run_zoo
    from attribid.models.evaluation.zoo_report import as_json, markdown, per_form, per_world

    if args.zoo < 1:
        raise CommandError(f"--zoo: must be >= 1, got {args.zoo}")
    journeys = ZOO_JOURNEYS if args.journeys is None else args.journeys
    if journeys < 100:
        raise CommandError(f"--journeys: must be >= 100, got {journeys}")
    if args.jobs < 1:
        raise CommandError(f"--jobs: must be >= 1, got {args.jobs}")
    if args.model or args.world_models or args.worlds != DEFAULTS["worlds"]:
        raise CommandError("--model, --world-models and --worlds do not apply to --zoo")
    changed = {n: getattr(args, n) for n in ZOO_TRAIN if getattr(args, n) is not None}
    with errors_as(BAD_INPUT, ValueError):
        config = TrainConfig(**changed)
    require_train_extra()
    words = ["--zoo", str(args.zoo), "--seed", str(args.seed)]
    words += [] if args.journeys is None else ["--journeys", str(journeys)]
    words += [w for n, v in changed.items() for w in ("--" + n.replace("_", "-"), str(v))]
    command = "attribid evaluate " + " ".join(words + ["--out", str(args.out)])
    started = time.monotonic()
    results = run_zoo(args.zoo, journeys, args.seed, config, log=progress, jobs=args.jobs)
    seconds = time.monotonic() - started
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = as_json(results, command, seconds)
    (out / "zoo.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "zoo.md").write_text(markdown(results, command, machine(), seconds),
                                encoding="utf-8")
    progress(f"wrote {out / 'zoo.md'} and {out / 'zoo.json'}")
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(per_form(results) + per_world(results)))
    return OK


def machine() -> str:
    """The machine a run took place on, for the report's first line.

    >>> "cores" in machine()
    True
    """
    memory = ""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            kib = int(fh.readline().split()[1])
        memory = f", {kib / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{platform.machine()}, {os.cpu_count()} cores{memory}"
