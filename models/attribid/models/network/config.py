"""The training settings (no PyTorch needed to read them: `attribid train --help` uses them).

Each field's ``metadata["help"]`` is the help of its `attribid train` flag.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from attribid.models.network.dataset import DEFAULT_MAX_LEN


def _setting(default: int | float, help: str) -> Any:
    """A field with its default and its help, the one place the help is written."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainConfig:
    """Every training setting; `attribid train` derives one flag per field.

    >>> TrainConfig(epochs=2).epochs, TrainConfig().max_len == DEFAULT_MAX_LEN
    (2, True)
    """

    epochs: int = _setting(
        8, "at most this many passes over the training journeys for the conversion head")
    patience: int = _setting(
        2, "stop the conversion passes after N without a better held-out log-loss, keeping "
           "the best pass's weights (0: run every pass, keep the last)")
    distill_epochs: int = _setting(3, "passes over the distillation journeys for the channel scores")
    seed: int = _setting(0, "random seed: the split, the initial weights, dropout and batch order")
    max_len: int = _setting(DEFAULT_MAX_LEN, "journeys keep their most recent N touchpoints")
    batch_size: int = _setting(256, "journeys per optimisation step")
    learning_rate: float = _setting(2e-3, "Adam step size")
    holdout: float = _setting(0.1, "share of journeys held out for the reported metrics")
    distill_journeys: int = _setting(
        40_000, "at most this many training journeys get brute-force Shapley targets")
    credit_weight: float = _setting(
        1.0, "weight of the credit loss against the conversion loss in stage 2")
    # The empty journey (no touch) is in no data; it learns this estimate instead.
    baseline_quantile: float = _setting(
        0.05, "the organic (no-touch) conversion probability is this quantile of the "
              "network's predictions on single touches")
    threads: int = _setting(1, "PyTorch CPU threads (intra-op)")
    blend: float = _setting(
        -1.0, "the network's weight in the served credit, the rest data-driven Shapley's "
              "(over channel sets); -1 chooses it on the held-out journeys by the "
              "log-likelihood of the mixed value function, 1 serves the network alone")

    def __post_init__(self) -> None:
        for name in ("epochs", "distill_epochs", "patience", "batch_size", "max_len", "threads"):
            low = 0 if name in ("epochs", "distill_epochs", "patience") else 1
            if getattr(self, name) < low:
                raise ValueError(f"{name}: must be >= {low}")
        if not (self.blend == -1.0 or 0.0 <= self.blend <= 1.0):
            raise ValueError("blend: must be -1 (chosen on held-out journeys) or in [0, 1]")
        if not 0.0 <= self.holdout < 1.0:
            raise ValueError("holdout: must be in [0, 1)")
        if not 0.0 < self.baseline_quantile < 1.0:
            raise ValueError("baseline_quantile: must be in (0, 1)")
