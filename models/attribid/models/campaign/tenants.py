"""Each tenant's own campaigns: one ``CampaignBook`` per tenant, created on first use.

A tenant's campaign ids, its default campaign ``""`` included, are its own: tenant B's
``c1`` is another campaign than tenant A's ``c1``, and a book never sees another's
campaigns, so no call can name them. Every book gets the same options (its limits among
them), so each limit holds per tenant. Without authentication every caller is the one
tenant ``OPEN_TENANT``.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Sequence

from attribid.models.campaign.book import CampaignBook, Publish

#: the tenant of every call when the server has no tokens
OPEN_TENANT = "default"


class TenantBooks:
    """The campaign books of every tenant; ``step()`` steps them all, like one book.

    >>> books = TenantBooks(("search", "email"), clock=lambda: 1_000_000.0)
    >>> books.of("a") is books.of("a"), books.of("a") is books.of("b")
    (True, False)
    >>> books.tenants, books.step()
    (('a', 'b'), 0)
    """

    def __init__(self, channels: Sequence[str], **book_options: Any) -> None:
        self.channels = tuple(channels)
        self._options = book_options
        #: what the allocation loop paces itself by (every book has the same)
        self.resolve_period_s = float(book_options.get("resolve_period_s", 5.0))
        self._books: dict[str, CampaignBook] = {}
        self._lock = threading.Lock()

    def of(self, tenant: str) -> CampaignBook:
        """``tenant``'s book, created (with its default campaign) on first use."""
        book = self._books.get(tenant)  # the hot path: one dict lookup
        if book is not None:
            return book
        with self._lock:
            book = self._books.get(tenant)
            if book is None:
                book = CampaignBook(self.channels, **self._options)
                # A new dict, swapped in whole: readers and ``step`` never see one change.
                self._books = {**self._books, tenant: book}
        return book

    @property
    def tenants(self) -> tuple[str, ...]:
        """Every tenant with a book, in order of first use."""
        return tuple(self._books)

    def warm(self) -> None:
        """Compile and run every kernel a book uses, on a scratch book."""
        CampaignBook(self.channels, **self._options).warm()

    def step(self, *, on_failure: Callable[[str, Exception, bool], None] | None = None,
             on_recovery: Callable[[str], None] | None = None, resolve: bool = True,
             publish: Callable[[str], Publish] | None = None) -> int:
        """One pass of the background loop over every tenant's book; campaigns re-solved.

        The callbacks are ``CampaignBook.step``'s; they hear a campaign of a tenant other
        than ``OPEN_TENANT`` as ``qualified(tenant, campaign_id)``. ``publish(tenant)`` is
        the publish function of that tenant's book (``CampaignBook.step``).
        """
        solved = 0
        for tenant, book in self._books.items():
            failure, recovery = on_failure, on_recovery
            if tenant != OPEN_TENANT:
                if on_failure is not None:
                    def failure(cid: str, exc: Exception, first: bool, tenant: str = tenant,
                                report: Callable[[str, Exception, bool], None] = on_failure) -> None:
                        report(qualified(tenant, cid), exc, first)
                if on_recovery is not None:
                    def recovery(cid: str, tenant: str = tenant,
                                 report: Callable[[str], None] = on_recovery) -> None:
                        report(qualified(tenant, cid))
            solved += book.step(on_failure=failure, on_recovery=recovery, resolve=resolve,
                                publish=None if publish is None else publish(tenant))
        return solved


def qualified(tenant: str, campaign_id: str) -> str:
    """How logs and metrics name a tenant's campaign: the open tenant's by its id alone.

    >>> qualified("shop-a", "c1"), qualified(OPEN_TENANT, "c1")
    ('shop-a/c1', 'c1')
    """
    return campaign_id if tenant == OPEN_TENANT else f"{tenant}/{campaign_id}"
