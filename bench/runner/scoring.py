"""Cosine scores of listed comparisons and 1:N score matrices from pooled features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import metrics as M
from ..dtypes import index_dtype
from ..metric_specs import rank_key, tpir_key


def _index(ids: np.ndarray, wanted, what: str) -> np.ndarray:
    wanted = np.asarray(wanted)
    pos = pd.Index(ids).get_indexer(wanted)
    if (pos < 0).any():
        raise KeyError(f"{what}: template {wanted[pos < 0][0]!r} has no feature")
    return pos


def score_comparisons(comparisons: pd.DataFrame, template_ids: np.ndarray, pooled: np.ndarray,
                      templates: pd.DataFrame, chunk: int = 1 << 20) -> pd.DataFrame:
    """One score row per comparison (the score-file format of :mod:`bench.scores`).

    ``pooled`` rows are L2-normalised, so the dot product is the cosine similarity. Each
    side's template ids are hashed once: the feature rows and the metadata of the score
    rows are both found through its distinct ids.
    """
    sides = []
    for side in ("a", "b"):
        idx, ids = pd.factorize(comparisons[side].to_numpy())
        sides.append((np.asarray(ids), idx))
    (a_ids, a_idx), (b_ids, b_idx) = sides
    ia = _index(template_ids, a_ids, "comparison side a")[a_idx]
    ib = _index(template_ids, b_ids, "comparison side b")[b_idx]
    scores = np.empty(len(comparisons), dtype=np.float64)
    for s in range(0, len(comparisons), chunk):
        fa, fb = pooled[ia[s:s + chunk]], pooled[ib[s:s + chunk]]
        scores[s:s + chunk] = np.einsum("nd,nd->n", fa, fb, dtype=np.float64)
    return _side_rows(scores, comparisons["label"].to_numpy(np.int8),
                      comparisons["fold"].to_numpy(), *sides, templates)


def _side_rows(scores: np.ndarray, label: np.ndarray, fold: np.ndarray,
               a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray],
               templates: pd.DataFrame) -> pd.DataFrame:
    """Score-file rows whose side a in row k is template ``ids[idx[k]]`` of ``a = (ids,
    idx)`` (likewise b): each template's subject and yaw are looked up once, then gathered
    by position, since hashing every row's template id (69M in IJB-C's 1:N) is slow and
    holds several copies of the table."""
    meta = templates.set_index("template")
    (a_ids, a_idx), (b_ids, b_idx) = a, b
    rows_a, rows_b = meta.loc[a_ids], meta.loc[b_ids]
    return pd.DataFrame({
        "score": scores, "label": label, "fold": fold,
        "subject_a": rows_a["subject"].to_numpy()[a_idx],
        "subject_b": rows_b["subject"].to_numpy()[b_idx],
        "yaw_a": rows_a["yaw"].to_numpy()[a_idx],
        "yaw_b": rows_b["yaw"].to_numpy()[b_idx],
        "a": a_ids[a_idx], "b": b_ids[b_idx],
    }, copy=False)


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
                   spec: M.BootstrapSpec | None = None,
                   searches: list[M.ProbeScores] | None = None) -> dict:
    """CMC and open-set TPIR@FPIR per split (gallery), then mean and std over splits.

    With ``spec`` and ``spec.n_boot > 0`` also ``ci``: the percentile CI of each mean over
    probe subjects (:func:`bench.metrics.identification_ci`), in the shape of a 1:1
    block's ``ci`` (unit, n_boot, level, seed, metrics -> estimate, low, high). Each
    matrix is read once, into per-probe ranks and scores that serve both (``searches``:
    those of :func:`split_probe_scores`, when the caller keeps them).
    """
    searches = split_probe_scores(splits) if searches is None else searches
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
    """Every probe x gallery comparison as score-file rows (label = same subject), split
    after split, probes in order, each against the gallery in order."""
    sizes = [len(sp.probes) * len(sp.gallery) for sp in splits]
    probes = np.concatenate([sp.probes["template"].to_numpy() for sp in splits])
    gallery = np.concatenate([sp.gallery["template"].to_numpy() for sp in splits])
    # subjects as codes shared by both sides; an unknown subject (-1) matches nothing
    codes, _ = pd.factorize(np.concatenate([sp.probes["subject"].to_numpy() for sp in splits]
                                           + [sp.gallery["subject"].to_numpy() for sp in splits]))
    probe_subject, gallery_subject = codes[:probes.size], codes[probes.size:]
    index = index_dtype(max(probes.size, gallery.size))
    a_idx = np.empty(sum(sizes), dtype=index)
    b_idx = np.empty(sum(sizes), dtype=index)
    row = p0 = g0 = 0
    for sp, size in zip(splits, sizes, strict=True):
        n_p, n_g = len(sp.probes), len(sp.gallery)
        a_idx[row:row + size] = np.repeat(np.arange(p0, p0 + n_p, dtype=index), n_g)
        b_idx[row:row + size] = np.tile(np.arange(g0, g0 + n_g, dtype=index), n_p)
        row, p0, g0 = row + size, p0 + n_p, g0 + n_g
    a_subject, b_subject = probe_subject[a_idx], gallery_subject[b_idx]
    label = ((a_subject == b_subject) & (a_subject >= 0)).astype(np.int8)
    del a_subject, b_subject
    scores = np.concatenate([sp.scores.ravel() for sp in splits]).astype(np.float64, copy=False)
    # the smallest integer type: one per row (69M in IJB-C's 1:N), eight bytes as int64
    fold = np.repeat(pd.to_numeric(pd.Series([sp.fold for sp in splits]),
                                   downcast="integer").to_numpy(), sizes)
    return _side_rows(scores, label, fold, (probes, a_idx), (gallery, b_idx), templates)
