"""Coarse |yaw| bins, per-template yaw and the rules that put a pair in a bin.

Bins are half-open ``[e0, e1), [e1, e2), ...`` over |yaw|; the last bin is closed and also
takes anything beyond the last edge (a |yaw| of 95 degrees is a full profile, not an
error). An unknown yaw (NaN) has bin -1.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from ..errors import ConfigError

DEFAULT_EDGES: tuple[float, ...] = (0.0, 30.0, 60.0, 90.0)

#: How a pair gets one bin from its two sides' bins (reports also show the full bin-by-bin
#: matrix). ``probe`` is side ``b`` (the verify/probe template, the profile side in CFP-FP).
PAIR_RULES = ("max", "min", "probe")
#: How a template's yaw is summarised from its images' |yaw|.
TEMPLATE_YAW = ("median", "mean", "max")


def check_edges(edges: Sequence[float]) -> tuple[float, ...]:
    if isinstance(edges, (str, bytes)) or not hasattr(edges, "__iter__"):
        raise ConfigError(f"yaw bin edges must be a list of numbers, got {edges!r}")
    try:
        edges = tuple(float(e) for e in edges)
    except (TypeError, ValueError):
        raise ConfigError(f"yaw bin edges must be a list of numbers, got {list(edges)!r}") from None
    if (len(edges) < 2 or edges[0] != 0.0 or not all(np.isfinite(edges))
            or any(b <= a for a, b in pairwise(edges))):
        raise ConfigError(f"yaw bin edges must start at 0 and increase, got {list(edges)}")
    return edges


def bin_labels(edges: Sequence[float]) -> list[str]:
    """``["0-30", "30-60", "60-90"]`` for the default edges."""
    return [f"{a:g}-{b:g}" for a, b in pairwise(edges)]


def yaw_bin(yaw, edges: Sequence[float] = DEFAULT_EDGES) -> np.ndarray:
    """Bin index of each |yaw| (degrees): int64 array, -1 where yaw is NaN."""
    edges = check_edges(edges)
    mag = np.abs(np.asarray(yaw, dtype=np.float64))
    idx = np.searchsorted(np.asarray(edges[1:-1]), mag, side="right")
    return np.where(np.isnan(mag), -1, idx).astype(np.int64)


def template_yaw(samples: pd.DataFrame, how: str = "median") -> pd.Series:
    """|yaw| per template (index: template id), summarised over its images with known yaw."""
    if how not in TEMPLATE_YAW:
        raise ConfigError(f"template yaw must be one of {TEMPLATE_YAW}, got {how!r}")
    mag = samples["yaw"].abs()
    return mag.groupby(samples["template"], sort=False).agg(how)


def pair_bins(comparisons: pd.DataFrame, yaw_by_template: pd.Series,
              edges: Sequence[float] = DEFAULT_EDGES) -> tuple[np.ndarray, np.ndarray]:
    """(bin of side a, bin of side b) per comparison; -1 where a side's yaw is unknown."""
    bin_a = yaw_bin(comparisons["a"].map(yaw_by_template).to_numpy(dtype=np.float64), edges)
    bin_b = yaw_bin(comparisons["b"].map(yaw_by_template).to_numpy(dtype=np.float64), edges)
    return bin_a, bin_b


def pair_bin(bin_a: np.ndarray, bin_b: np.ndarray, rule: str) -> np.ndarray:
    """One bin per pair by ``rule`` (``max``, ``min``, ``probe``); -1 if a used side is -1."""
    if rule == "max":
        out = np.maximum(bin_a, bin_b)
    elif rule == "min":
        out = np.minimum(bin_a, bin_b)
    elif rule == "probe":
        return np.asarray(bin_b, dtype=np.int64)
    else:
        raise ConfigError(f"pair yaw rule must be one of {PAIR_RULES}, got {rule!r}")
    return np.where((bin_a < 0) | (bin_b < 0), -1, out).astype(np.int64)
