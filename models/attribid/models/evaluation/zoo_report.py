"""Tables of a zoo run (attribid.models.evaluation.zoo): per world, per form, per method, and
the worlds where the network falls short; as Markdown for people, as JSON for scripts."""
from __future__ import annotations

import dataclasses
import statistics
from typing import Any

from attribid.models.evaluation.zoo import NETWORK, TARGET, ZooResult
from attribid.models.simulation.zoo_world import FORMS


def _fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows] + [""]


def methods(results: list[ZooResult]) -> list[str]:
    """Every method scored, the network first."""
    names = list(results[0].accuracy)
    return [NETWORK] + [m for m in names if m != NETWORK]


def per_world(results: list[ZooResult]) -> list[str]:
    """One row per world: the network, the best classic method, the margin, training time."""
    rows = []
    for r in results:
        best, best_acc = r.best_classic()
        harvest = (f"{_fmt(sum(r.true_shares[c] for c in r.harvest))} / "
                   f"{_fmt(sum(r.network_shares[c] for c in r.harvest))}")
        rows.append([r.world, str(r.channels), f"{r.conversion_rate:.2%}", f"{r.conversions:,}",
                     _fmt(r.accuracy[NETWORK]), f"{best} {_fmt(best_acc)}", f"{r.margin():+.3f}",
                     _fmt(r.accuracy["shapley"]), _fmt(r.accuracy["markov"]),
                     _fmt(r.accuracy["last-click"]), harvest,
                     _fmt(r.network_metrics.get("auc", float("nan"))), _recipe(r),
                     _fmt(r.recipe.get("network_alone", float("nan"))),
                     f"{r.train_seconds:.0f}"])
    return _table(["world", "channels", "conv. rate", "conversions", "network",
                   "best classic", "margin", "shapley", "markov", "last-click",
                   "harvesting share: true / network", "network AUC (held out)",
                   "blend weight / epochs kept", "network alone", "train s"], rows)


def _recipe(r: ZooResult) -> str:
    weight, epochs = r.recipe.get("blend_weight"), r.recipe.get("conversion_epochs")
    return (f"{'-' if weight is None else f'{weight:.1f}'} / "
            f"{'-' if epochs is None else f'{epochs:.0f}'}")


def _stats(values: list[float]) -> str:
    return f"{_fmt(min(values))} / {_fmt(statistics.median(values))}"


def per_form(results: list[ZooResult]) -> list[str]:
    """Per form: min / median over its worlds of the network, the best classic, the margin."""
    rows = []
    for form in [*FORMS, "all"]:
        group = [r for r in results if form in ("all", r.form)]
        if not group:
            continue
        rows.append([form, str(len(group)), _stats([r.accuracy[NETWORK] for r in group]),
                     _stats([r.best_classic()[1] for r in group]),
                     _stats([r.margin() for r in group]),
                     _stats([r.accuracy["shapley"] for r in group]),
                     f"{max(r.train_seconds for r in group):.0f}"])
    return _table(["form", "worlds", "network min / median", "best classic min / median",
                   "margin min / median", "shapley min / median", "longest training s"], rows)


def per_method(results: list[ZooResult]) -> list[str]:
    """Per method: min, median and mean accuracy over every world, and its wins."""
    rows = []
    for m in methods(results):
        acc = [r.accuracy[m] for r in results]
        wins = sum(1 for r in results if max(r.accuracy.values()) == r.accuracy[m])
        rows.append([m, _fmt(min(acc)), _fmt(statistics.median(acc)),
                     _fmt(statistics.fmean(acc)), str(wins)])
    alone = [r.recipe["network_alone"] for r in results if "network_alone" in r.recipe]
    if len(alone) == len(results):
        # Not a competitor: the network before its blend, to show what the blend did.
        rows.append(["network alone (no blend)", _fmt(min(alone)),
                     _fmt(statistics.median(alone)), _fmt(statistics.fmean(alone)), "-"])
    return _table(["method", "min", "median", "mean", "worlds it is best on"], rows)


def shortfalls(results: list[ZooResult]) -> list[str]:
    """The worlds where the network is below the target or not ahead of every classic method,
    each with the channel whose share it misses most."""
    lines = []
    for r in results:
        if not r.fails():
            continue
        best, best_acc = r.best_classic()
        gap = {c: r.network_shares[c] - r.true_shares[c] for c in r.true_shares}
        worst = max(gap, key=lambda c: abs(gap[c]))
        why = []
        if r.accuracy[NETWORK] < TARGET:
            why.append(f"{_fmt(r.accuracy[NETWORK])} < {TARGET}")
        if r.margin() <= 0:
            why.append(f"{best} {_fmt(best_acc)} is ahead by {-r.margin():.3f}")
        role = " (a harvesting channel)" if worst in r.harvest else ""
        lines.append(f"- {r.world} ({r.channels} channels, {r.conversions:,} conversions): "
                     f"{'; '.join(why)}. Largest miss: {worst}{role}, network "
                     f"{_fmt(r.network_shares[worst])} vs true {_fmt(r.true_shares[worst])}.")
    return lines or ["- none"]


def markdown(results: list[ZooResult], command: str, machine: str, seconds: float) -> str:
    """The whole report as Markdown."""
    fails = sum(r.fails() for r in results)
    lines = [
        "# Attribution accuracy on zoo worlds", "",
        f"Regenerate: `{command}` ({machine}; {seconds / 60:.0f} min).", "",
        "Each world is a random draw of one functional form of the true conversion probability "
        "(attribid.models.simulation.zoo); every method credits the same journeys, and "
        "accuracy is 1 - total-variation distance between its channel shares over converting "
        "journeys and the exact true Shapley shares. The network is trained with the default "
        "recipe on the world's journeys alone, as `attribid train` would on a user's files, "
        "and credits them through the served ONNX path. *Best classic* is the best of every "
        "other method on that world (data-driven Shapley and Markov included); *margin* is "
        "the network minus it. The truth is exact on every journey: all subsets of its "
        "channels (16 at most) are enumerated, so no world's truth is a sampled estimate. "
        "*Harvesting share* is the share of the harvesting channels (visible closing "
        "touches with little effect). The recipe chooses on the world's held-out journeys "
        "(10 %), from their outcomes only: the conversion epochs to keep (held-out "
        "log-loss, early stopping) and the *blend weight*, the network's share of the "
        "served credit against data-driven Shapley's (the weight whose mixed value "
        "function predicts the held-out conversions best; 1 is the network alone); *network "
        "alone* is the same network serving its own credit, without the blend. "
        "Training time is the wall time of the default recipe on the world's journeys "
        "(every stage, one PyTorch thread).", "",
        "## Per form (min / median over its worlds)", "", *per_form(results),
        "## Per method (over every world)", "", *per_method(results),
        "## Per world", "", *per_world(results),
        f"## Where the network is below {TARGET} or not ahead of every classic method "
        f"({fails} of {len(results)})", "", *shortfalls(results), "",
    ]
    return "\n".join(lines)


def as_json(results: list[ZooResult], command: str, seconds: float) -> dict[str, Any]:
    """Every figure of the run, for scripts."""
    return {"command": command, "seconds": round(seconds, 1), "target": TARGET,
            "worlds": [{**dataclasses.asdict(r), "best_classic": r.best_classic()[0],
                        "margin": round(r.margin(), 6), "fails": r.fails()} for r in results]}


def results_from_json(report: dict[str, Any]) -> list[ZooResult]:
    """The results of a run back from its ``as_json`` report (to render it again).

    >>> r = ZooResult("zoo:additive:1", "additive", 7, 10, 1, 0.1, [],
    ...               {NETWORK: 0.9, "linear": 0.8}, {}, {}, {}, 1.0)
    >>> results_from_json(as_json([r], "cmd", 1.0))[0] == r
    True
    """
    names = {f.name for f in dataclasses.fields(ZooResult)}
    return [ZooResult(**{k: v for k, v in w.items() if k in names}) for w in report["worlds"]]
