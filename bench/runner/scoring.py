"""Cosine scores of listed comparisons and 1:N score matrices from pooled features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import metrics as M
from ..metric_specs import rank_key, tpir_key


def _index(ids: np.ndarray, wanted: pd.Series, what: str) -> np.ndarray:
    pos = pd.Index(ids).get_indexer(wanted.to_numpy())
    if (pos < 0).any():
        raise KeyError(f"{what}: template {wanted.to_numpy()[pos < 0][0]!r} has no feature")
    return pos


def score_comparisons(comparisons: pd.DataFrame, template_ids: np.ndarray, pooled: np.ndarray,
                      templates: pd.DataFrame, chunk: int = 1 << 20) -> pd.DataFrame:
    """One score row per comparison (the score-file format of :mod:`bench.scores`).

    ``pooled`` rows are L2-normalised, so the dot product is the cosine similarity.
    """
    ia = _index(template_ids, comparisons["a"], "comparison side a")
    ib = _index(template_ids, comparisons["b"], "comparison side b")
    scores = np.empty(len(comparisons), dtype=np.float64)
    for s in range(0, len(comparisons), chunk):
        fa, fb = pooled[ia[s:s + chunk]], pooled[ib[s:s + chunk]]
        scores[s:s + chunk] = np.einsum("nd,nd->n", fa, fb, dtype=np.float64)
    return score_rows(comparisons, scores, templates)


def score_rows(comparisons: pd.DataFrame, scores: np.ndarray,
               templates: pd.DataFrame) -> pd.DataFrame:
    """Score-file rows: each comparison's score, label, fold and both sides' metadata."""
    meta = templates.set_index("template")
    return pd.DataFrame({
        "score": scores,
        "label": comparisons["label"].to_numpy(np.int8),
        "fold": comparisons["fold"].to_numpy(),
        "subject_a": meta.loc[comparisons["a"], "subject"].to_numpy(),
        "subject_b": meta.loc[comparisons["b"], "subject"].to_numpy(),
        "yaw_a": meta.loc[comparisons["a"], "yaw"].to_numpy(),
        "yaw_b": meta.loc[comparisons["b"], "yaw"].to_numpy(),
        "a": comparisons["a"].to_numpy(),
        "b": comparisons["b"].to_numpy(),
    })


@dataclass
class SplitScores:
    """One 1:N split: its gallery and probe templates and the (P, G) cosine matrix."""

    fold: int
    gallery: pd.DataFrame
    probes: pd.DataFrame
    scores: np.ndarray


def split_scores(eval_set, template_ids: np.ndarray, pooled: np.ndarray) -> list[SplitScores]:
    """Probe x gallery score matrices of every split, computed once for all consumers."""
    out = []
    for fold in eval_set.folds:
        gal, prb = eval_set.gallery(fold), eval_set.probes(fold)
        g = pooled[_index(template_ids, gal["template"], "gallery")]
        p = pooled[_index(template_ids, prb["template"], "probe")]
        out.append(SplitScores(fold, gal, prb, (p @ g.T).astype(np.float64)))
    return out


def split_probe_scores(splits: list[SplitScores]) -> list[M.ProbeScores]:
    """Each split's per-probe mate rank, mate score and best non-mate score: the one pass
    over its matrix that every 1:N metric and its bootstrap need."""
    return [M.probe_scores(sp.scores, sp.probes["subject"].to_numpy(),
                           sp.gallery["subject"].to_numpy()) for sp in splits]


def identification(splits: list[SplitScores], ranks=(1, 5, 10), fpir=(0.1, 0.01),
                   spec: M.BootstrapSpec | None = None) -> dict:
    """CMC and open-set TPIR@FPIR per split (gallery), then mean and std over splits.

    With ``spec`` and ``spec.n_boot > 0`` also ``ci``: the percentile CI of each mean over
    probe subjects (:func:`bench.metrics.identification_ci`), in the shape of a 1:1
    block's ``ci`` (unit, n_boot, level, seed, metrics -> estimate, low, high). Each
    matrix is read once, into per-probe ranks and scores that serve both.
    """
    searches = split_probe_scores(splits)
    per_split = []
    for sp, probes in zip(splits, searches, strict=True):
        rec = {"fold": sp.fold, "n_gallery": len(sp.gallery), "n_probes": len(sp.probes)}
        rec.update({rank_key(k): float(v)
                    for k, v in zip(ranks, M.cmc_rates(probes, ranks)[0], strict=True)})
        # NaN on a closed-set split (no non-mated probes): it has no TPIR
        rec.update({tpir_key(t): float(v)
                    for t, v in zip(fpir, M.tpir_rates(probes, fpir)[0][0], strict=True)})
        per_split.append(rec)
    keys = [k for k in per_split[0] if k.startswith(("rank", "tpir"))]
    summary = {k: {"mean": float(np.nanmean([r[k] for r in per_split])),
                   "std": float(np.nanstd([r[k] for r in per_split]))} for k in keys}
    out = {"splits": per_split, "summary": summary,
           "std_kind": "population (ddof=0) over splits"}
    if spec is not None and spec.n_boot > 0:
        out["ci"] = M.identification_ci(searches, ranks, fpir, spec).as_dict()
    return out


def search_score_table(splits: list[SplitScores], templates: pd.DataFrame) -> pd.DataFrame:
    """Every probe x gallery comparison as score-file rows (label = same subject)."""
    frames = []
    for sp in splits:
        n_g, n_p = len(sp.gallery), len(sp.probes)
        same = (np.repeat(sp.probes["subject"].to_numpy(), n_g)
                == np.tile(sp.gallery["subject"].to_numpy(), n_p))
        comps = pd.DataFrame({"a": np.repeat(sp.probes["template"].to_numpy(), n_g),
                              "b": np.tile(sp.gallery["template"].to_numpy(), n_p),
                              "label": same.astype(np.int8), "fold": sp.fold})
        frames.append(score_rows(comps, sp.scores.ravel(), templates))
    return pd.concat(frames, ignore_index=True)
