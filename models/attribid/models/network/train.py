"""Train the attribution network on journeys (CPU, deterministic for a seed).

Two stages, both on the same network:

1. conversion: the conversion head learns P(convert | journey) from the
   observed outcomes (binary cross-entropy);
   Up to ``epochs`` passes, stopped early when the held-out log-loss has not improved
   for ``patience`` passes; the best pass's weights are kept;
2. credit distillation: the exact channel Shapley values of the stage-1
   network are computed by brute force on channel-removed copies of each
   journey (models.distill); the channel scores then learn, jointly with the
   conversion loss, to reproduce the positive-Shapley shares in one forward
   pass (loss: total-variation distance of the served credit to them);
3. credit blend (models.network.blend): the served credit mixes the network's with
   data-driven Shapley's, with the weight under which the mixed value function best
   predicts the held-out journeys (``blend`` -1; a fixed weight otherwise).

Every choice is made on the held-out journeys' outcomes, never on true credit, so training
on a user's files does what it does in an evaluation.

The game's empty coalition is a journey with no touch, which no data shows:
its value is estimated as a low quantile of the network's predictions on
single touches (``organic_baseline``), and the network learns to output it for
an empty journey, so its exact Shapley values can be recomputed from the ONNX
file alone.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict
from typing import Any, Callable

import numpy as np
import torch

from attribid.kernels.featurize import N_FEATURES
from attribid.models.data.journeys import Journeys
from attribid.models.network.dataset import (
    featurize_journeys, reference_times, single_touches, truncate,
)
from attribid.models.attribution.classic import journey_masks, shapley_set_values
from attribid.models.network.blend import choose_weight, set_credit_table
from attribid.models.network.distill import (
    credit_shares, network_shapley, shapley_from_values, subset_values,
)
from attribid.models.evaluation.metrics import auc, log_loss, row_agreement
from attribid.models.network.architecture import AttributionNet, normalise_credit, parameter_count
from attribid.models.network.config import TrainConfig
from attribid.models.progress import bar

Log = Callable[[str], None]


def train_network(journeys: Journeys, config: TrainConfig, log: Log = print,
                  ref_time: np.ndarray | None = None) -> tuple[AttributionNet, dict[str, Any]]:
    """Train on ``journeys``; returns the network (eval mode) and a report for the metadata.

    ``ref_time`` overrides the featurizer's reference times (default:
    dataset.reference_times), e.g. with a simulator's known decision times.

    >>> from attribid.models.simulation.simulate import WORLDS, simulate
    >>> js, _ = simulate(WORLDS["balanced"], 200, seed=1)
    >>> config = TrainConfig(epochs=1, distill_epochs=1, distill_journeys=50)
    >>> net, report = train_network(js, config, log=lambda line: None)
    >>> net.training, sorted(report), sorted(report["metrics"])[:2]
    (False, ['base_rate', 'metrics', 'summary'], ['auc', 'credit_vs_network_shapley'])
    """
    if journeys.n_journeys < 2:
        raise ValueError("journeys: need at least 2 journeys to train")
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(config.seed)
    started = time.monotonic()
    journeys = truncate(journeys, config.max_len)
    ref = reference_times(journeys) if ref_time is None else np.asarray(ref_time, np.float64)
    if ref.shape != (journeys.n_journeys,):
        raise ValueError(f"ref_time: must have shape ({journeys.n_journeys},), got {ref.shape}")
    order = rng.permutation(journeys.n_journeys)
    n_hold = int(round(config.holdout * journeys.n_journeys))
    hold, train = np.sort(order[:n_hold]), np.sort(order[n_hold:])
    net = AttributionNet(len(journeys.channels))
    opt = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    labels = journeys.converted.astype(np.float32)
    log(f"training on {train.size:,} journeys ({hold.size:,} held out): up to {config.epochs} "
        f"conversion epochs, then up to {config.distill_epochs} credit epochs")

    epochs_run, best_epoch = _conversion_stage(net, opt, journeys, ref, labels, train, hold,
                                               config, rng, log)

    distill_idx = _distill_sample(journeys, train, config.distill_journeys, rng)
    baseline = organic_baseline(net, journeys.subset(distill_idx), ref[distill_idx], config)
    log(f"organic baseline estimate: {baseline:.4f}")
    targets = None
    if config.distill_epochs and distill_idx.size:
        t0 = time.monotonic()
        log(f"teacher Shapley on {distill_idx.size} journeys (exact, 2**k network passes each)")
        targets = _teacher_targets(net, journeys, ref, distill_idx, baseline, config.max_len)
        log(f"teacher Shapley done: {time.monotonic() - t0:.0f} s")
    # Stage 2 passes over the distilled journeys plus as many others; class weights keep
    # the conversion loss's base rate that of all training journeys.
    others = np.setdiff1d(train, distill_idx)
    stage2 = np.union1d(distill_idx, rng.permutation(others)[:distill_idx.size])
    weights = _class_weights(labels, train, stage2)
    for epoch in range(config.distill_epochs if targets is not None else 0):
        # The distilled journeys add the credit loss; the empty journey learns the baseline.
        loss = _run_epoch(net, opt, journeys, ref, labels, stage2, targets, config, rng,
                          baseline, weights,
                          desc=f"credit epoch {epoch + 1}/{config.distill_epochs}")
        log(f"credit epoch {epoch + 1}/{config.distill_epochs}: loss {loss:.4f}")

    net.eval()
    blend = _blend_stage(net, journeys, ref, train, hold, baseline, config, log)
    metrics = (holdout_metrics(net, journeys.subset(hold), config.max_len, ref_time=ref[hold])
               if hold.size else {})
    summary = training_summary(journeys.subset(train), config, distill_idx.size)
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary["organic_baseline"] = round(baseline, 5)
    summary["parameters"] = parameter_count(net)
    summary["conversion_epochs"] = {"run": epochs_run, "kept": best_epoch,
                                    "chosen_by": "held-out log-loss"}
    summary["credit_blend"] = blend
    log(f"held-out: {metrics}")
    return net, {"summary": summary, "metrics": metrics,
                 "base_rate": float(journeys.converted.mean())}


def _conversion_stage(net: AttributionNet, opt: torch.optim.Optimizer, journeys: Journeys,
                      ref: np.ndarray, labels: np.ndarray, train: np.ndarray,
                      hold: np.ndarray, config: TrainConfig, rng: np.random.Generator,
                      log: Log) -> tuple[int, int]:
    """Stage 1 with early stopping on the held-out log-loss; returns (passes run, pass kept)."""
    watch = config.patience > 0 and hold.size > 0 and bool(labels[hold].any())
    held = journeys.subset(hold) if watch else None
    best_loss, best_state, best_epoch, stale = float("inf"), None, config.epochs, 0
    epoch = 0
    for epoch in range(1, config.epochs + 1):
        loss = _run_epoch(net, opt, journeys, ref, labels, train, None, config, rng,
                          desc=f"conversion epoch {epoch}/{config.epochs}")
        if held is None:
            log(f"conversion epoch {epoch}/{config.epochs}: loss {loss:.4f}")
            continue
        net.eval()
        conv, _ = predict_batches(net, held, config.max_len, ref_time=ref[hold])
        held_loss = log_loss(journeys.converted[hold], conv)
        log(f"conversion epoch {epoch}/{config.epochs}: loss {loss:.4f}, "
            f"held-out log-loss {held_loss:.5f}")
        if held_loss < best_loss:
            best_loss, best_epoch, stale = held_loss, epoch, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            stale += 1
            if stale >= config.patience:
                log(f"held-out log-loss not better for {stale} epochs: keeping epoch "
                    f"{best_epoch}")
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    return epoch, best_epoch


def _blend_stage(net: AttributionNet, journeys: Journeys, ref: np.ndarray, train: np.ndarray,
                 hold: np.ndarray, baseline: float, config: TrainConfig,
                 log: Log) -> dict[str, Any]:
    """Stage 3: choose the blend weight on the held-out journeys and set it on ``net``."""
    if config.blend == 1.0:
        return {"weight": 1.0, "chosen_by": "--blend"}
    if config.blend >= 0.0:
        weight, summary = config.blend, {"weight": config.blend, "chosen_by": "--blend"}
    elif hold.size == 0 or not journeys.converted[hold].any():
        log("no held-out conversion to choose the credit blend on: the network's credit alone")
        return {"weight": 1.0, "chosen_by": "no held-out conversion"}
    else:
        conv, _ = predict_batches(net, journeys.subset(hold), config.max_len, ref_time=ref[hold])
        in_train = np.zeros(journeys.n_journeys)
        in_train[train] = 1.0
        v_train = shapley_set_values(journeys, weight=in_train)
        choice = choose_weight(conv, v_train[journey_masks(journeys)[hold]],
                               journeys.converted[hold])
        weight, summary = choice.weight, choice.summary()
        log(f"credit blend: the network's weight {weight:.1f} (held-out log-likelihood "
            f"{choice.log_likelihood[weight]:.5f}; network alone "
            f"{choice.log_likelihood[1.0]:.5f}, data-driven Shapley alone "
            f"{choice.log_likelihood[0.0]:.5f})")
    if weight < 1.0:
        # The served table is built on every journey, held-out ones included: the weight
        # was chosen, the data can all be used.
        table = set_credit_table(shapley_set_values(journeys), len(journeys.channels))
        net.set_credit_blend(torch.from_numpy(table), weight, baseline)
    return summary


def torch_predict(net: AttributionNet) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A NumPy-in, NumPy-out conversion predictor over ``net`` in eval mode.

    >>> from attribid.models.simulation.simulate import WORLDS, simulate
    >>> js, _ = simulate(WORLDS["balanced"], 200, seed=1)
    >>> net = AttributionNet(n_channels=len(js.channels)).eval()  # untrained weights
    >>> features, mask = featurize_journeys(js.subset(np.arange(3)), 64)
    >>> p = torch_predict(net)(features, mask)
    >>> p.dtype, p.shape, bool(np.all((p > 0) & (p < 1)))
    (dtype('float64'), (3,), True)
    """
    def predict(features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logit, _, _, _ = net.heads(torch.from_numpy(features), torch.from_numpy(mask))
            return torch.sigmoid(logit).double().numpy()
    return predict


def holdout_metrics(net: AttributionNet, journeys: Journeys, max_len: int,
                    fidelity_journeys: int = 2000,
                    ref_time: np.ndarray | None = None) -> dict[str, float]:
    """AUC, log-loss, and agreement of the network's own credit (before any blend) with its
    exact Shapley shares: how well the one pass distils them.

    >>> from attribid.models.simulation.simulate import WORLDS, simulate
    >>> js, _ = simulate(WORLDS["balanced"], 200, seed=1)
    >>> net = AttributionNet(n_channels=len(js.channels)).eval()  # untrained weights
    >>> sorted(holdout_metrics(net, js, 64, fidelity_journeys=20))
    ['auc', 'credit_vs_network_shapley', 'journeys', 'log_loss']
    """
    net.eval()
    ref = reference_times(journeys) if ref_time is None else ref_time
    conv, credit = predict_batches(net.without_credit_blend(), journeys, max_len, ref_time=ref)
    y = journeys.converted
    out: dict[str, float] = {"auc": auc(y, conv), "log_loss": log_loss(y, conv),
                             "journeys": float(journeys.n_journeys)}
    converting = np.flatnonzero(y)[:fidelity_journeys]
    if converting.size:
        phi, present = network_shapley(journeys.subset(converting), torch_predict(net), max_len,
                                       ref_time=ref[converting])
        shares, defined = credit_shares(phi, present)
        agree = row_agreement(credit[converting], shares)[defined]
        out["credit_vs_network_shapley"] = float(agree.mean()) if agree.size else float("nan")
    return {k: round(v, 5) for k, v in out.items()}


def predict_batches(net: AttributionNet, journeys: Journeys, max_len: int,
                    batch: int = 1024,
                    ref_time: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Conversion probabilities [J] and served credit [J, C] from the PyTorch network.

    >>> from attribid.models.simulation.simulate import WORLDS, simulate
    >>> js, _ = simulate(WORLDS["balanced"], 200, seed=1)
    >>> net = AttributionNet(n_channels=len(js.channels)).eval()  # untrained weights
    >>> conv, credit = predict_batches(net, js, 64)
    >>> conv.shape, credit.shape
    ((200,), (200, 7))
    """
    ref = reference_times(journeys) if ref_time is None else ref_time
    conv = np.empty(journeys.n_journeys)
    credit = np.zeros((journeys.n_journeys, len(journeys.channels)))
    with torch.no_grad():
        for lo in range(0, journeys.n_journeys, batch):
            idx = np.arange(lo, min(lo + batch, journeys.n_journeys))
            f, m = featurize_journeys(journeys.subset(idx), max_len, ref_time=ref[idx])
            p, c, _ = net(torch.from_numpy(f), torch.from_numpy(m))
            conv[idx], credit[idx] = p.double().numpy(), c.double().numpy()
    return conv, credit


def training_summary(journeys: Journeys, config: TrainConfig, distilled: int) -> dict[str, Any]:
    """What the model was trained on, for the metadata.

    >>> from attribid.models.simulation.simulate import WORLDS, simulate
    >>> js, _ = simulate(WORLDS["balanced"], 200, seed=1)
    >>> training_summary(js, TrainConfig(), distilled=50)["journeys"]
    200
    """
    return {
        "journeys": journeys.n_journeys,
        "touchpoints": journeys.n_touchpoints,
        "conversion_rate": round(float(journeys.converted.mean()), 5),
        "mean_touchpoints": round(float(journeys.lengths().mean()), 3),
        "distilled_journeys": int(distilled),
        "config": asdict(config),
    }


def _run_epoch(net: AttributionNet, opt: torch.optim.Optimizer, journeys: Journeys,
               ref: np.ndarray, labels: np.ndarray, index: np.ndarray,
               targets: tuple[np.ndarray, np.ndarray] | None, config: TrainConfig,
               rng: np.random.Generator, baseline: float | None = None,
               weights: np.ndarray | None = None, desc: str = "epoch") -> float:
    net.train()
    bce = torch.nn.BCEWithLogitsLoss()
    empty = (torch.zeros(1, 1, N_FEATURES), torch.zeros(1, 1))
    empty_target = torch.full((1,), float(baseline or 0.0))
    total, count = 0.0, 0
    batches = _length_batches(journeys.lengths()[index], config.batch_size, rng)
    for batch in bar(batches, total=len(batches), desc=desc, unit="step"):
        idx = index[batch]
        f, m = featurize_journeys(journeys.subset(idx), config.max_len, ref_time=ref[idx])
        f_t, m_t = torch.from_numpy(f), torch.from_numpy(m)
        logit, scores, present, _ = net.heads(f_t, m_t)
        if weights is None:
            loss = bce(logit, torch.from_numpy(labels[idx]))
        else:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logit, torch.from_numpy(labels[idx]), weight=torch.from_numpy(weights[idx]))
        if targets is not None:
            shares, defined = targets[0][idx], targets[1][idx]
            if defined.any():
                credit = normalise_credit(scores, present)[torch.from_numpy(defined)]
                tv = 0.5 * (credit - torch.from_numpy(shares[defined]).float()).abs().sum(dim=1)
                loss = loss + config.credit_weight * tv.mean()
        if baseline is not None:
            loss = loss + bce(net.heads(*empty)[0], empty_target)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        total += float(loss.detach()) * idx.size
        count += idx.size
    return total / max(count, 1)


def organic_baseline(net: AttributionNet, journeys: Journeys, ref: np.ndarray,
                     config: TrainConfig, limit: int = 50_000) -> float:
    """Estimated conversion probability of a journey with no touch at all.

    No journey in the data has zero touches, so this is read off the network:
    the ``config.baseline_quantile`` quantile of its predictions on single
    touches (old impressions and other weak touches add almost nothing).

    >>> from attribid.models.simulation.simulate import WORLDS, simulate
    >>> js, _ = simulate(WORLDS["balanced"], 200, seed=1)
    >>> net = AttributionNet(n_channels=len(js.channels)).eval()  # untrained weights
    >>> 0.0 < organic_baseline(net, js, reference_times(js), TrainConfig()) < 1.0
    True
    """
    ones, source = single_touches(journeys)
    pick = np.random.default_rng(config.seed).permutation(ones.n_journeys)[:limit]
    f, m = featurize_journeys(ones.subset(pick), config.max_len, ref_time=ref[source[pick]])
    if pick.size == 0:
        return 0.0
    net.eval()
    prob = torch_predict(net)(f, m)
    return float(np.quantile(prob, config.baseline_quantile))


def _teacher_targets(net: AttributionNet, journeys: Journeys, ref: np.ndarray,
                     index: np.ndarray, baseline: float,
                     max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Positive-Shapley shares [J, C] of the network as it is now at ``index`` (other rows
    undefined), and which rows are defined; the empty set is worth ``baseline``."""
    net.eval()
    starts, present, values = subset_values(journeys.subset(index), torch_predict(net), max_len,
                                            ref_time=ref[index], empty_value=baseline)
    part, ok = credit_shares(shapley_from_values(starts, present, values), present)
    shares = np.zeros((journeys.n_journeys, present.shape[1]))
    defined = np.zeros(journeys.n_journeys, dtype=bool)
    shares[index], defined[index] = part, ok
    return shares, defined


def _class_weights(labels: np.ndarray, population: np.ndarray,
                   sample: np.ndarray) -> np.ndarray:
    """Per-journey weights making ``sample``'s class balance that of ``population``."""
    weights = np.ones(labels.shape[0], dtype=np.float32)
    for value in (0.0, 1.0):
        share_pop = float(np.mean(labels[population] == value))
        share_sample = float(np.mean(labels[sample] == value)) if sample.size else 0.0
        if share_sample > 0:
            weights[labels == value] = share_pop / share_sample
    return weights


def _distill_sample(journeys: Journeys, train: np.ndarray, cap: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Up to ``cap`` training journeys for distillation, sorted: half converting (their
    credit is what batch attribution reports), half not (served mid-journey)."""
    converting = rng.permutation(train[journeys.converted[train]])
    other = rng.permutation(train[~journeys.converted[train]])
    take_conv = converting[:max(cap // 2, cap - other.size)]
    take_other = other[:cap - take_conv.size]
    return np.sort(np.concatenate([take_conv, take_other]))


def _length_batches(lengths: np.ndarray, batch_size: int,
                    rng: np.random.Generator) -> list[np.ndarray]:
    """Batches of positions into ``lengths`` with similar lengths, in random order."""
    order = np.lexsort((np.asarray(rng.random(lengths.shape[0])), lengths))
    batches = [order[i:i + batch_size] for i in range(0, order.shape[0], batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]
