from __future__ import annotations

import pytest

from tests.serverproc import ServerProcess, wait_serving


@pytest.fixture(scope="session")
def server():
    """One real server process shared by the end-to-end tests that do not stop it."""
    with ServerProcess() as proc:
        wait_serving(proc.address)
        yield proc
