"""Verification report from a score table: overall, per fold and per yaw bin, with CIs.

One plan, :class:`EvalPlan` (yaw binning, FAR targets, bootstrap, the protocol's metric
specs), built once from a protocol (or ``bench score``'s options), and one function,
:func:`evaluate_scores`, serve ``bench score``, ``bench run`` and ``bench compare``; its
output is JSON-ready (NaN becomes null when dumped with :func:`bench.fileio.dump_json`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import metrics as M
from .errors import ConfigError
from .metric_specs import MetricSpec, far_key, parse_metric, rank_key, tpir_key
from .yawbins import CELL_RULE, YawBinning

#: Reported by every run besides what its protocol asks for.
DEFAULT_FAR = ("0.1", "0.01", "0.001")
DEFAULT_RANKS = (1, 5, 10)
DEFAULT_FPIR = (0.1, 0.01)


@dataclass(frozen=True)
class EvalPlan:
    """How scores are summarised. ``far``: the TAR@FAR targets, the keys of ``tar_at_far``
    (as written for ``bench score``; a protocol's in their one spelling, see
    :func:`bench.metric_specs.far_key`). ``metrics`` and ``main``: the protocol's specs
    (empty and None for a plain score file)."""

    yaw: YawBinning = YawBinning()
    far: tuple[str, ...] = DEFAULT_FAR
    n_boot: int = 1000
    seed: int = 0
    level: float = 0.95
    min_cell_pairs: int = 1
    metrics: tuple[MetricSpec, ...] = ()
    main: MetricSpec | None = None

    def __post_init__(self):
        # two spellings of one FAR would be two keys of one number, and two FARs alike to
        # 6 digits one key of the intervals (tar@far=0.001): either misaligns the tables
        keys = [far_key(t) for t in self.far]
        for i, k in enumerate(keys):
            if k in keys[:i]:
                raise ConfigError(f"FAR targets {self.far[keys.index(k)]} and {self.far[i]} "
                                  f"are the same (to 6 digits: {k}): give each once")

    @classmethod
    def from_protocol(cls, protocol, n_boot: int = 1000, seed: int = 0) -> EvalPlan:
        specs = protocol.metric_specs
        far = {far_key(t) for t in DEFAULT_FAR}
        far |= {far_key(s.target) for s in specs if s.kind == "tar"}
        return cls(yaw=protocol.yaw, far=tuple(sorted(far, key=float, reverse=True)),
                   n_boot=n_boot, seed=seed, metrics=specs, main=protocol.main_metric)

    @property
    def far_values(self) -> tuple[float, ...]:
        return tuple(float(t) for t in self.far)

    @property
    def ranks(self) -> tuple[int, ...]:
        """CMC ranks a 1:N run reports: the defaults and any its protocol asks for."""
        asked = {s.target for s in self.metrics if s.kind == "rank"}
        return tuple(sorted(set(DEFAULT_RANKS) | asked))

    @property
    def fpir(self) -> tuple[float, ...]:
        asked = {s.target for s in self.metrics if s.kind == "tpir"}
        return tuple(sorted(set(DEFAULT_FPIR) | asked, reverse=True))

    @property
    def computed(self) -> dict[str, MetricSpec]:
        """Spec of every verification metric :func:`evaluate_scores` (and a paired
        comparison) reports, by key, in report order: accuracy, eer, auc, TAR@FAR."""
        names = ["accuracy", "eer", "auc", *(f"tar@far={t}" for t in self.far)]
        specs = [parse_metric(n, "verify") for n in names]
        return {s.key: s for s in specs}

    @property
    def computed_search(self) -> dict[str, MetricSpec]:
        """Spec of every 1:N metric a search run (and a paired 1:N comparison) reports,
        by key, in report order: rank-k, then TPIR@FPIR."""
        specs = [parse_metric(rank_key(k), "search") for k in self.ranks]
        specs += [parse_metric(tpir_key(t), "search") for t in self.fpir]
        return {s.key: s for s in specs}

    def bootstrap_spec(self) -> M.BootstrapSpec:
        return M.BootstrapSpec(self.n_boot, self.seed, self.level, self.far_values)

    def to_dict(self) -> dict:
        """The record results keep (``metrics.config``), keys in their committed order."""
        return {"bins": list(self.yaw.bins), "far": list(self.far),
                "pair_rule": self.yaw.pair_rule, "n_boot": self.n_boot, "seed": self.seed,
                "level": self.level, "min_cell_pairs": self.min_cell_pairs}

    def main_score(self, metrics: dict, identification: dict | None = None) -> dict:
        """The protocol's main score, its CI and how the CI was made."""
        spec = self.main
        if spec is None:
            raise ValueError("a plan without a protocol has no main score")
        low, high = spec.ci(metrics, identification)
        boot = spec.ci_block(metrics, identification)
        label = (f"{100 * boot.get('level', 0.95):.0f}% bootstrap over "
                 f"{boot.get('unit', 'subject')}s" if low is not None else None)
        return {"name": spec.key, "value": spec.compute(metrics, identification),
                "low": low, "high": high, "ci": label}


def subject_columns(df: pd.DataFrame):
    """A score table's ``subject_a`` and ``subject_b`` for the subject bootstrap (None,
    None without them)."""
    if {"subject_a", "subject_b"} <= set(df.columns):
        # as they are: the sampler reads each distinct id as text (no copy of every row)
        return df["subject_a"].to_numpy(), df["subject_b"].to_numpy()
    return None, None


def metrics_block(df: pd.DataFrame, plan: EvalPlan,
                  correct: np.ndarray | M.Decisions | None = None, with_ci: bool = True) -> dict:
    """AUC, EER, TAR@FAR (+ accuracy from per-pair correctness: the pooled fraction of a
    bool array, the mean over folds of :class:`~bench.metrics.Decisions` built with them)
    with bootstrap CIs.

    A block with one class only gets NaN metrics and a warning (never an exception), so a
    sparse yaw cell cannot stop a report.
    """
    scores = df["score"].to_numpy(np.float64)
    labels = df["label"].to_numpy().astype(bool)
    n_impostor = int(len(df) - labels.sum())
    # The smallest FAR this block can resolve: a TAR@FAR target below it allows less than
    # one false accept, so its TAR is the TAR at zero false accepts (tables mark it).
    out: dict = {"n_pairs": int(len(df)), "n_genuine": int(labels.sum()),
                 "far_floor": 1.0 / n_impostor if n_impostor else None}
    nan_far = {t: float("nan") for t in plan.far}
    decisions = M.as_decisions(correct)
    if labels.all() or not labels.any():
        warnings.warn(f"a block of {len(df)} pairs has a single class: metrics are NaN",
                      stacklevel=2)
        out.update(auc=float("nan"), eer=float("nan"), tar_at_far=nan_far,
                   accuracy=None if decisions is None or not len(df) else decisions.accuracy(),
                   ci=None)
        return out
    summary = M.roc_summary(scores, labels, plan.far_values)
    out.update(auc=summary["auc"], eer=summary["eer"], eer_threshold=summary["eer_threshold"],
               tar_at_far=dict(zip(plan.far, summary["tar_at_far"], strict=True)),
               tar_thresholds=dict(zip(plan.far, summary["tar_thresholds"], strict=True)))
    if decisions is not None:
        out["accuracy"] = decisions.accuracy()
    if with_ci and plan.n_boot > 0:
        sa, sb = subject_columns(df)
        boot = M.bootstrap_ci(scores, labels, sa, sb, plan.bootstrap_spec(), correct=decisions)
        out["ci"] = boot.as_dict()
    return out


def evaluate_scores(df: pd.DataFrame, plan: EvalPlan | None = None) -> dict:
    """Summarise a validated score table (see :mod:`bench.scores`).

    Keys: ``n_pairs``, ``n_genuine``, ``auc``, ``eer``, ``tar_at_far`` (keyed by the FAR as
    written; one ROC over every pair), ``ci``, ``accuracy`` (``mean``, ``std``, ``folds``;
    None without a fold column), ``tar_at_far_folds`` (TAR@FAR per fold's own ROC,
    ``mean``, ``std`` over folds; None without a fold column) and ``by_yaw`` (None without yaw columns): per pair bin and per bin-by-bin cell.
    """
    plan = plan or EvalPlan()
    correct = None
    accuracy = None
    if "fold" in df.columns and df["fold"].nunique() >= 2:
        fa = M.fold_accuracy(df["score"], df["label"], df["fold"])
        correct = M.accuracy_at_thresholds(df["score"], df["label"], df["fold"], fa)
        accuracy = {
            "mean": fa.mean, "std": fa.std, "std_kind": "population (ddof=0) over folds",
            "folds": [{"fold": _plain(f), "accuracy": float(a), "threshold": float(t)}
                      for f, a, t in zip(fa.folds, fa.accuracy, fa.thresholds, strict=True)],
        }
    # the interval is of the figure reported: the mean over folds, also of unequal size
    result = metrics_block(df, plan, None if correct is None else
                           M.Decisions.of(correct, df["fold"]))
    if result["auc"] < 0.5:  # NaN (one class) is warned about on its own
        warnings.warn(f"AUC {100 * result['auc']:.2f} % is below 50 %: these scores rank "
                      "impostors above genuine pairs (bench reads a higher score as more "
                      "alike: a score file of distances must be negated, score = -distance; "
                      "a run's model is worse than chance on this data)", stacklevel=2)
    result.pop("accuracy", None)
    result["accuracy"] = accuracy
    result["tar_at_far_folds"] = _tar_by_fold(df, plan) if accuracy is not None else None
    result["config"] = plan.to_dict()
    result["by_yaw"] = None
    if {"yaw_a", "yaw_b"} <= set(df.columns):
        result["by_yaw"] = _by_yaw(df, plan, correct)
    return result


def _tar_by_fold(df: pd.DataFrame, plan: EvalPlan) -> dict:
    """TAR@FAR of each fold's own ROC, then mean and std over folds: how IJB-A's splits are
    published (each split a protocol of its own), unlike the pooled ROC's one threshold.
    A fold with a single class is NaN and left out of the mean."""
    folds = []
    for fold, block in df.groupby("fold", sort=True):
        labels = block["label"].to_numpy().astype(bool)
        tar = [float("nan")] * len(plan.far) if labels.all() or not labels.any() else \
            M.roc_summary(block["score"].to_numpy(np.float64), labels,
                          plan.far_values)["tar_at_far"]
        folds.append({"fold": _plain(fold), "n_impostor": int((~labels).sum()),
                      "tar_at_far": dict(zip(plan.far, tar, strict=True))})
    values = np.array([list(f["tar_at_far"].values()) for f in folds], dtype=np.float64)
    with warnings.catch_warnings():  # an all-NaN column is NaN, as it should be
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
    return {"mean": dict(zip(plan.far, mean.tolist(), strict=True)),
            "std": dict(zip(plan.far, std.tolist(), strict=True)),
            "std_kind": "population (ddof=0) over folds", "folds": folds}


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def _by_yaw(df: pd.DataFrame, plan: EvalPlan, correct) -> dict:
    labels = plan.yaw.labels
    bins = plan.yaw.pairs(df["yaw_a"], df["yaw_b"])
    lo, hi, pair = bins.lo, bins.hi, bins.pair
    if bins.n_unbinned:
        warnings.warn(f"{bins.n_unbinned} pairs have no yaw bin (a side without yaw): they "
                      "count overall but in no yaw bin", stacklevel=2)
    by_bin, cells = {}, []
    # each block copies its rows: only of the columns a block's metrics read
    df = df[[c for c in ("score", "label", "subject_a", "subject_b") if c in df.columns]]
    for i, name in enumerate(labels):
        sel = pair == i
        if sel.sum() >= plan.min_cell_pairs:
            by_bin[name] = metrics_block(df[sel], plan, None if correct is None else correct[sel])
    for i in range(len(labels)):
        for j in range(i, len(labels)):
            sel = (lo == i) & (hi == j)
            if sel.sum() >= plan.min_cell_pairs:
                block = metrics_block(df[sel], plan, None if correct is None else correct[sel])
                cells.append({"a": labels[i], "b": labels[j], **block})
    return {"edges": list(plan.yaw.bins), "pair_rule": plan.yaw.pair_rule,
            "rule_doc": plan.yaw.rule_doc, "cell_rule": CELL_RULE,
            "bins": labels, "by_bin": by_bin, "cells": cells,
            "n_unbinned": bins.n_unbinned}
