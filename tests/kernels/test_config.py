"""Numba flags come from attribid.kernels.config alone; the hot path calls the compiled kernels."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import numpy as np
from numba.core.caching import FunctionCache
from numba.core.registry import CPUDispatcher

from attribid.kernels import bidding, checks, credit, featurize

ROOT = Path(__file__).resolve().parents[2]
KERNELS = sorted((ROOT / "kernels" / "attribid" / "kernels").glob("*.py"))
#: compiled code outside the kernels folder, which uses the same flags
OTHERS = [ROOT / "models/attribid/models/simulation/simulate.py",
          ROOT / "server/attribid/runtime/spin.py"]
#: the GIL-holding kernels, by module (the bid kernel and the serving checks, on the event
#: loop's thread); every other compiled function releases the GIL, the allocation thread's
#: fits and solves included
HOLDS_GIL = {"bidding", "checks"}


def module_name(path: Path) -> str:
    root = next(p for p in path.parents if p.name in ("kernels", "models", "server")
                and p.parent == ROOT)
    return ".".join(path.relative_to(root).with_suffix("").parts)


def test_no_module_but_config_names_numba_flags() -> None:
    for path in KERNELS + OTHERS:
        if path.name == "config.py":
            continue
        text = path.read_text()
        assert not re.search(r"\bnjit\b|@jit\(|nogil=|cache=", text), path


def test_every_compiled_function_is_cached_with_its_modules_gil_rule() -> None:
    seen = 0
    for path in KERNELS + OTHERS:
        module = importlib.import_module(module_name(path))
        for name, obj in vars(module).items():
            if not isinstance(obj, CPUDispatcher) or obj.__module__ != module.__name__:
                continue
            seen += 1
            assert isinstance(obj._cache, FunctionCache), name  # cache=True
            nogil = obj.targetoptions.get("nogil", False)
            assert nogil == (module.__name__.rsplit(".", 1)[1] not in HOLDS_GIL), name
    assert seen > 30


def test_hot_path_entry_points_are_the_compiled_kernels_and_agree_with_the_wrappers() -> None:
    for fn in (featurize.featurize_kernel, credit.shares_over_present_kernel,
               checks.first_invalid_kernel, bidding.bids_kernel):
        assert isinstance(fn, CPUDispatcher)  # no Python layer between the caller and the kernel
    rng = np.random.default_rng(0)
    offsets = np.array([0, 1, 4, 9], np.int64)
    channel = rng.integers(0, 7, 9).astype(np.int32)
    cols = dict(timestamp=np.sort(rng.uniform(1e9, 1e9 + 1e5, 9)),
                interaction=rng.integers(1, 3, 9).astype(np.int8), cost=rng.uniform(0, 2, 9),
                device=rng.integers(0, 4, 9).astype(np.int8))
    category = np.array([0, 3, 7], np.int32)
    ref = np.full(3, 1e9 + 2e5)
    want, want_mask, want_len = featurize.featurize(offsets, channel, *cols.values(), category,
                                                    ref, 4)
    out, mask, lengths = np.empty((3, 4, 64), np.float32), np.empty((3, 4), np.float32), \
        np.empty(3, np.int64)
    featurize.featurize_kernel(offsets, channel, *cols.values(), category, ref, 4, out, mask,
                               lengths)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(mask, want_mask)
    np.testing.assert_array_equal(lengths, want_len)

    raw = rng.uniform(-0.1, 1, (3, 7)).astype(np.float32)
    shares = np.empty((3, 7))
    credit.shares_over_present_kernel(raw, offsets, channel, shares)
    np.testing.assert_array_equal(shares, credit.shares_over_present(raw, offsets, channel))

    args = (0.4, rng.dirichlet(np.ones(7)), rng.uniform(0, 9, 7), rng.uniform(0, 0.1, 7),
            np.array([1.2, 0.05, 3.0]))
    a, b = np.empty(7), np.empty(7)
    bidding.bids_kernel(*args, a)
    bidding.bids_into(*args, b)
    np.testing.assert_array_equal(a, b)
