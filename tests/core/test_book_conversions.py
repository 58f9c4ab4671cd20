"""Credited conversions in a CampaignBook without a store: idempotent by batch id, apart
from outcome batches of the same id (as through the store)."""
from __future__ import annotations

import dataclasses

import numpy as np

from attribid.models.campaign.book import CampaignBook, CampaignSpec, ChannelSpec, OutcomeRow

NOW = 1_700_000_000.0
CHANNELS = ("search", "email")


def test_a_conversion_batch_and_an_outcome_batch_may_share_an_id() -> None:
    book = CampaignBook(CHANNELS, clock=lambda: NOW)
    book.configure(dataclasses.replace(CampaignSpec(
        "c", 1000.0, NOW - 3600, NOW + 86400, 1.0, 0.0, 0.0, 0.0,
        tuple(ChannelSpec(c, 0.0, 0.0, 0.0) for c in CHANNELS), 0.0, 0.0), attribution="linear"))
    assert book.report("c", "b1", [OutcomeRow("search", 10.0, 0.0, 0.0, 100.0)], NOW)[0] is False
    at, value, credit = np.array([NOW - 60.0]), np.array([5.0]), np.array([[0.5, 0.5]])
    assert book.report_conversions("c", "b1", at, value, credit) == (False, 1, 1)
    assert book.report_conversions("c", "b1", at, value, credit)[0] is True
    assert book.report("c", "b1", [OutcomeRow("search", 10.0, 0.0, 0.0, 100.0)], NOW)[0] is True
    obs = book.observations("c")
    assert obs[obs[:, 0] == 0][:, 2].tolist() == [0.5]  # counted once
