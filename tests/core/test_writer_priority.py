"""The campaign-writes thread runs nicer than the server (it credits conversions with the
network; Score's threads get a busy core first)."""
from __future__ import annotations

import asyncio
import os
import threading

import pytest

from attribid.campaigns.writer import CampaignWriter
from attribid.runtime.settings import Settings


def own_niceness() -> tuple[int, int]:
    tid = threading.get_native_id()
    return tid, os.getpriority(os.PRIO_PROCESS, tid)


@pytest.mark.parametrize("steps", [0, 5, 30])
def test_the_writer_thread_is_the_given_steps_nicer(steps) -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)

    async def main() -> tuple[int, int]:
        writer = CampaignWriter(niceness=steps)
        try:
            return await writer.run(own_niceness)
        finally:
            writer.close()
    tid, nice = asyncio.run(main())
    assert tid != threading.get_native_id()  # it ran in the writer's thread
    assert nice == min(19, base + steps)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # not ours


def test_writer_niceness_is_a_bounded_setting() -> None:
    assert Settings().writer_niceness == 10
    with pytest.raises(ValueError, match="writer_niceness"):
        Settings(writer_niceness=20)
