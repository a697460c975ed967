"""PNG plots from score tables: per-yaw ROC (log FAR) and the bin-by-bin matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import metrics as M
from ..fileio import atomic_write
from ..metric_specs import MetricSpec
from ..yawbins import YawBinning


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return path


def _roc_in(ax, df: pd.DataFrame, label: str, **style) -> bool:
    """Draw one ROC; False (nothing drawn) when the pairs hold one class only."""
    y = df["label"].to_numpy().astype(bool)
    if y.all() or not y.any():
        return False
    r = M.roc_curve(df["score"].to_numpy(), y)
    floor = 1.0 / max(r.n_impostor, 1)
    ax.plot(np.maximum(r.fpr, floor), r.tpr, label=label, **style)
    return True


def _too_small(n_pairs: int) -> str:
    return f"{n_pairs} pairs, one class only: too few for a ROC"


def _format_roc_axes(ax, title: str) -> None:
    ax.set_xscale("log")
    if not ax.lines:  # no curve: a FAR axis of 1..10 would say nothing true
        ax.set_xlim(1e-3, 1)
    ax.set_xlabel("FAR (false accept rate)")
    ax.set_ylabel("TAR (true accept rate)")
    ax.set_ylim(0, 1.01)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)


def _bin_selections(df: pd.DataFrame, yaw: YawBinning) -> list[tuple[str, np.ndarray]]:
    """(name, row mask) for all pairs and for each yaw bin that holds any pair: a bin with
    no pairs gets no curve and no panel."""
    out = [("all", np.ones(len(df), bool))]
    if {"yaw_a", "yaw_b"} <= set(df.columns):
        pair = yaw.pairs(df["yaw_a"], df["yaw_b"]).pair
        out += [(f"|yaw| {name}", pair == i) for i, name in enumerate(yaw.labels)
                if (pair == i).any()]
    return out


def roc_by_yaw(df: pd.DataFrame, yaw: YawBinning, path: Path, title: str = "") -> Path:
    """All pairs plus one ROC per pair |yaw| bin on one log-FAR figure; a bin too small for
    a curve is named in the legend."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for k, (name, sel) in enumerate(_bin_selections(df, yaw)):
        n = int(sel.sum())
        style = {"color": "black", "lw": 2} if k == 0 else {}
        if not _roc_in(ax, df[sel], f"{name} ({n})", **style):
            ax.plot([], [], " ", label=f"{name}: {_too_small(n)}")
    _format_roc_axes(ax, title or f"ROC per yaw bin (pair bin: {yaw.pair_rule})")
    return _save(fig, path)


def cell_heatmap(by_yaw: dict, metric: MetricSpec, path: Path, title: str = "") -> Path:
    """Bin-by-bin matrix of ``metric`` (read from each cell's block by its spec)."""
    plt = _plt()
    names = by_yaw["bins"]
    mat = np.full((len(names), len(names)), np.nan)
    for cell in by_yaw["cells"]:
        i, j = names.index(cell["a"]), names.index(cell["b"])
        v = metric.compute(cell)
        mat[i, j] = mat[j, i] = np.nan if v is None else v
    fig, ax = plt.subplots(figsize=(4.8, 4))
    im = ax.imshow(100 * mat, cmap="viridis", vmin=np.nanmin(100 * mat) if np.isfinite(mat).any() else 0,
                   vmax=100 if metric.higher_is_better else None)
    for i in range(len(names)):
        for j in range(len(names)):
            if np.isfinite(mat[i, j]):
                ax.text(j, i, f"{100 * mat[i, j]:.1f}", ha="center", va="center", color="w")
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("|yaw| of one side")
    ax.set_ylabel("|yaw| of the other side")
    ax.set_title(title or f"{metric.key} (%) per yaw cell")
    fig.colorbar(im, ax=ax)
    return _save(fig, path)


def roc_overlay(tables: dict[str, pd.DataFrame], yaw: YawBinning, path: Path,
                title: str = "") -> Path:
    """One panel per yaw bin that holds pairs (plus all pairs), every system's ROC overlaid.

    The systems were scored on identical comparisons, so the first one's bins are all's."""
    plt = _plt()
    first = next(iter(tables.values()))
    panels = [(name, sel) for name, sel in _bin_selections(first, yaw)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4), squeeze=False)
    for k, (name, sel) in enumerate(panels):
        ax = axes[0, k]
        drawn = [_roc_in(ax, df[sel], system) for system, df in tables.items()]
        if not any(drawn):
            ax.text(0.5, 0.5, _too_small(int(sel.sum())), ha="center", va="center",
                    transform=ax.transAxes, wrap=True)
        _format_roc_axes(ax, name)
    if title:
        fig.suptitle(title)
    return _save(fig, path)
