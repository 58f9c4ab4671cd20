"""An attribution report: per channel and method, credited conversions, share, revenue,
spend, ROAS and CPA, with bootstrap intervals when asked; and its renderings.

- credited conversions and revenue: what the method gives the channel (revenue is the
  conversions' ``value``, credited by the same method);
- share: the channel's part of all credited conversions;
- spend: the cost of every touchpoint of the channel in the file, whether or not it
  led to a conversion (the money was spent either way);
- ROAS: credited revenue / spend; CPA: spend / credited conversions (undefined, shown
  as ``-`` or null, when the divisor is 0);
- a 95 % interval: the 2.5th and 97.5th percentiles over ``bootstrap`` resamples of
  the journeys (drawn with replacement, as many as there are), each data-driven model
  refitted on each resample (the network's weights stay as trained).

Renderings: ``table`` (aligned, rounded), ``markdown``, ``csv`` (unrounded),
``report-json`` (everything) and ``json`` (channel -> credited conversions; for
several methods, method -> that object). A private report (``privacy``) shows noisy
figures, withholds small channels (null, ``<10``) and states its epsilon and noise.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import orjson

from attribid.models.attribution.channels import DESCRIPTIONS, method_totals
from attribid.models.attribution.classic import Totals
from attribid.models.attribution.privacy import (
    HALF_WIDTH_95, PrivacySpec, check_methods, clipped, clipped_spend, release,
)
from attribid.models.data.loader import LoadedJourneys
from attribid.models.progress import bar
from attribid.models.textgrid import grid, number

FORMATS: tuple[str, ...] = ("table", "markdown", "csv", "report-json", "json")
#: interval level of the bootstrap
LEVEL = 0.95


@dataclass(frozen=True)
class MethodCredit:
    """One method's credit per channel, with 95 % intervals when bootstrapped."""

    method: str
    options: dict[str, float | int]
    conversions: np.ndarray
    revenue: np.ndarray
    #: [C, 2] low/high of conversions, revenue and share; None without bootstrap
    conversions_interval: np.ndarray | None = None
    revenue_interval: np.ndarray | None = None
    share_interval: np.ndarray | None = None
    #: bool [C]: withheld from a private report (too few noisy conversions); None: none
    suppressed: np.ndarray | None = None

    @property
    def share(self) -> np.ndarray:
        total = self.conversions.sum()
        return self.conversions / total if total > 0 else np.zeros_like(self.conversions)


@dataclass(frozen=True)
class Report:
    """Everything one run of ``attribid attribute`` found."""

    channels: tuple[str, ...]
    methods: tuple[MethodCredit, ...]
    #: per channel; None when the input has no costs (aggregated paths)
    spend: np.ndarray | None
    #: journeys read (weighted: aggregated paths count each journey they stand for)
    journeys: float
    #: conversions that have a touchpoint to credit
    conversions: float
    revenue: float
    issues: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    lookback_days: float | None = None
    bootstrap: int = 0
    seed: int = 0
    inputs: dict[str, str] = field(default_factory=dict)
    #: what a differentially private report states (epsilon, caps, noise); None: exact
    privacy: dict[str, Any] | None = None


def build_report(loaded: LoadedJourneys, methods: Sequence[str],
                 options: dict[str, dict[str, float | int]] | None = None,
                 model: str | None = None, bootstrap: int = 0, seed: int = 0,
                 lookback_days: float | None = None, inputs: dict[str, str] | None = None,
                 log: Callable[[str], None] = lambda text: None,
                 privacy: PrivacySpec | None = None) -> Report:
    """Credit the loaded journeys by each method (options per method) into a Report.

    With ``privacy``, the figures are released with differential privacy
    (attribid.models.attribution.privacy): no bootstrap, and only methods whose credit
    of a journey depends on that journey alone.

    >>> from attribid.models.data.loader import read_journeys
    >>> r = build_report(read_journeys("tests/data/touchpoints.csv",
    ...                                "tests/data/conversions.csv"), ["last-click"])
    >>> r.conversions, round(r.revenue, 2), [round(float(x), 2) for x in r.methods[0].revenue[:2]]
    (2.0, 119.49, [79.5, 0.0])
    """
    journeys, weight = loaded.journeys, loaded.weight
    options = options or {}
    if privacy is not None:
        check_methods(list(methods))
        if bootstrap:
            raise ValueError("bootstrap intervals would be read off the private data: "
                             "a private report states its noise instead")
        journeys = clipped(journeys, privacy)
    counted = journeys.converted & (journeys.lengths() > 0)
    w = np.ones(journeys.n_journeys) if weight is None else weight
    fits = {m: method_totals(journeys, m, model, **options.get(m, {})) for m in methods}
    samples: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {m: [] for m in methods}
    if bootstrap > 0:
        rng = np.random.default_rng(seed)
        n = max(int(round(float(w.sum()))), 1)
        p = w / w.sum() if w.sum() > 0 else np.full(w.shape[0], 1.0 / max(w.shape[0], 1))
        log(f"bootstrap: {bootstrap} resamples of {n:,} journeys, {len(methods)} method(s)")
        for _ in bar(range(bootstrap), total=bootstrap, desc="bootstrap", unit="resample"):
            resample = rng.multinomial(n, p).astype(np.float64)
            for m in methods:
                t = fits[m](resample)
                samples[m].append((t.conversions, t.revenue))
    credits = []
    for m in methods:
        t = fits[m](weight)
        lo, hi = 100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2
        intervals: list[np.ndarray | None] = [None, None, None]
        if samples[m]:
            conv = np.array([s[0] for s in samples[m]])
            rev = np.array([s[1] for s in samples[m]])
            totals = conv.sum(axis=1, keepdims=True)
            share = np.divide(conv, totals, out=np.zeros_like(conv), where=totals > 0)
            intervals = [np.percentile(x, [lo, hi], axis=0).T for x in (conv, rev, share)]
        credits.append(MethodCredit(m, dict(options.get(m, {})), t.conversions, t.revenue,
                                    *intervals))
    issues = tuple(str(i) for i in loaded.issues)
    notes = tuple(i.message for i in loaded.issues if not i.warning)
    if privacy is not None:
        return _private(loaded, credits, privacy, lookback_days, inputs)
    return Report(journeys.channels, tuple(credits), loaded.spend, float(w.sum()),
                  float((w * counted).sum()), float((w * counted * journeys.value).sum()),
                  issues, notes, lookback_days, bootstrap, seed, dict(inputs or {}))


def _private(loaded: LoadedJourneys, credits: list[MethodCredit], spec: PrivacySpec,
             lookback_days: float | None, inputs: dict[str, str] | None) -> Report:
    """The report with its figures released under ``spec``; no raw count left in it."""
    journeys = loaded.journeys
    spend = (clipped_spend(loaded.touch_costs, len(journeys.channels), spec.cost_cap)
             if loaded.touch_costs is not None else None)
    n = float(journeys.n_journeys if loaded.weight is None else loaded.weight.sum())
    out = release({c.method: Totals(c.conversions, c.revenue) for c in credits}, spend, n, spec)
    noisy = [MethodCredit(c.method, c.options, out.totals[c.method].conversions,
                          out.totals[c.method].revenue, suppressed=out.suppressed[c.method])
             for c in credits]
    first = out.totals[credits[0].method]
    # the data's warnings stay on stderr for whoever runs this: their counts are not private
    return Report(journeys.channels, tuple(noisy), out.spend, out.journeys,
                  float(first.conversions.sum()), float(first.revenue.sum()), (), (),
                  lookback_days, 0, 0, dict(inputs or {}), out.document())


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def _rows(report: Report, credit: MethodCredit) -> list[dict[str, Any]]:
    """One dict per channel, then the total: the figures every rendering shows."""
    out = []
    spend = report.spend
    for c, name in enumerate(report.channels):
        s = float(spend[c]) if spend is not None else math.nan
        row: dict[str, Any] = {
            "channel": name, "conversions": float(credit.conversions[c]),
            "share": float(credit.share[c]), "revenue": float(credit.revenue[c]), "spend": s,
            "roas": _ratio(float(credit.revenue[c]), s),
            "cpa": _ratio(s, float(credit.conversions[c]))}
        if credit.suppressed is not None and credit.suppressed[c]:
            # too few (noisy) conversions to show: only the total keeps them
            row.update(conversions=math.nan, share=math.nan, revenue=math.nan, roas=math.nan,
                       cpa=math.nan, suppressed=True)
        if credit.conversions_interval is not None:
            row["interval"] = {
                "conversions": credit.conversions_interval[c].tolist(),
                "share": credit.share_interval[c].tolist() if credit.share_interval is not None else None,
                "revenue": credit.revenue_interval[c].tolist() if credit.revenue_interval is not None else None,
            }
        out.append(row)
    total_spend = float(spend.sum()) if spend is not None else math.nan
    conv, rev = float(credit.conversions.sum()), float(credit.revenue.sum())
    out.append({"channel": "total", "conversions": conv, "share": 1.0 if conv > 0 else 0.0,
                "revenue": rev, "spend": total_spend, "roas": _ratio(rev, total_spend),
                "cpa": _ratio(total_spend, conv)})
    return out


def _interval(pair: Sequence[float] | None, digits: int, percent: bool = False) -> str:
    if pair is None:
        return ""
    return f"{number(pair[0], digits, percent)}-{number(pair[1], digits, percent)}"


def _method_title(credit: MethodCredit) -> str:
    opts = ", ".join(f"{k.replace('_hours', '')} {v:g}" for k, v in credit.options.items())
    return f"{credit.method}{f' ({opts})' if opts else ''}: {DESCRIPTIONS.get(credit.method, '')}"


def _summary(report: Report) -> list[str]:
    parts = [f"{report.journeys:,.0f} journeys", f"{report.conversions:,.0f} conversions credited",
             f"revenue {report.revenue:,.2f}"]
    if report.spend is not None:
        parts.append(f"spend {float(report.spend.sum()):,.2f}")
    if report.lookback_days is not None:
        parts.append(f"lookback {report.lookback_days:g} days")
    if report.bootstrap:
        parts.append(f"95 % intervals from {report.bootstrap} bootstrap resamples")
    lines = ["; ".join(parts)]
    if report.privacy:
        p = report.privacy
        lines.append(
            f"Differentially private: epsilon {p['epsilon']:g} (one journey added or removed); "
            f"values clipped at {p['value_cap']:g}, each journey's costs at {p['cost_cap']:g}; "
            f"noise within +-{p['noise_95']['conversions']:,.1f} conversions and "
            f"+-{p['noise_95']['revenue']:,.2f} revenue per channel (95 %); channels under "
            f"{p['min_count']:g} conversions withheld")
    return lines


def _conversions_cell(report: Report, row: dict[str, Any]) -> str:
    if row.get("suppressed") and report.privacy:
        return f"<{report.privacy['min_count']:g}"
    return number(row["conversions"], 1)


def _single(report: Report, credit: MethodCredit, markdown: bool) -> list[str]:
    boot = credit.conversions_interval is not None
    header = ["channel", "conversions", "share", "revenue", "spend", "ROAS", "CPA"]
    if boot:
        header[2:2] = ["95 % interval"]
        header[5:5] = ["95 % interval"]
    rows = []
    for r in _rows(report, credit):
        cells = [r["channel"], _conversions_cell(report, r), number(r["share"], 1, True),
                 number(r["revenue"], 2), number(r["spend"], 2), number(r["roas"], 2),
                 number(r["cpa"], 2)]
        if boot:
            iv = r.get("interval") or {}
            cells[2:2] = [_interval(iv.get("conversions"), 1)]
            cells[5:5] = [_interval(iv.get("revenue"), 2)]
        rows.append(cells)
    return grid(header, rows, markdown)


def _side_by_side(report: Report, markdown: bool) -> list[str]:
    per = {c.method: _rows(report, c) for c in report.methods}
    names = [r["channel"] for r in next(iter(per.values()))]
    lines: list[str] = []
    sections: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("Credited conversions (share)",
         lambda r: (_conversions_cell(report, r) if r.get("suppressed") else
                    f"{number(r['conversions'], 1)} ({number(r['share'], 1, True)})")),
        ("Credited revenue", lambda r: number(r["revenue"], 2)),
        ("ROAS (credited revenue / spend)", lambda r: number(r["roas"], 2)),
        ("CPA (spend / credited conversions)", lambda r: number(r["cpa"], 2)),
    ]
    if report.spend is None:
        sections = sections[:2]
    if report.bootstrap:
        sections.insert(1, (f"Credited conversions, 95 % interval ({report.bootstrap} resamples)",
                            lambda r: _interval((r.get("interval") or {}).get("conversions"), 1)))
    for title, cell in sections:
        header = ["channel", *(["spend"] if title == "Credited conversions (share)" and
                               report.spend is not None else []), *per]
        rows = []
        for k, name in enumerate(names):
            first = per[report.methods[0].method][k]
            lead = [number(first["spend"], 2)] if len(header) > len(per) + 1 else []
            rows.append([name, *lead, *(cell(per[m][k]) for m in per)])
        lines += [("### " if markdown else "") + title, ""] + grid(header, rows, markdown) + [""]
    return lines[:-1]


def render_text(report: Report, markdown: bool = False) -> str:
    """The report as aligned text (``table``) or as markdown tables.

    >>> from attribid.models.data.loader import read_journeys
    >>> r = build_report(read_journeys("tests/data/touchpoints.csv",
    ...                                "tests/data/conversions.csv"), ["last-click"])
    >>> print(render_text(r).splitlines()[6])
    search             1.0   50.0%    79.50   3.20  24.84  3.20
    """
    lines = _summary(report) + [""]
    if len(report.methods) == 1:
        lines += [("**Method** " if markdown else "method ") + _method_title(report.methods[0]), ""]
        lines += _single(report, report.methods[0], markdown)
    else:
        lines += [("- " if markdown else "  ") + _method_title(c) for c in report.methods] + [""]
        lines += _side_by_side(report, markdown)
    if report.notes:
        lines += ["", "**Notes**", ""] if markdown else ["", "Notes:"]
        lines += [("- " if markdown else "  ") + n for n in report.notes]
    return "\n".join(lines) + "\n"


def render_csv(report: Report) -> str:
    """One row per channel (and method, for several), unrounded; empty where undefined.

    The first two columns of a single-method report are ``channel,credit``.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    several = len(report.methods) > 1
    boot = report.bootstrap > 0
    header = ["channel", "credit", "share", "revenue", "spend", "roas", "cpa"]
    if boot:
        header += ["credit_low", "credit_high", "revenue_low", "revenue_high", "share_low",
                   "share_high"]
    writer.writerow((["method"] if several else []) + header)

    def num(v: float | None) -> str:
        return "" if v is None or not math.isfinite(v) else repr(float(v))
    for credit in report.methods:
        for r in _rows(report, credit)[:-1]:
            cells = [r["channel"], num(r["conversions"]), num(r["share"]), num(r["revenue"]),
                     num(r["spend"]), num(r["roas"]), num(r["cpa"])]
            if boot:
                iv = r.get("interval") or {}
                for key in ("conversions", "revenue", "share"):
                    pair = iv.get(key) or [None, None]
                    cells += [num(pair[0]), num(pair[1])]
            writer.writerow(([credit.method] if several else []) + cells)
    return buf.getvalue()


def _clean(value: Any) -> Any:
    """NaN and infinities as null, so the JSON is standard."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def report_document(report: Report) -> dict[str, Any]:
    """The whole report as plain JSON values (``report-json``)."""
    methods = {}
    for credit in report.methods:
        rows = _rows(report, credit)
        methods[credit.method] = {
            "description": DESCRIPTIONS.get(credit.method, ""), "options": credit.options,
            "channels": {r["channel"]: {k: v for k, v in r.items() if k != "channel"}
                         for r in rows[:-1]},
            "total": {k: v for k, v in rows[-1].items() if k != "channel"}}
    doc = {
        "inputs": report.inputs, "journeys": report.journeys,
        "conversions": report.conversions, "revenue": report.revenue,
        "spend": float(report.spend.sum()) if report.spend is not None else None,
        "lookback_days": report.lookback_days,
        "bootstrap": ({"resamples": report.bootstrap, "level": LEVEL, "seed": report.seed}
                      if report.bootstrap else None),
        "channels": list(report.channels), "methods": methods, "issues": list(report.issues),
        "privacy": report.privacy}
    return _clean(doc)


def credit_document(report: Report) -> dict[str, Any]:
    """``json``: channel -> credited conversions; for several methods, method -> that.

    >>> from attribid.models.data.loader import read_journeys
    >>> r = build_report(read_journeys("tests/data/touchpoints.csv",
    ...                                "tests/data/conversions.csv"), ["first-click"])
    >>> credit_document(r)["affiliate"]
    1.0
    """
    per = {c.method: {r["channel"]: _clean(r["conversions"]) for r in _rows(report, c)[:-1]}
           for c in report.methods}
    return per[report.methods[0].method] if len(per) == 1 else per


def render(report: Report, fmt: str) -> str:
    """The report in one of ``FORMATS``."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt in ("table", "markdown"):
        return render_text(report, markdown=fmt == "markdown")
    if fmt == "csv":
        return render_csv(report)
    doc = report_document(report) if fmt == "report-json" else credit_document(report)
    option = orjson.OPT_INDENT_2 if fmt == "report-json" else 0
    return orjson.dumps(doc, option=option).decode() + "\n"
