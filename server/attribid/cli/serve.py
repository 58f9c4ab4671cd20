"""serve the gRPC API (Score, ScoreStream, outcomes, allocation)

Every flag is a field of attribid.runtime.settings.Settings and can also be set by
an environment variable (``--max-batch`` is ``ATTRIBID_MAX_BATCH``); a flag wins over
the environment, the environment over the default. ``--workers N`` runs N server
processes on one port (SO_REUSEPORT).
"""
from __future__ import annotations

import argparse

from attribid.cli import CommandError
from attribid.runtime import settings as settings_mod


def add_arguments(parser: argparse.ArgumentParser) -> None:
    settings_mod.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code (1 when the server cannot start)."""
    try:
        settings = settings_mod.from_sources(args)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    # imported here: the server loads gRPC, NumPy and Numba, which --help needs none of
    from attribid.runtime import logs, server

    if settings.workers > 1:
        logs.configure(settings.log_level)
        return server.run_workers(settings)
    return server.run_one(settings)
