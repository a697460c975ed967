"""Plots read the plan's yaw binning: no empty panels, and a bin too small for a curve
says so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.report import plots
from bench.yawbins import YawBinning


@pytest.fixture
def figures(monkeypatch):
    kept = []

    def keep(fig, path):
        kept.append(fig)
        return path

    monkeypatch.setattr(plots, "_save", keep)
    yield kept
    import matplotlib.pyplot as plt

    for fig in kept:
        plt.close(fig)


def _scores() -> pd.DataFrame:
    """Frontal-profile pairs ([60,90] under max) and two genuine-only frontal pairs
    ([0,30)); no pair in [30,60)."""
    rng = np.random.default_rng(0)
    n = 40
    label = np.tile([1, 0], n // 2)
    return pd.DataFrame({
        "score": np.r_[rng.normal(label, 0.5), [0.9, 0.8]],
        "label": np.r_[label, [1, 1]],
        "yaw_a": np.r_[np.zeros(n), [5.0, 10.0]],
        "yaw_b": np.r_[np.full(n, 80.0), [-5.0, 0.0]]})


def test_roc_overlay_draws_no_panel_for_an_empty_bin(figures, tmp_path):
    """Bug: a bin without pairs was an empty panel with a 1..10 FAR axis."""
    df = _scores()
    plots.roc_overlay({"naive": df, "retrain": df}, YawBinning(), tmp_path / "x.png")
    axes = figures[0].axes
    assert [ax.get_title() for ax in axes] == ["all", "|yaw| [0,30)", "|yaw| [60,90]"]
    small = axes[1]
    assert not small.lines and "too few for a ROC" in small.texts[0].get_text()
    assert small.get_xlim()[1] <= 1  # no 1..10 FAR axis
    assert len(axes[2].lines) == 2


def test_roc_by_yaw_names_a_bin_too_small_for_a_curve(figures, tmp_path):
    plots.roc_by_yaw(_scores(), YawBinning(), tmp_path / "x.png")
    labels = [t.get_text() for t in figures[0].axes[0].get_legend().get_texts()]
    assert labels[0].startswith("all (42)")
    assert any(t.startswith("|yaw| [0,30): 2 pairs, one class only") for t in labels)
    assert not any("[30,60)" in t for t in labels)
