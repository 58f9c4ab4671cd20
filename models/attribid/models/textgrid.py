"""Plain-text and Markdown tables for the reports people read on a terminal."""
from __future__ import annotations

import math


def number(value: float | None, digits: int = 0, percent: bool = False) -> str:
    """A figure rounded for reading: thousands separated, ``-`` when there is none.

    >>> number(1234.5, 1), number(0.256, 1, percent=True), number(float("nan"))
    ('1,234.5', '25.6%', '-')
    """
    if value is None or not math.isfinite(value):
        return "-"
    return f"{100 * value:.{digits}f}%" if percent else f"{value:,.{digits}f}"


def grid(header: list[str], rows: list[list[str]], markdown: bool = False) -> list[str]:
    """Rows of text cells: aligned columns (first left, the rest right), or a Markdown table.

    >>> print("\\n".join(grid(["channel", "credit"], [["search", "12.5"], ["email", "3.0"]])))
    channel  credit
    -------  ------
    search     12.5
    email       3.0
    """
    if markdown:
        return (["| " + " | ".join(header) + " |",
                 "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
                + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(widths[0]) if k == 0 else c.rjust(widths[k])
                         for k, c in enumerate(cells)).rstrip()
    return [line(header), line(["-" * w for w in widths]), *[line(r) for r in rows]]
