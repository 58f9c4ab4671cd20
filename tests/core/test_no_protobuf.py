"""The Score core and the campaign book validate their input with protobuf and gRPC unimportable."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: run in a fresh interpreter: this one has protobuf loaded already
SCRIPT = textwrap.dedent('''
    import importlib.abc, json, sys

    WIRE = ("google.protobuf", "google.rpc", "grpc", "grpc_status", "grpc_health",
            "grpc_reflection", "attribid.v1")

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if any(name == w or name.startswith(w + ".") for w in WIRE):
                raise ImportError(f"the core imported {name}")
            return None

    sys.meta_path.insert(0, Refuse())

    from attribid.core.service import ScoringService  # noqa: F401 (imports the whole pipeline)
    from attribid.core.types import RawJourney
    from attribid.core.validate import RequestValidator
    from attribid.kernels.taxonomy import CLICK
    from attribid.models.campaign.book import CampaignBook, OutcomeRow
    from attribid.models.errors import InvalidArgument

    now = 1_764_300_000.0
    validator = RequestValidator(("search", "email"), 100, 64, 60.0)
    good = [("email", int((now - 60) * 1000), CLICK, 0.5, 0), ("search", int(now * 1000), CLICK, 0.0, 2)]
    out = {"channel": validator.validate(RawJourney.of(good), now).channel.tolist()}
    refused = []
    for bad in ([good[0], ("search", int(now * 1000), CLICK, -1.0, 0)],
                [good[0], ("tv", int(now * 1000), CLICK, 0.0, 0)]):
        try:
            validator.validate(RawJourney.of(bad), now)
        except InvalidArgument as exc:
            refused.append(str(exc))
    book = CampaignBook(("search", "email"), clock=lambda: now)
    try:
        book.report("", "b1", [OutcomeRow("search", float("nan"), 0.0, 0.0, 0.0)], None)
    except InvalidArgument as exc:
        refused.append(str(exc))
    out["refused"] = refused
    out["wire"] = sorted(m for m in sys.modules if m.split(".")[0] in ("grpc", "google"))
    print(json.dumps(out))
''')


def test_validation_needs_no_protobuf() -> None:
    run = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.splitlines()[-1])
    assert out["channel"] == [1, 0]
    assert out["refused"] == [
        "journey[1].cost: must be finite and >= 0",
        "journey[1].channel: unknown channel 'tv' (known: search, email)",
        "outcomes[0].spend: must be finite and >= 0",
    ]
    assert out["wire"] == []
