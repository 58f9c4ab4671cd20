"""The server serves the shipped model's int8 variant (its parity gate passed) unless told
float32, and every answer names which."""
from __future__ import annotations

import time

import pytest

from attribid.client import Client
from tests.serverproc import InProcessServer


@pytest.mark.parametrize("float32, suffix", [(False, "-int8"), (True, "")])
def test_the_served_precision_is_named_in_model_version(float32, suffix) -> None:
    journey = [{"channel": "search", "timestamp": time.time() - 60, "interaction": "click"}]
    with InProcessServer(model_float32=float32) as srv, Client(srv.address, timeout=10) as c:
        version = c.score(journey).model_version
    assert version.endswith("-int8") == bool(suffix)
    serving = [line for line in srv.lines if line.get("event") == "serving"]
    assert serving and serving[0]["model_version"] == version
