"""Benchmark: the KKT allocation kernel against SciPy SLSQP, and the bid kernel.

Run: ``nice -n 10 .venv/bin/python loadtest/bench_allocation.py [--markdown docs/allocation_bench.md]``

Prints, per problem (7 channels), the median time per solve of the KKT kernel on a prepared
problem, of SLSQP on the same problem (scaled, analytic gradients), their ratio, the objective
agreement, and a floor measured in the same run: a Numba call that takes the same arguments and
does nothing, i.e. the cost of entering compiled code at all.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Callable

import numpy as np
from numba import njit

from attribid.kernels.allocation import Problem, solve_into
from attribid.kernels.bidding import bids_into
from attribid.kernels.dp_allocation import solve_dp
from attribid.kernels.response import EXPONENTIAL, HILL
from attribid.kernels.slsqp import objective_parts, solve_slsqp

N = 7


@njit(cache=True)
def _noop(budget, a, e, ck, cp, mk, mp, lo, hi, max_cpa, x, stats):
    stats[0] = 0.0


def problems(seed: int) -> dict[str, Problem]:
    """The benchmark's problems: closed-form exponential curves, mixed curves, a binding CPA."""
    rng = np.random.default_rng(seed)
    top, shape, value = rng.uniform(50, 250, N), rng.uniform(2e3, 2e4, N), rng.uniform(60, 160, N)
    zeros, budget = np.zeros(N), 5e4
    exp_k = np.full(N, EXPONENTIAL, dtype=np.int64)
    mixed_k = np.where(np.arange(N) % 2 == 0, HILL, EXPONENTIAL).astype(np.int64)
    cp = np.column_stack([top, shape, rng.uniform(0.5, 1.0, N)])
    mp = np.column_stack([rng.uniform(1e6, 1e7, N), rng.uniform(2e4, 1e5, N), zeros])
    none = np.zeros(N, dtype=np.int64)
    out = {
        "exponential": Problem(budget, value, zeros, np.full(N, budget), exp_k, cp, none, mp * 0),
        "hill+exp, 3 objectives": Problem(budget, value, zeros, np.full(N, budget), mixed_k, cp,
                                          exp_k, mp, 1.0, 10.0, 1e-3),
    }
    x = np.zeros(N)
    stats = np.zeros(10)
    solve_into(out["exponential"], x, stats)
    conv = objective_parts(out["exponential"], x)[1]
    out["exponential, CPA binding"] = Problem(budget, value, zeros, np.full(N, budget), exp_k, cp,
                                              none, mp * 0, max_cpa=0.8 * x.sum() / conv)
    return out


def per_call(fn: Callable[[], object], seconds: float) -> float:
    """Median seconds per call over batches lasting about ``seconds`` in total."""
    fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    batch = max(1, int(seconds / 15 / one))
    times = []
    for _ in range(15):
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        times.append((time.perf_counter() - t0) / batch)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="time budget per measurement")
    ap.add_argument("--markdown", help="also write the table to this Markdown file")
    args = ap.parse_args(argv)
    rows = []
    for name, p in problems(0).items():
        x = np.zeros(N)
        stats = np.zeros(10)
        kkt = per_call(lambda: solve_into(p, x, stats), args.seconds)
        floor = per_call(lambda: _noop(p.budget, p._a, p._e, p.conv_kind, p.conv_params,  # type: ignore[attr-defined]
                                       p.imp_kind, p.imp_params, p.lo, p._hi, p.max_cpa, x, stats),  # type: ignore[attr-defined]
                         args.seconds)
        slsqp = per_call(lambda: solve_slsqp(p), args.seconds * 3)
        xs, ok, _ = solve_slsqp(p)
        solve_into(p, x, stats)
        f = objective_parts(p, x)
        fs = objective_parts(p, xs)
        w = np.array([p.w_revenue, p.w_acquisitions, p.w_exposure])
        gap = float(w @ np.array(f) - w @ np.array(fs)) / abs(float(w @ np.array(fs)))
        rows.append((name, kkt, floor, slsqp, gap, ok))
    p = problems(0)["exponential"]
    dp = per_call(lambda: solve_dp(p, grid=1000), args.seconds * 3)
    out = np.zeros(N)
    params = np.array([1.0, 0.01, 5.0])
    credit = np.full(N, 1.0 / N)
    per_conv = np.linspace(5, 50, N)
    bid = per_call(lambda: bids_into(0.05, credit, per_conv, np.zeros(N), params, out), args.seconds)
    lines = [
        "| problem (7 channels) | KKT kernel us | call floor us | SLSQP us | SLSQP / KKT | KKT objective vs SLSQP | SLSQP success |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, kkt, floor, slsqp, gap, ok in rows:
        lines.append(f"| {name} | {kkt * 1e6:.1f} | {floor * 1e6:.2f} | {slsqp * 1e6:.0f} | "
                     f"{slsqp / kkt:.0f}x | {gap:+.2e} | {ok} |")
    lines.append("")
    lines.append(f"DP grid (1000 steps, 7 channels): {dp * 1e3:.1f} ms per solve. "
                 f"Bid kernel (7 channels, public wrapper): {bid * 1e6:.2f} us per call.")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write("<!-- made by: nice -n 10 .venv/bin/python loadtest/bench_allocation.py "
                     f"--markdown {args.markdown} -->\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
