"""Assigning images and pairs to |yaw| bins (or bins of any scalar condition)."""

from __future__ import annotations

import warnings

import numpy as np

DEFAULT_YAW_EDGES = (0.0, 30.0, 60.0, 90.0)
PAIR_RULES = ("max", "a", "b")


def check_edges(edges) -> np.ndarray:
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) <= 0) or not np.all(np.isfinite(e)):
        raise ValueError(f"bin edges must be >= 2 increasing finite numbers, got {edges!r}")
    return e


def bin_labels(edges) -> list[str]:
    e = check_edges(edges)
    out = [f"[{a:g},{b:g})" for a, b in zip(e[:-2], e[1:-1], strict=True)]
    return out + [f"[{e[-2]:g},{e[-1]:g}]"]


def assign_bins(values, edges) -> np.ndarray:
    """(n,) int bin index of |value| in [e0,e1), ..., [e_{k-1}, e_k]; -1 outside or NaN."""
    e = check_edges(edges)
    v = np.abs(np.asarray(values, dtype=np.float64))
    idx = np.searchsorted(e, v, side="right") - 1
    idx = np.where(v == e[-1], e.size - 2, idx)  # the last bin is closed
    idx = np.where(np.isnan(v) | (v < e[0]) | (v > e[-1]), -1, idx)
    return idx.astype(np.int64)


def pair_bins(yaw_a, yaw_b, edges, rule: str = "max"):
    """Bins of both sides and of the pair.

    Returns ``(cell_lo, cell_hi, pair_bin)``: the two sides' bins sorted (the unordered
    bin-by-bin cell) and the pair's bin under ``rule``: "max" = the side with the larger
    |yaw| (a pair is as hard as its most turned face), "a"/"b" = that side (e.g. CFP-FP's
    profile side b). -1 marks a side outside the edges or without yaw.
    """
    if rule not in PAIR_RULES:
        raise ValueError(f"pair rule must be one of {PAIR_RULES}, got {rule!r}")
    ba, bb = assign_bins(yaw_a, edges), assign_bins(yaw_b, edges)
    lo, hi = np.minimum(ba, bb), np.maximum(ba, bb)
    lo = np.where((ba < 0) | (bb < 0), -1, lo)
    hi = np.where((ba < 0) | (bb < 0), -1, hi)
    pair = {"max": hi, "a": ba, "b": bb}[rule]
    n_out = int(np.sum((ba < 0) | (bb < 0)))
    if n_out:
        warnings.warn(f"{n_out} pairs have a side without yaw or outside the bin edges; "
                      "they count overall but in no yaw bin", stacklevel=2)
    return lo, hi, pair
