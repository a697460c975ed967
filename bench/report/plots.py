"""PNG plots from score tables: per-yaw ROC (log FAR) and the bin-by-bin matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import metrics as M
from ..fileio import atomic_write


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


def _roc_in(ax, df: pd.DataFrame, label: str, **style) -> None:
    y = df["label"].to_numpy().astype(bool)
    if y.all() or not y.any():
        return
    r = M.roc_curve(df["score"].to_numpy(), y)
    floor = 1.0 / max(r.n_impostor, 1)
    ax.plot(np.maximum(r.fpr, floor), r.tpr, label=label, **style)


def _format_roc_axes(ax, title: str) -> None:
    ax.set_xscale("log")
    ax.set_xlabel("FAR (false accept rate)")
    ax.set_ylabel("TAR (true accept rate)")
    ax.set_ylim(0, 1.01)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)


def roc_by_yaw(df: pd.DataFrame, edges, rule: str, path: Path, title: str = "") -> Path:
    """All pairs plus one ROC per pair |yaw| bin on one log-FAR figure."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    _roc_in(ax, df, f"all ({len(df)})", color="black", lw=2)
    if {"yaw_a", "yaw_b"} <= set(df.columns):
        _, _, pair = M.pair_bins(df["yaw_a"], df["yaw_b"], edges, rule)
        for i, name in enumerate(M.bin_labels(edges)):
            sel = pair == i
            if sel.any():
                _roc_in(ax, df[sel], f"|yaw| {name} ({int(sel.sum())})")
    _format_roc_axes(ax, title or f"ROC per yaw bin (pair bin: {rule})")
    return _save(fig, path)


def cell_heatmap(by_yaw: dict, metric: str, path: Path, title: str = "") -> Path:
    """Bin-by-bin matrix of ``metric`` ("accuracy" or "tar@far=<t>" or "eer")."""
    plt = _plt()
    names = by_yaw["bins"]
    mat = np.full((len(names), len(names)), np.nan)
    for cell in by_yaw["cells"]:
        i, j = names.index(cell["a"]), names.index(cell["b"])
        v = _cell_value(cell, metric)
        mat[i, j] = mat[j, i] = np.nan if v is None else v
    fig, ax = plt.subplots(figsize=(4.8, 4))
    im = ax.imshow(100 * mat, cmap="viridis", vmin=np.nanmin(100 * mat) if np.isfinite(mat).any() else 0,
                   vmax=100 if metric != "eer" else None)
    for i in range(len(names)):
        for j in range(len(names)):
            if np.isfinite(mat[i, j]):
                ax.text(j, i, f"{100 * mat[i, j]:.1f}", ha="center", va="center", color="w")
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("|yaw| of one side")
    ax.set_ylabel("|yaw| of the other side")
    ax.set_title(title or f"{metric} (%) per yaw cell")
    fig.colorbar(im, ax=ax)
    return _save(fig, path)


def _cell_value(cell: dict, metric: str):
    if metric.startswith("tar@far="):
        return cell["tar_at_far"].get(metric.split("=", 1)[1])
    return cell.get(metric)


def roc_overlay(tables: dict[str, pd.DataFrame], edges, rule: str, path: Path,
                title: str = "") -> Path:
    """One panel per yaw bin (plus all pairs), every system's ROC overlaid."""
    plt = _plt()
    names = ["all"] + M.bin_labels(edges)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4), squeeze=False)
    for system, df in tables.items():
        _, _, pair = M.pair_bins(df["yaw_a"], df["yaw_b"], edges, rule)
        for k in range(len(names)):
            sel = np.ones(len(df), bool) if k == 0 else pair == k - 1
            if sel.any():
                _roc_in(axes[0, k], df[sel], system)
    for k, name in enumerate(names):
        _format_roc_axes(axes[0, k], name if k == 0 else f"|yaw| {name}")
    if title:
        fig.suptitle(title)
    return _save(fig, path)
