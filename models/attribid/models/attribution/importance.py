"""What drives the network's conversion predictions and its credit: permutation importance
over feature groups, per channel, with its stability over bootstrap resamples.

A group's columns of the featurizer (attribid.kernels.featurize) are shuffled among all
real touches of the journeys, which keeps their distribution and breaks their link to
everything else; the network is run again and compared with its unshuffled self:

- conversion: the drop in AUC of the conversion prediction (and the rise in log-loss);
- credit: the mean total-variation distance between the converting journeys' credit
  before and after, and per channel the mean absolute change of the channel's share on
  the converting journeys that touched it.

Each resample draws the journeys with replacement and a fresh shuffle; a group's
stability is the share of resamples in which it keeps the rank it has on all journeys.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from attribid.models.attribution.network_credit import to_model_channels
from attribid.models.data.journeys import Journeys
from attribid.models.evaluation.metrics import auc, log_loss
from attribid.models.network.dataset import featurize_journeys, reference_times, truncate
from attribid.models.onnx.runtime import OnnxModel
from attribid.models.progress import bar
from attribid.models.textgrid import grid

#: feature group -> its columns in the featurizer's layout (FEATURE_SPEC_VERSION 1)
GROUPS: dict[str, tuple[int, ...]] = {
    "channel": (*range(0, 16), 47, *range(48, 64)),
    "recency": tuple(range(35, 40)),
    "position": tuple(range(30, 35)),
    "interaction": (16, 17, 46),
    "device": tuple(range(18, 22)),
    "time of day": tuple(range(40, 44)),
    "cost": (44, 45),
    "product category": tuple(range(22, 30)),
}


@dataclass(frozen=True)
class Importance:
    """Permutation importance of each feature group, on all journeys and over resamples."""

    groups: tuple[str, ...]
    channels: tuple[str, ...]
    #: [G] on all journeys: AUC drop, log-loss rise, credit TV
    auc_drop: np.ndarray
    log_loss_rise: np.ndarray
    credit_tv: np.ndarray
    #: [G, C] mean |change| of each channel's share where it was touched
    channel_change: np.ndarray
    #: [B, G] the same figures on each bootstrap resample (B may be 0)
    auc_drop_samples: np.ndarray
    credit_tv_samples: np.ndarray
    #: [G] share of resamples keeping the rank on all journeys (NaN without resamples)
    auc_rank_stability: np.ndarray
    credit_rank_stability: np.ndarray
    journeys: int
    base_auc: float


class _Batches:
    """Featurized journeys in length-sorted batches, run through the model on demand."""

    def __init__(self, model: OnnxModel, journeys: Journeys, batch_size: int = 512) -> None:
        self.model = model
        ref = reference_times(journeys)
        order = np.argsort(journeys.lengths(), kind="stable")
        self.parts = []
        for lo in range(0, order.shape[0], batch_size):
            idx = order[lo:lo + batch_size]
            f, m = featurize_journeys(journeys.subset(idx), model.max_len, ref_time=ref[idx])
            self.parts.append((idx, f, m))
        self.n = journeys.n_journeys
        # every real touch as (batch, journey row, step), for shuffling a group's columns
        self.touches = [np.argwhere(m > 0) for _, _, m in self.parts]

    def run(self, permute: tuple[int, ...] | None = None,
            rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(conversion [J], credit [J, C]) with ``permute``'s columns shuffled among touches."""
        parts = [(idx, f, m) for idx, f, m in self.parts]
        if permute is not None:
            cols = np.asarray(permute)
            rows = np.concatenate([f[t[:, 0], t[:, 1]][:, cols]
                                   for (_, f, _), t in zip(parts, self.touches)])
            if rng is None:
                raise ValueError("shuffling a group needs a random generator")
            rows = rows[rng.permutation(rows.shape[0])]
            at = 0
            shuffled = []
            for (idx, f, m), t in zip(parts, self.touches):
                g = f.copy()
                block = g[t[:, 0], t[:, 1]]
                block[:, cols] = rows[at:at + t.shape[0]]
                g[t[:, 0], t[:, 1]] = block
                at += t.shape[0]
                shuffled.append((idx, g, m))
            parts = shuffled
        conv = np.zeros(self.n)
        credit = np.zeros((self.n, len(self.model.channels)))
        for idx, f, m in parts:
            c, cr, _ = self.model.run(f, m)
            conv[idx], credit[idx] = c, cr
        return conv, credit


def _scores(labels: np.ndarray, present: np.ndarray, base: tuple[np.ndarray, np.ndarray],
            now: tuple[np.ndarray, np.ndarray], rows: np.ndarray
            ) -> tuple[float, float, float, np.ndarray]:
    """AUC drop, log-loss rise, credit TV and per-channel change on ``rows``."""
    y = labels[rows]
    drop = auc(y, base[0][rows]) - auc(y, now[0][rows])
    rise = log_loss(y, now[0][rows]) - log_loss(y, base[0][rows])
    conv = rows[labels[rows]]
    diff = np.abs(now[1][conv] - base[1][conv])
    tv = 0.5 * float(diff.sum(axis=1).mean()) if conv.size else 0.0
    touched = present[conv]
    per = np.divide((diff * touched).sum(axis=0), touched.sum(axis=0),
                    out=np.zeros(diff.shape[1]), where=touched.sum(axis=0) > 0)
    return float(drop), float(rise), tv, per


def _ranks(values: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(-values, axis=-1, kind="stable"), axis=-1, kind="stable")


def permutation_importance(journeys: Journeys, model: OnnxModel, bootstrap: int = 20,
                           seed: int = 0, log: Callable[[str], None] = lambda text: None
                           ) -> Importance:
    """Permutation importance of every group of ``GROUPS`` for ``model`` on ``journeys``.

    >>> from attribid.models.onnx.runtime import load_model
    >>> from attribid.models.simulation.simulate import WORLDS, simulate
    >>> j, _ = simulate(WORLDS["recency"], 400, seed=1)
    >>> imp = permutation_importance(j, load_model(None), bootstrap=2)
    >>> imp.groups[0], imp.auc_drop.shape, imp.auc_drop_samples.shape
    ('channel', (8,), (2, 8))
    """
    journeys = truncate(to_model_channels(journeys.subset(journeys.lengths() > 0), model),
                        model.max_len)
    if journeys.n_journeys < 2 or journeys.converted.all() or not journeys.converted.any():
        raise ValueError("journeys: need converting and non-converting journeys to measure "
                         "conversion importance")
    rng = np.random.default_rng(seed)
    batches = _Batches(model, journeys)
    labels = journeys.converted
    present = np.zeros((journeys.n_journeys, len(model.channels)), dtype=bool)
    present[np.repeat(np.arange(journeys.n_journeys), journeys.lengths()), journeys.channel] = True
    base = batches.run()
    groups = tuple(GROUPS)
    shuffled = {}
    for g in bar(groups, total=len(groups), desc="feature groups", unit="group"):
        log(f"importance: shuffling {g}")
        shuffled[g] = batches.run(GROUPS[g], rng)
    everyone = np.arange(journeys.n_journeys)
    full = [_scores(labels, present, base, shuffled[g], everyone) for g in groups]
    drop = np.array([f[0] for f in full])
    tv = np.array([f[2] for f in full])
    samples_auc = np.zeros((bootstrap, len(groups)))
    samples_tv = np.zeros((bootstrap, len(groups)))
    for b in bar(range(bootstrap), total=bootstrap, desc="resamples", unit="resample"):
        rows = rng.integers(0, journeys.n_journeys, journeys.n_journeys)
        for k, g in enumerate(groups):
            # a fresh shuffle per resample: the spread covers both sources of chance
            now = batches.run(GROUPS[g], rng)
            d, _, t, _ = _scores(labels, present, base, now, rows)
            samples_auc[b, k], samples_tv[b, k] = d, t
    stable_auc = ((_ranks(samples_auc) == _ranks(drop)).mean(axis=0) if bootstrap
                  else np.full(len(groups), np.nan))
    stable_tv = ((_ranks(samples_tv) == _ranks(tv)).mean(axis=0) if bootstrap
                 else np.full(len(groups), np.nan))
    return Importance(groups, model.channels, drop, np.array([f[1] for f in full]), tv,
                      np.array([f[3] for f in full]), samples_auc, samples_tv, stable_auc,
                      stable_tv, journeys.n_journeys, float(auc(labels, base[0])))


def importance_table(imp: Importance, markdown: bool = False) -> str:
    """Groups ranked by credit importance, with conversion importance and stability."""
    order = np.argsort(-imp.credit_tv, kind="stable")
    boot = imp.auc_drop_samples.shape[0]
    header = ["feature group", "credit TV", "± sd", "rank kept", "AUC drop", "± sd", "rank kept",
              "log-loss rise"]
    rows = []
    for k in order.tolist():
        sd_tv = f"{imp.credit_tv_samples[:, k].std():.4f}" if boot else "-"
        sd_auc = f"{imp.auc_drop_samples[:, k].std():.4f}" if boot else "-"
        keep_tv = f"{100 * imp.credit_rank_stability[k]:.0f}%" if boot else "-"
        keep_auc = f"{100 * imp.auc_rank_stability[k]:.0f}%" if boot else "-"
        rows.append([imp.groups[k], f"{imp.credit_tv[k]:.4f}", sd_tv, keep_tv,
                     f"{imp.auc_drop[k]:.4f}", sd_auc, keep_auc, f"{imp.log_loss_rise[k]:.4f}"])
    per_header = ["feature group", *imp.channels]
    per_rows = [[imp.groups[k], *(f"{v:.3f}" for v in imp.channel_change[k])]
                for k in order.tolist()]
    intro = (f"{imp.journeys:,} journeys, network conversion AUC {imp.base_auc:.3f}; "
             f"{boot} bootstrap resamples")
    title1 = "What drives the credit and the conversion prediction"
    title2 = "Mean |change| of each channel's credit share where it was touched"
    return "\n".join([intro, "", ("### " if markdown else "") + title1, "",
                      *grid(header, rows, markdown), "", ("### " if markdown else "") + title2,
                      "", *grid(per_header, per_rows, markdown)]) + "\n"


def importance_document(imp: Importance) -> dict[str, Any]:
    """The figures as plain JSON values."""
    return {"journeys": imp.journeys, "base_auc": imp.base_auc,
            "bootstrap": int(imp.auc_drop_samples.shape[0]),
            "groups": {g: {"credit_tv": float(imp.credit_tv[k]),
                           "auc_drop": float(imp.auc_drop[k]),
                           "log_loss_rise": float(imp.log_loss_rise[k]),
                           "credit_tv_sd": float(imp.credit_tv_samples[:, k].std())
                           if imp.credit_tv_samples.size else None,
                           "auc_drop_sd": float(imp.auc_drop_samples[:, k].std())
                           if imp.auc_drop_samples.size else None,
                           "credit_rank_kept": _number(imp.credit_rank_stability[k]),
                           "auc_rank_kept": _number(imp.auc_rank_stability[k]),
                           "per_channel": dict(zip(imp.channels,
                                                   imp.channel_change[k].tolist()))}
                       for k, g in enumerate(imp.groups)}}


def _number(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def plot_importance(imp: Importance, path: str | Path) -> None:
    """``path`` (PNG): both importances with resample spread, and the per-channel map."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = np.argsort(-imp.credit_tv, kind="stable")
    names = [imp.groups[k] for k in order]
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.8))
    boot = imp.auc_drop_samples.shape[0] > 0
    for a, values, samples, title in (
            (ax[0], imp.credit_tv, imp.credit_tv_samples, "credit: mean TV when shuffled"),
            (ax[1], imp.auc_drop, imp.auc_drop_samples, "conversion: AUC drop when shuffled")):
        err = samples[:, order].std(axis=0) if boot else None
        a.barh(names[::-1], values[order][::-1], xerr=None if err is None else err[::-1],
               color="steelblue", ecolor="black", capsize=3)
        a.set_title(title)
    im = ax[2].imshow(imp.channel_change[order], aspect="auto", cmap="viridis")
    ax[2].set_yticks(range(len(names)), names)
    ax[2].set_xticks(range(len(imp.channels)), imp.channels, rotation=45, ha="right")
    ax[2].set_title("per channel: mean |share change|")
    fig.colorbar(im, ax=ax[2])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
