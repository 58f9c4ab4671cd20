"""The JSON allocation spec: parsing and validation into an allocation Problem.

Format (``examples/allocation_spec.json``)::

    {"budget": 10000,
     "objective": {"revenue": 1, "acquisitions": 0, "exposure": 0},
     "max_cpa": 40,                                   # optional, 0 or absent = none
     "channels": [{"name": "search", "min": 0, "max": 0, "value_per_conversion": 120,
                   "conversions": {"curve": "hill", "top": 300, "half": 4000, "slope": 0.8},
                   "impressions": {"curve": "exponential", "top": 2e6, "scale": 9000}}]}

``max`` 0 or absent means the whole budget; ``impressions`` is optional. Hill means
``top * x**slope / (half**slope + x**slope)``, exponential ``top * (1 - exp(-x / scale))``.
Every error names its field, e.g. ``channels[2].conversions.half``.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attribid.kernels.allocation import Problem
from attribid.kernels.response import EXPONENTIAL, HILL, KINDS, NONE


class SpecError(ValueError):
    """A spec the allocator refuses; ``field`` is the path of the offending value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Spec:
    """A validated spec: the channel names and the problem over them."""

    names: tuple[str, ...]
    problem: Problem


def _number(obj: dict[str, Any], key: str, field: str, *, default: float | None = None,
            positive: bool = False) -> float:
    if key not in obj:
        if default is None:
            raise SpecError(f"{field}.{key}" if field else key, "required")
        return default
    v = obj[key]
    where = f"{field}.{key}" if field else key
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise SpecError(where, f"must be a finite number, got {v!r}")
    if v < 0 or (positive and v == 0):
        raise SpecError(where, f"must be {'>' if positive else '>='} 0, got {v!r}")
    return float(v)


def _curve(obj: Any, field: str) -> tuple[int, list[float]]:
    if not isinstance(obj, dict):
        raise SpecError(field, "must be an object with a 'curve' key")
    kind = KINDS.get(obj.get("curve", ""))
    if kind is None:
        raise SpecError(f"{field}.curve", f"must be one of {sorted(KINDS)}, got {obj.get('curve')!r}")
    top = _number(obj, "top", field)
    if kind == HILL:
        return HILL, [top, _number(obj, "half", field, positive=True),
                      _number(obj, "slope", field, positive=True)]
    return EXPONENTIAL, [top, _number(obj, "scale", field, positive=True), 0.0]


def parse(doc: Any) -> Spec:
    """Validate a decoded spec document.

    >>> s = parse({"budget": 10, "objective": {"revenue": 1}, "channels": [{"name": "a",
    ...     "value_per_conversion": 2, "conversions": {"curve": "exponential", "top": 5, "scale": 3}}]})
    >>> s.names, s.problem.hi.tolist()
    (('a',), [10.0])
    """
    if not isinstance(doc, dict):
        raise SpecError("", "the spec must be a JSON object")
    budget = _number(doc, "budget", "")
    objective = doc.get("objective", {"revenue": 1.0})
    if not isinstance(objective, dict):
        raise SpecError("objective", "must be an object")
    w = [_number(objective, k, "objective", default=0.0) for k in ("revenue", "acquisitions", "exposure")]
    if sum(w) <= 0:
        raise SpecError("objective", "at least one weight must be > 0")
    max_cpa = _number(doc, "max_cpa", "", default=0.0)
    channels = doc.get("channels")
    if not isinstance(channels, list) or not channels:
        raise SpecError("channels", "must be a non-empty list")
    names: list[str] = []
    rows: list[tuple[float, float, float, int, list[float], int, list[float]]] = []
    for i, ch in enumerate(channels):
        field = f"channels[{i}]"
        if not isinstance(ch, dict):
            raise SpecError(field, "must be an object")
        name = ch.get("name")
        if not isinstance(name, str) or not name:
            raise SpecError(f"{field}.name", "required, a non-empty string")
        if name in names:
            raise SpecError(f"{field}.name", f"channel {name!r} listed twice")
        lo = _number(ch, "min", field, default=0.0)
        hi = _number(ch, "max", field, default=0.0) or budget
        if lo > hi:
            raise SpecError(f"{field}.min", f"min {lo:g} > max {hi:g}")
        value = _number(ch, "value_per_conversion", field, default=0.0 if w[0] == 0 else None)
        ck, cp = _curve(ch.get("conversions"), f"{field}.conversions")
        mk, mp = (_curve(ch["impressions"], f"{field}.impressions") if "impressions" in ch
                  else (NONE, [0.0, 0.0, 0.0]))
        names.append(name)
        rows.append((lo, hi, value, ck, cp, mk, mp))
    lo_a = np.array([r[0] for r in rows])
    if lo_a.sum() > budget:
        raise SpecError("budget", f"channel minimums sum to {lo_a.sum():g}, more than the budget {budget:g}")
    problem = Problem(
        budget, np.array([r[2] for r in rows]), lo_a, np.array([r[1] for r in rows]),
        np.array([r[3] for r in rows], dtype=np.int64), np.array([r[4] for r in rows]),
        np.array([r[5] for r in rows], dtype=np.int64), np.array([r[6] for r in rows]),
        w[0], w[1], w[2], max_cpa)
    return Spec(tuple(names), problem)


def load(path: str | Path) -> Spec:
    """Read and validate a spec file; a JSON syntax error names the file, line and column."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}:{exc.lineno}:{exc.colno}", exc.msg) from None
    return parse(doc)
