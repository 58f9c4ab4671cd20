"""The journey-market report: per market, each attribution method's closed loop against the
static split and the spend oracle; ``market-journeys.md``, ``.json`` and ``.png``.

All figures come from one run; intervals are 95 % t intervals over seeds; every strategy of a
seed meets the same shoppers and draws, so the per-seed ratios are paired.
"""
from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from scipy.stats import t as student_t

from attribid.models.progress import bar
from attribid.models.simulation.journey_market import (
    BUDGET_PER_SHOPPER, CHANNELS, FIXED_SPLITS, MARKETS, SET_WINDOW_DAYS, LoopResult, Market, run_seed,
    train_market_network, warmup_journeys,
)
from attribid.models.simulation.simulate import attribution_accuracy

#: the paper's Table 8: ROI improvement of dynamic allocation fed by each method (%)
PAPER_TABLE8: dict[str, float] = {"last-click": 2.7, "linear": 4.2, "time-decay": 7.6,
                                  "markov": 12.3, "network": 27.3}
#: days at the start of a run whose spend shares the share-movement table starts from
FIRST_DAYS = 5
#: days at the end of a run it ends with
LAST_DAYS = 10


@dataclass(frozen=True)
class Sizes:
    """How big each run is (stated in the report's header)."""

    seeds: int
    days: int
    shoppers: int
    warmup_journeys: int
    epochs: int = 4
    distill_epochs: int = 3
    distill_journeys: int = 3000


@dataclass(frozen=True)
class MarketSummary:
    """One market's per-seed figures, [seeds] per strategy, and mean shares [strategy, C]."""

    market: Market
    strategies: tuple[str, ...]
    roi: dict[str, np.ndarray]
    accuracy: dict[str, np.ndarray]
    first_share: dict[str, np.ndarray]
    last_share: dict[str, np.ndarray]
    credit_share: dict[str, np.ndarray]

    def oracle_share(self, strategy: str) -> np.ndarray:
        return self.roi[strategy] / self.roi["oracle"]


def interval(x: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95 % t interval of per-seed values.

    >>> [round(v, 3) for v in interval(np.array([1.0, 2.0, 3.0]))]
    [2.0, -0.484, 4.484]
    """
    m = float(np.mean(x))
    half = float(student_t.ppf(0.975, len(x) - 1) * np.std(x, ddof=1) / math.sqrt(len(x)))
    return m, m - half, m + half


def ci(x: np.ndarray, scale: float = 1.0, digits: int = 2) -> str:
    """``mean ± half-width`` of ``scale * x``, as text."""
    m, lo, _ = interval(scale * np.asarray(x))
    return f"{m:.{digits}f} ± {m - lo:.{digits}f}"


def summarise(market: Market, strategies: tuple[str, ...],
              results: list[dict[str, LoopResult]]) -> MarketSummary:
    """Per-seed ROI and in-loop accuracy, and mean spend and credit shares, per strategy."""
    def per_seed(f: Callable[[LoopResult], float], s: str) -> np.ndarray:
        return np.array([f(r[s]) for r in results])

    def mean_share(f: Callable[[LoopResult], np.ndarray], s: str) -> np.ndarray:
        rows = np.array([f(r[s]) for r in results])
        return rows.mean(axis=0) / rows.mean(axis=0).sum()

    def shares(x: np.ndarray) -> np.ndarray:
        return x.sum(axis=0) / x.sum()

    fed = [s for s in strategies if s not in FIXED_SPLITS]
    return MarketSummary(
        market, strategies,
        roi={s: per_seed(lambda r: r.roi, s) for s in strategies},
        accuracy={s: per_seed(lambda r: attribution_accuracy(r.credited.sum(0), r.true_credit.sum(0)),
                              s) for s in fed},
        first_share={s: mean_share(lambda r: shares(r.spend[:FIRST_DAYS]), s) for s in strategies},
        last_share={s: mean_share(lambda r: shares(r.spend[-LAST_DAYS:]), s) for s in strategies},
        credit_share={**{s: mean_share(lambda r: r.credited.sum(0), s) for s in fed},
                      "truth (in the static loop)": mean_share(
                          lambda r: r.true_credit.sum(0), "static")})


def run_market(market: Market, strategies: tuple[str, ...], sizes: Sizes, models: Path,
               steps: Callable[[str], None] = lambda text: None) -> MarketSummary:
    """Train the market's network if asked for (once, on its own warm-up), then every seed."""
    model_path = None
    if "network" in strategies:
        steps(f"{market.name}: warm-up of {sizes.warmup_journeys:,} journeys, training the network")
        journeys = warmup_journeys(market, sizes.warmup_journeys, shoppers=sizes.shoppers)
        model_path = str(train_market_network(
            market, journeys, models / market.name, epochs=sizes.epochs,
            distill_epochs=sizes.distill_epochs, distill_journeys=sizes.distill_journeys))
    steps(f"{market.name}: {sizes.seeds} seeds x {len(strategies)} strategies x {sizes.days} days")
    results = [run_seed(market, seed, strategies, shoppers=sizes.shoppers, days=sizes.days,
                        model_path=model_path)
               for seed in bar(range(sizes.seeds), total=sizes.seeds, desc=market.name, unit="seed")]
    return summarise(market, strategies, results)


def market_json(summary: MarketSummary) -> dict[str, object]:
    """One market's entry of ``market-journeys.json`` (shares of the oracle's ROI, fractions)."""
    methods = {}
    for s in summary.strategies:
        if s == "oracle":
            continue
        m, lo, hi = interval(summary.oracle_share(s))
        methods[s] = {"oracle_share": round(m, 6), "ci95": [round(lo, 6), round(hi, 6)]}
    return {"name": summary.market.name, "harvesting": bool(summary.market.harvesting),
            "methods": methods}


def market_section(summary: MarketSummary) -> list[str]:
    """One market's tables, as Markdown lines."""
    m = summary.market
    harvest = ", ".join(m.harvesting) if m.harvesting else "none"
    lines = [f"## Market `{m.name}`", "", f"{m.description}. Harvesting channels: {harvest}. "
             f"Touch half-life {m.half_life_hours:g} h, journeys kept {m.window_days} days.", "",
             "| loop fed by | ROI (revenue / spend) | share of the oracle's ROI (%) | "
             "lift over the static split (%) | lift over the last-click-fed loop (%) | "
             "the paper's Table 8 ROI improvement (%) | attribution accuracy in the loop |",
             "|---|---|---|---|---|---|---|"]
    has_last = "last-click" in summary.roi
    for s in summary.strategies:
        roi = summary.roi[s]
        lift_last = (ci(roi / summary.roi["last-click"] - 1, 100, 1)
                     if has_last and s != "last-click" else "-")
        paper = f"+{PAPER_TABLE8[s]}" if s in PAPER_TABLE8 else "-"
        acc = ci(summary.accuracy[s], digits=3) if s in summary.accuracy else "-"
        lines.append(f"| {s} | {ci(roi)} | {ci(summary.oracle_share(s), 100, 1)} | "
                     f"{ci(roi / summary.roi['static'] - 1, 100, 1) if s != 'static' else '-'} | "
                     f"{lift_last} | {paper} | {acc} |")
    header = "| " + " | ".join(CHANNELS) + " |"
    rule = "|---" * (len(CHANNELS) + 1) + "|"
    lines += ["", f"Spend share per channel (%), mean of the first {FIRST_DAYS} days -> "
              f"mean of the last {LAST_DAYS} days:", "", "| loop fed by " + header, rule]
    for s in summary.strategies:
        cells = [f"{100 * a:.0f} -> {100 * b:.0f}"
                 for a, b in zip(summary.first_share[s], summary.last_share[s])]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines += ["", "Credit share per channel over the run (%): what each method told the loop, "
              "beside the true incremental credit of the same loop's conversions (`truth`) and of "
              "the static split's:", "", "| credited by " + header, rule]
    for s, share in summary.credit_share.items():
        lines.append(f"| {s} | " + " | ".join(f"{100 * x:.1f}" for x in share) + " |")
    return lines + [""]


def findings(summaries: list[MarketSummary]) -> list[str]:
    """Where the network-fed loop stands, market by market, read off the tables."""
    lines = []
    for sm in summaries:
        if "network" not in sm.roi:
            continue
        share, lo, hi = interval(100 * sm.oracle_share("network"))
        parts = [f"`{sm.market.name}`: the network-fed loop reached {share:.1f} % "
                 f"(95 % CI {lo:.1f} to {hi:.1f}) of the oracle's ROI"]
        for rival in ("last-click", "markov", "truth"):
            if rival in sm.roi:
                mean, lo, hi = interval(100 * (sm.roi["network"] / sm.roi[rival] - 1))
                parts.append(f"{mean:+.1f} % (CI {lo:+.1f} to {hi:+.1f}) against the {rival}-fed loop")
        lines.append("- " + "; ".join(parts) + ".")
    return lines + [""] if lines else []


def write_journey_report(names: list[str], methods: list[str], sizes: Sizes, out: Path, cmd: str,
                         steps: Callable[[str], None] = lambda text: None) -> Path:
    """Run every market, write ``out/market-journeys.md``, ``.json`` and ``.png``; returns the
    Markdown's path. ``cmd`` is the command line quoted at the top."""
    out.mkdir(parents=True, exist_ok=True)
    strategies = tuple(methods) + ("truth",) + FIXED_SPLITS
    with tempfile.TemporaryDirectory(prefix="attribid-journey-models-") as models:
        summaries = [run_market(MARKETS[n], strategies, sizes, Path(models), steps) for n in names]
    lines = [f"<!-- made by: {cmd} -->", "# Attribution decides the ROI: the closed loop in a "
             "journey-level market", "", f"Made by `{cmd}`.", "", *intro(sizes), *findings(summaries)]
    for sm in summaries:
        lines += market_section(sm)
    (out / "market-journeys.json").write_text(
        json.dumps({"markets": [market_json(sm) for sm in summaries]}, indent=2) + "\n",
        encoding="utf-8")
    steps(f"plotting {out / 'market-journeys.png'}")
    plot(summaries, out / "market-journeys.png")
    (out / "market-journeys.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out / "market-journeys.md"


def intro(sizes: Sizes) -> list[str]:
    """What the report compares and how, as Markdown lines."""
    return [
        f"Sizes: {sizes.seeds} seeds per market, {sizes.days} days per run, {sizes.shoppers:,} "
        f"shoppers, a daily budget of {sizes.shoppers * BUDGET_PER_SHOPPER:,.0f}; the network is "
        f"trained once per market on {sizes.warmup_journeys:,} warm-up journeys of that market "
        f"(static split, a seed no compared run uses; `attribid train`'s recipe: at most "
        f"{sizes.epochs} conversion epochs, stopped on the held-out log-loss, "
        f"{sizes.distill_epochs} credit epochs, {sizes.distill_journeys:,} distilled journeys, "
        "and the credit blend with data-driven Shapley chosen on held-out journeys). "
        "± is a 95 % t interval over seeds; every "
        "strategy of a seed meets the same shoppers and random draws, so ratios are paired.", "",
        "Each day the loop's attribution method credits the day's converting journeys (markov "
        f"and shapley are fitted on the last {SET_WINDOW_DAYS} days of converting and sampled "
        "non-converting journeys); spend, touches and the credited conversions and revenue per "
        "channel go to the server's CampaignBook, which re-solves the next day's split. `truth` "
        "feeds the loop the true incremental credit of each conversion (each channel's Shapley "
        "value of the true conversion probability over that probability; the organic part goes "
        "to no channel). `static` is Table 6's pre-optimisation split, held; `oracle` is the split "
        "that maximises expected incremental revenue under the true reach curves and effects "
        "(synergies left out, so it is near, not exactly at, the best split: a loop may beat it). "
        "ROI is realised revenue, organic conversions included, over spend.", "",
        "Attribution accuracy in the loop is 1 - the total-variation distance between the "
        "channel shares the method credited over the run and the true incremental shares of the "
        "same conversions. The paper's Table 8 column is the paper's figures, not ours; our "
        "lifts over the last-click-fed loop and over the static split stand beside it. The "
        "figure `market-journeys.png` shows each method's share of the oracle's ROI and its "
        f"accuracy. `market-journeys.json` holds the shares of the oracle's ROI as fractions.", ""]


def plot(summaries: list[MarketSummary], path: Path) -> None:
    """``path`` (PNG): per market, share of the oracle's ROI with 95 % intervals (top) and
    share against in-loop accuracy (bottom)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(summaries), figsize=(5.5 * len(summaries), 8), squeeze=False)
    for k, sm in enumerate(summaries):
        names = [s for s in sm.strategies if s != "oracle"]
        stats = np.array([interval(100 * sm.oracle_share(s)) for s in names])
        top, bottom = axes[0][k], axes[1][k]
        colours = ["tab:red" if s == "network" else "tab:green" if s == "truth" else
                   "tab:grey" if s == "static" else "tab:blue" for s in names]
        top.bar(names, stats[:, 0], yerr=[stats[:, 0] - stats[:, 1], stats[:, 2] - stats[:, 0]],
                color=colours, capsize=3)
        top.set_ylim(max(0.0, float(stats[:, 1].min()) - 3), max(101.0, float(stats[:, 2].max()) + 1))
        top.axhline(100, color="black", lw=1, ls="--")
        top.set_title(f"market {sm.market.name}")
        top.set_ylabel("share of the oracle's ROI (%)")
        top.tick_params(axis="x", rotation=60)
        for s in sm.accuracy:
            bottom.scatter(float(np.mean(sm.accuracy[s])), float(np.mean(100 * sm.oracle_share(s))),
                           color="tab:red" if s == "network" else "tab:blue")
            bottom.annotate(s, (float(np.mean(sm.accuracy[s])),
                                float(np.mean(100 * sm.oracle_share(s)))), fontsize=8)
        bottom.set_xlabel("attribution accuracy in the loop (1 - TV to the true shares)")
        bottom.set_ylabel("share of the oracle's ROI (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
