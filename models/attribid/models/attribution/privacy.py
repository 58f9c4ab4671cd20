"""Differentially private attribution reports: Laplace noise on per-channel sums.

Two inputs are neighbours when one has a journey (its touchpoints and its conversion)
the other lacks. A release is epsilon-differentially private when no output is more
than e**epsilon times likelier on one neighbour than on the other. What one journey
can move, in L1 norm (its *sensitivity*):

- credited conversions per channel, for a method whose credit of a journey depends on
  that journey alone (the rules, and the network when it was not trained on these
  journeys): at most 1, its credit row, which sums to at most 1;
- credited revenue per channel: at most ``value_cap``, as each conversion's value is
  clipped to it first;
- spend per channel: at most ``cost_cap``, as each journey's touch costs are scaled down
  so that they sum to at most it;
- the number of journeys: 1.

``markov``, ``markov-per-journey`` and ``shapley`` fit one model on all journeys, so one
journey moves every other journey's credit: no bound of this kind holds, and they are
refused. Epsilon is split evenly over the released vectors (two per method, plus spend
and the journey count: sequential composition), each gets Laplace noise of scale
sensitivity / its epsilon, and a channel whose noisy credited conversions fall below
``min_count`` is suppressed (shares, ROAS and CPA are computed from the noisy figures:
post-processing, which costs no privacy). The noise is floating-point Laplace from the
OS's entropy unless a seed is given (a seed is for tests: whoever knows it can remove
the noise).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from attribid.kernels.classic import RULES
from attribid.models.attribution.classic import Totals
from attribid.models.data.journeys import Journeys

#: methods whose credit of a journey depends on that journey alone
PRIVATE_METHODS: tuple[str, ...] = (*RULES, "network")
#: |Laplace(b)| stays below b * ln(20) with probability 95 %
HALF_WIDTH_95 = float(np.log(20.0))
#: the caps ``accuracy_against_epsilon`` uses on simulated journeys
VALUE_CAP, COST_CAP = 250.0, 10.0


@dataclass(frozen=True)
class PrivacySpec:
    """The privacy parameters of a release.

    >>> PrivacySpec(1.0, value_cap=200.0, cost_cap=50.0).epsilon
    1.0
    >>> PrivacySpec(0.0, 1.0, 1.0)
    Traceback (most recent call last):
    ValueError: epsilon must be > 0, got 0.0
    """

    epsilon: float
    #: each conversion's value is clipped to this (revenue's sensitivity)
    value_cap: float
    #: each journey's touch costs are scaled to sum to at most this (spend's sensitivity)
    cost_cap: float
    #: channels whose noisy credited conversions are below this are suppressed
    min_count: float = 10.0
    #: None: noise from the OS's entropy
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("epsilon", "value_cap", "cost_cap"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name.replace('_', ' ')} must be > 0, got {value}")
        if not self.min_count >= 0:
            raise ValueError(f"min count must be >= 0, got {self.min_count}")


@dataclass(frozen=True)
class PrivateRelease:
    """Noisy figures and what was done to make them."""

    #: method -> noisy totals
    totals: dict[str, Totals]
    #: method -> channels suppressed (noisy conversions below min_count)
    suppressed: dict[str, np.ndarray]
    spend: np.ndarray | None
    journeys: float
    #: the Laplace scale of each released quantity
    scales: dict[str, float]
    spec: PrivacySpec

    def document(self) -> dict[str, object]:
        """What a released report states about its privacy."""
        return {"epsilon": self.spec.epsilon, "adjacency": "one journey added or removed",
                "mechanism": "Laplace", "value_cap": self.spec.value_cap,
                "cost_cap": self.spec.cost_cap, "min_count": self.spec.min_count,
                "laplace_scale": self.scales,
                "noise_95": {k: v * HALF_WIDTH_95 for k, v in self.scales.items()}}


def check_methods(methods: list[str]) -> None:
    """Refuse methods with no per-journey bound (see the module docstring)."""
    shared = [m for m in methods if m not in PRIVATE_METHODS]
    if shared:
        raise ValueError(f"method {', '.join(shared)}: fits one model on all journeys, so one "
                         f"journey's effect on the report has no bound; private reports "
                         f"support {', '.join(PRIVATE_METHODS)}")


def clipped(journeys: Journeys, spec: PrivacySpec) -> Journeys:
    """The journeys with each conversion's value clipped to ``spec.value_cap``."""
    return replace(journeys, value=np.minimum(journeys.value, spec.value_cap))


def clipped_spend(touch_costs: tuple[np.ndarray, np.ndarray, np.ndarray], n_channels: int,
                  cap: float) -> np.ndarray:
    """Spend per channel with each journey's touch costs scaled to sum to at most ``cap``.

    >>> clipped_spend((np.array([0, 0, 1]), np.array([0, 1, 1]), np.array([6.0, 2.0, 1.0])),
    ...               2, 4.0).tolist()
    [3.0, 2.0]
    """
    journey, channel, cost = touch_costs
    total = np.bincount(journey, weights=cost)
    scale = np.minimum(1.0, np.divide(cap, total, out=np.ones_like(total), where=total > 0))
    return np.bincount(channel, weights=cost * scale[journey], minlength=n_channels)


def release(totals: dict[str, Totals], spend: np.ndarray | None, journeys: float,
            spec: PrivacySpec) -> PrivateRelease:
    """Laplace noise on each method's totals (from ``clipped`` journeys), the clipped spend
    and the journey count, with epsilon split evenly over the released vectors.

    >>> t = {"linear": Totals(np.array([500.0, 300.0]), np.array([5e4, 3e4]))}
    >>> r = release(t, np.array([100.0, 50.0]), 2000.0, PrivacySpec(2.0, 100.0, 10.0, seed=1))
    >>> r.scales
    {'conversions': 2.0, 'revenue': 200.0, 'spend': 20.0, 'journeys': 2.0}
    >>> bool(abs(r.totals["linear"].conversions[0] - 500) < 2.0 * 10)
    True
    """
    rng = np.random.default_rng(spec.seed)
    parts = 2 * len(totals) + (1 if spend is not None else 0) + 1
    eps = spec.epsilon / parts
    scales = {"conversions": 1.0 / eps, "revenue": spec.value_cap / eps}
    if spend is not None:
        scales["spend"] = spec.cost_cap / eps
    scales["journeys"] = 1.0 / eps
    noisy: dict[str, Totals] = {}
    suppressed: dict[str, np.ndarray] = {}
    for method, t in totals.items():
        conv = np.maximum(t.conversions + rng.laplace(0.0, scales["conversions"],
                                                      t.conversions.shape), 0.0)
        rev = np.maximum(t.revenue + rng.laplace(0.0, scales["revenue"], t.revenue.shape), 0.0)
        noisy[method] = Totals(conv, rev)
        suppressed[method] = conv < spec.min_count
    noisy_spend = (None if spend is None else
                   np.maximum(spend + rng.laplace(0.0, scales["spend"], spend.shape), 0.0))
    count = max(journeys + float(rng.laplace(0.0, scales["journeys"])), 0.0)
    return PrivateRelease(noisy, suppressed, noisy_spend, count, scales, spec)


def accuracy_against_epsilon(epsilons: list[float], sizes: list[int], repeats: int, seed: int,
                             world: str = "balanced", method: str = "linear",
                             log: Callable[[str], None] = lambda text: None
                             ) -> list[dict[str, float]]:
    """Mean accuracy (1 - TV to the true channel shares) of private reports, per epsilon
    and number of journeys, over ``repeats`` noise draws; with the exact report's beside.

    >>> rows = accuracy_against_epsilon([1.0], [500], 3, seed=1)
    >>> sorted(rows[0])[:3], rows[0]["journeys"]
    (['accuracy', 'accuracy_sd', 'epsilon'], 500)
    """
    from attribid.models.attribution.classic import credit_totals
    from attribid.models.simulation.simulate import WORLDS, simulate, true_channel_shares

    rows = []
    for n in sizes:
        journeys, truth = simulate(WORLDS[world], n, seed)
        true = true_channel_shares(journeys, truth)
        # caps fixed in advance (the simulator's values stay below about 330), never read
        # off the data being released
        exact = credit_totals(clipped(journeys, PrivacySpec(1.0, VALUE_CAP, COST_CAP)), method)
        exact_acc = 1 - 0.5 * float(np.abs(exact.conversions / exact.conversions.sum()
                                            - true).sum())
        for eps in epsilons:
            log(f"privacy: {n:,} journeys, epsilon {eps:g}")
            acc, rev_err, hidden = [], [], []
            for r in range(repeats):
                spec = PrivacySpec(eps, VALUE_CAP, COST_CAP, seed=seed * 1000 + r)
                out = release({method: exact}, None, float(n), spec)
                conv = out.totals[method].conversions
                shares = conv / conv.sum() if conv.sum() > 0 else np.full(conv.shape, 1 / conv.size)
                acc.append(1 - 0.5 * float(np.abs(shares - true).sum()))
                rev_err.append(float(np.abs(out.totals[method].revenue - exact.revenue).sum()
                                     / exact.revenue.sum()))
                hidden.append(float(out.suppressed[method].sum()))
            rows.append({"journeys": n, "epsilon": eps, "accuracy": float(np.mean(acc)),
                         "accuracy_sd": float(np.std(acc)), "exact_accuracy": exact_acc,
                         "revenue_error": float(np.mean(rev_err)),
                         "suppressed": float(np.mean(hidden))})
    return rows


def write_privacy_report(path: str | Path, command: str, epsilons: list[float],
                         sizes: list[int], repeats: int, seed: int,
                         log: Callable[[str], None] = lambda text: None) -> Path:
    """``path`` (markdown): accuracy of private reports against epsilon and journeys."""
    path = Path(path)
    rows = accuracy_against_epsilon(epsilons, sizes, repeats, seed, log=log)
    lines = [f"<!-- made by: {command} -->", "# Private attribution reports: accuracy against epsilon",
             "", f"Made by `{command}`. `attribid attribute --epsilon E --value-cap V --cost-cap C` "
             "releases its per-channel figures with E-differential privacy (one journey added or "
             "removed; Laplace noise, epsilon split evenly over the released vectors; see "
             "`models/attribid/models/attribution/privacy.py` for each sensitivity bound). Here: "
             f"the `linear` method alone (its conversions vector, its revenue vector and the "
             f"journey count: epsilon / 3 each), on "
             f"simulated journeys of the `balanced` world, values clipped at {VALUE_CAP:g}; "
             f"accuracy is 1 - TV distance between the released channel shares and the "
             f"simulator's true shares, the mean (± sd) over {repeats} noise draws. The exact "
             "column is the same report without noise: no private report can beat it, and "
             "with enough journeys the noise costs little of it. Revenue error is the released "
             "revenue's L1 distance from the exact one, relative to the exact total; "
             "withheld is the mean count of channels (of 7) under 10 noisy conversions.", ""]
    lines += ["| journeys | epsilon | accuracy | exact | revenue error | withheld |",
              "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['journeys']:,} | {r['epsilon']:g} | {r['accuracy']:.3f} ± "
                     f"{r['accuracy_sd']:.3f} | {r['exact_accuracy']:.3f} | "
                     f"{100 * r['revenue_error']:.1f} % | {r['suppressed']:.1f} |")
    lines += ["", "Reading it: the noise per channel does not grow with the number of journeys "
              "(its scale is sensitivity / epsilon), while the figures it is added to do; so "
              "compare rows of the same epsilon: what the noise costs falls as the journeys "
              "grow.", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
