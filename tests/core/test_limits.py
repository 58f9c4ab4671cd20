"""Bounded memory and logs: campaign count, id lengths, idempotency keys, rows per report,
short echoes of what a caller sent, and refusal lines rate-limited."""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Iterator

import pytest

from attribid.core.types import RawJourney
from attribid.core.validate import RequestValidator
from attribid.kernels.taxonomy import CLICK
from attribid.models.campaign.book import BookLimits, CampaignBook, CampaignSpec, ChannelSpec, OutcomeRow
from attribid.models.errors import InvalidArgument, NotFound, ResourceExhausted, quote
from attribid.runtime import logs

CHANNELS = ("search", "display", "social", "email", "affiliate", "direct", "offline")
DAY = 86400.0
T0 = 1.7e9 + DAY


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def spec(campaign_id: str = "c1") -> CampaignSpec:
    return CampaignSpec(campaign_id, 7000.0, 1.7e9, 1.7e9 + 7 * DAY, 1.0, 0.0, 0.0, 0.0,
                        (ChannelSpec("search", 0, 0, 80.0), ChannelSpec("email", 0, 0, 80.0)),
                        0.0, 0.0)


ROW = [OutcomeRow("search", 10.0, 1.0, 80.0, 100.0)]


def test_a_full_book_refuses_a_new_campaign_naming_campaign_id() -> None:
    """20,000 campaigns used to be accepted; now the book holds at most max_campaigns."""
    book = CampaignBook(CHANNELS, clock=Clock(), limits=BookLimits(max_campaigns=3))
    book.configure(spec("c1"))
    book.configure(spec("c2"))  # "", c1, c2: full
    with pytest.raises(ResourceExhausted) as err:
        book.configure(spec("c3"))
    assert err.value.field == "campaign_id" and "at most 3 campaigns" in err.value.message
    book.configure(dataclasses.replace(spec("c1"), budget=8000.0))  # replacing one still works
    with pytest.raises(NotFound):
        book.allocation("c3")


@pytest.mark.parametrize("value", ["x" * 129, "é" * 65, "\U0001F600" * 33])
def test_ids_past_128_utf8_bytes_are_refused_naming_the_field(value: str) -> None:
    book = CampaignBook(CHANNELS, clock=Clock())
    with pytest.raises(InvalidArgument) as err:
        book.configure(spec(value))
    assert err.value.field == "campaign_id" and "at most 128" in err.value.message
    with pytest.raises(InvalidArgument) as err:
        book.report("", value, ROW, None)
    assert err.value.field == "batch_id" and "at most 128" in err.value.message
    assert book.report("", "é" * 64, ROW, None)[1] == 1  # 128 bytes: accepted


def test_an_unknown_huge_campaign_id_is_refused_short() -> None:
    """A 16 KiB unknown id used to be echoed whole (and overflow the status metadata)."""
    book = CampaignBook(CHANNELS, clock=Clock())
    huge = "x" * 16384
    for call in (lambda: book.allocation(huge), lambda: book.report(huge, "b", ROW, None)):
        with pytest.raises(InvalidArgument) as err:
            call()
        assert err.value.field == "campaign_id" and len(str(err.value)) < 100
    roomy = CampaignBook(CHANNELS, clock=Clock(), limits=BookLimits(max_id_bytes=1000))
    with pytest.raises(NotFound) as missing:
        roomy.allocation("x" * 900)  # within its limit: not found, echoed cut to 200 characters
    assert len(missing.value.message) < 250 and "(900 chars)" in missing.value.message


def test_echoed_channel_names_are_cut() -> None:
    book = CampaignBook(CHANNELS, clock=Clock())
    name = "tv" * 50_000
    with pytest.raises(InvalidArgument) as err:
        book.report("", "b", [OutcomeRow(name, 1.0, 0, 0, 0)], None)
    assert err.value.field == "outcomes[0].channel" and len(str(err.value)) < 300
    with pytest.raises(InvalidArgument) as err:
        book.configure(dataclasses.replace(spec(), channels=(ChannelSpec(name, 0, 0, 0),)))
    assert err.value.field == "channels[0].name" and len(str(err.value)) < 400
    assert quote(name).endswith("... (100000 chars)") and len(quote(name)) == 200


def test_a_report_past_max_report_rows_is_refused_naming_outcomes() -> None:
    book = CampaignBook(CHANNELS, clock=Clock(), limits=BookLimits(max_report_rows=3))
    with pytest.raises(InvalidArgument) as err:
        book.report("", "b", ROW * 4, None)
    assert err.value.field == "outcomes" and "at most 3" in err.value.message
    assert book.report("", "b", ROW * 3, None)[1] == 3


def test_idempotency_keys_are_kept_up_to_a_count_then_the_oldest_counts_again() -> None:
    book = CampaignBook(CHANNELS, clock=Clock(), limits=BookLimits(max_batch_ids=2))
    book.configure(spec())
    for batch in ("a", "b"):
        assert not book.report("", batch, ROW, None)[0]
    assert book.report("c1", "a", ROW, None)[0] is False  # keys are per campaign: pushes out ("", a)
    assert book.report("", "b", ROW, None)[0] is True
    assert book.report("", "a", ROW, None)[0] is False  # dropped: a retry counts again


def test_idempotency_keys_are_kept_for_the_retention_then_a_retry_counts_again() -> None:
    clock = Clock()
    book = CampaignBook(CHANNELS, clock=clock, limits=BookLimits(batch_id_retention_s=3600.0))
    assert not book.report("", "a", ROW, None)[0]
    clock.t += 1800.0
    assert not book.report("", "b", ROW, None)[0]
    assert book.report("", "a", ROW, None)[0]  # within the hour: a duplicate
    clock.t += 1801.0
    assert not book.report("", "a", ROW, None)[0]  # "a" is older than an hour: counted again
    assert book.report("", "b", ROW, None)[0]  # "b" is not


def test_reconfiguring_keeps_the_idempotency_keys() -> None:
    book = CampaignBook(CHANNELS, clock=Clock())
    book.configure(spec())
    book.report("c1", "a", ROW, None)
    book.configure(dataclasses.replace(spec(), budget=9000.0))
    assert book.report("c1", "a", ROW, None)[0]


def test_the_validator_refuses_long_request_and_campaign_ids() -> None:
    v = RequestValidator(("search", "email"), 100, 64, 300.0, max_id_bytes=16)
    touch = [("email", 1_700_000_000_000, CLICK, 0.5, 0)]
    for field, value in (("request_id", "r" * 17), ("campaign_id", "ü" * 9)):
        raw = dataclasses.replace(RawJourney.of(touch), **{field: value})
        with pytest.raises(InvalidArgument) as err:
            v.validate(raw, 1.8e9)
        assert err.value.field == field and "at most 16" in err.value.message
    ok = dataclasses.replace(RawJourney.of(touch), request_id="r" * 16, campaign_id="ü" * 8)
    assert v.validate(ok, 1.8e9).request_id == "r" * 16
    with pytest.raises(InvalidArgument) as err:
        v.validate(RawJourney.of([("tv" * 10_000, 1_700_000_000_000, CLICK, 0.5, 0)]), 1.8e9)
    assert len(str(err.value)) < 300


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    lines: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lines.append  # type: ignore[method-assign]
    logs.get().addHandler(handler)
    yield lines
    logs.get().removeHandler(handler)


def test_the_rate_limited_log_lets_a_few_through_and_summarises_the_rest(
        records: list[logging.LogRecord]) -> None:
    t = [100.0]
    limit = logs.RateLimitedLog(logs.get(), 3, clock=lambda: t[0])
    allowed = [limit.allow("Score") for _ in range(10)] + [limit.allow("Other")]
    assert allowed == [True] * 3 + [False] * 7 + [True]
    assert records == []  # no event loop: the summary waits for the next line after the second
    t[0] += 1.0
    assert limit.allow("Score")
    (summary,) = records
    assert summary.getMessage() == "refusals suppressed"
    assert summary.suppressed == {"Score": 7} and summary.total == 7  # type: ignore[attr-defined]


def test_on_an_event_loop_the_summary_comes_at_the_end_of_the_second(
        records: list[logging.LogRecord]) -> None:
    async def main() -> None:
        limit = logs.RateLimitedLog(logs.get(), 1)
        assert [limit.allow("m") for _ in range(5)] == [True] + [False] * 4
        for _ in range(300):
            await asyncio.sleep(0.01)
            if records:
                break

    asyncio.run(main())
    assert [r.getMessage() for r in records] == ["refusals suppressed"]
    assert records[0].suppressed == {"m": 4}  # type: ignore[attr-defined]
