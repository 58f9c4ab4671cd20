from __future__ import annotations

import pytest

from tests.serverproc import InProcessServer


@pytest.fixture(scope="session")
def server():
    """One real server in this process (free loopback port), shared by tests that do not stop it."""
    with InProcessServer() as srv:
        yield srv
