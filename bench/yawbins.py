"""The one yaw vocabulary: |yaw| bins, their labels, the rule that gives a pair one bin, and
how a template's yaw is summarised from its images.

Every consumer (validation reports, the yaw-split reader, template tables, evaluation,
plots, compare and ``bench score``) reads a :class:`YawBinning`, so a rule a protocol file
accepts is a rule every stage understands.

Bins are half-open ``[e0, e1), [e1, e2), ...`` over |yaw| in degrees; the last bin is
closed and also takes any |yaw| beyond the last edge (a |yaw| of 95 degrees is a full
profile, not an error; the committed data has none). Labels read ``[0,30)``, ``[30,60)``,
``[60,90]``. An unknown yaw (NaN) is in no bin (-1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_EDGES: tuple[float, ...] = (0.0, 30.0, 60.0, 90.0)

#: How a pair gets one bin from its two sides' bins, and the sentence results record for it
#: (reports also show the full bin-by-bin matrix). ``probe`` is side ``b``: the verify/probe
#: template, the profile side in CFP-FP.
PAIR_RULES: dict[str, str] = {
    "max": "pair bin = bin of the larger |yaw| of its two sides",
    "min": "pair bin = bin of the smaller |yaw| of its two sides",
    "probe": "pair bin = bin of side b (the probe)",
}
#: How a template's |yaw| is summarised over its images with a known yaw.
TEMPLATE_YAW = ("median", "mean", "max")
CELL_RULE = "unordered: (bin of the smaller |yaw|, bin of the larger |yaw|)"
BEYOND_RULE = "the last bin is closed and also takes |yaw| beyond the last edge"


def check_edges(edges: Sequence[float]) -> tuple[float, ...]:
    """Edges as floats: at least two, from 0, strictly increasing and finite."""
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
    """``["[0,30)", "[30,60)", "[60,90]"]`` for the default edges (the last bin is closed)."""
    edges = check_edges(edges)
    out = [f"[{a:g},{b:g})" for a, b in pairwise(edges)]
    out[-1] = out[-1][:-1] + "]"
    return out


def yaw_bin(yaw, edges: Sequence[float] = DEFAULT_EDGES) -> np.ndarray:
    """Bin index of each |yaw| (degrees), -1 where yaw is NaN: int8 below 128 bins (a
    score table's bins are one byte a pair, not eight: IJB-C's 1:N has 69M pairs)."""
    edges = check_edges(edges)
    mag = np.abs(np.asarray(yaw, dtype=np.float64))
    idx = np.searchsorted(np.asarray(edges[1:-1]), mag, side="right")
    return np.where(np.isnan(mag), -1, idx).astype(np.int8 if len(edges) <= 128 else np.int32)


class PairBins(NamedTuple):
    """Per pair: each side's bin, the unordered cell (``lo <= hi``; -1 when a side has no
    bin) and the pair's bin under the rule (-1 when a side the rule reads has none)."""

    a: np.ndarray
    b: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    pair: np.ndarray

    @property
    def n_unbinned(self) -> int:
        return int(np.sum(self.pair < 0))


@dataclass(frozen=True)
class YawBinning:
    """|yaw| bin edges (``bins``, as protocol files name them), the rule that gives a pair
    one bin, and a template's yaw summary. Validated when built."""

    bins: tuple[float, ...] = DEFAULT_EDGES
    pair_rule: str = "max"
    template_yaw: str = "median"

    def __post_init__(self) -> None:
        object.__setattr__(self, "bins", check_edges(self.bins))
        if self.pair_rule not in PAIR_RULES:
            raise ConfigError(f"yaw.pair_rule must be one of {tuple(PAIR_RULES)}, got "
                              f"{self.pair_rule!r}")
        if self.template_yaw not in TEMPLATE_YAW:
            raise ConfigError(f"yaw.template_yaw must be one of {TEMPLATE_YAW}, got "
                              f"{self.template_yaw!r}")

    @property
    def labels(self) -> list[str]:
        return bin_labels(self.bins)

    @property
    def rule_doc(self) -> str:
        return PAIR_RULES[self.pair_rule]

    def bin_of(self, yaw) -> np.ndarray:
        return yaw_bin(yaw, self.bins)

    def pair_bin(self, bin_a: np.ndarray, bin_b: np.ndarray) -> np.ndarray:
        """One bin per pair from its sides' bins (integer arrays, -1 for none, as
        :func:`yaw_bin` gives them; the result keeps their dtype), by the rule."""
        bin_a, bin_b = np.asarray(bin_a), np.asarray(bin_b)
        if self.pair_rule == "probe":
            return bin_b
        out = np.maximum(bin_a, bin_b) if self.pair_rule == "max" else np.minimum(bin_a, bin_b)
        return np.where((bin_a < 0) | (bin_b < 0), -1, out).astype(out.dtype)

    def pairs(self, yaw_a, yaw_b) -> PairBins:
        """Bins of both sides, the unordered cell and the pair's bin."""
        ba, bb = self.bin_of(yaw_a), self.bin_of(yaw_b)
        unknown = (ba < 0) | (bb < 0)
        lo = np.where(unknown, -1, np.minimum(ba, bb))
        hi = np.where(unknown, -1, np.maximum(ba, bb))
        return PairBins(ba, bb, lo, hi, self.pair_bin(ba, bb))

    def template_yaws(self, samples: pd.DataFrame) -> pd.Series:
        """|yaw| per template (index: template id) by ``template_yaw``, over its images
        with a known yaw (NaN when none has one)."""
        mag = samples["yaw"].abs()
        return mag.groupby(samples["template"], sort=False).agg(self.template_yaw)

    def to_dict(self) -> dict:
        return {"bins": list(self.bins), "pair_rule": self.pair_rule,
                "template_yaw": self.template_yaw}
