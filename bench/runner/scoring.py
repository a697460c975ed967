"""Cosine scores of listed comparisons and 1:N score matrices from pooled features."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import metrics as M


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


def identification(eval_set, template_ids: np.ndarray, pooled: np.ndarray,
                   ranks=(1, 5, 10), fpir=(0.1, 0.01)) -> dict:
    """CMC and open-set TPIR@FPIR per split (gallery), then mean and std over splits."""
    per_split = []
    for fold in eval_set.folds:
        gal, prb = eval_set.gallery(fold), eval_set.probes(fold)
        g = pooled[_index(template_ids, gal["template"], "gallery")]
        p = pooled[_index(template_ids, prb["template"], "probe")]
        s = p @ g.T
        ps, gs = prb["subject"].to_numpy(), gal["subject"].to_numpy()
        rec = {"fold": fold, "n_gallery": len(gal), "n_probes": len(prb)}
        rec.update({f"rank{k}": float(v) for k, v in zip(ranks, M.cmc(s, ps, gs, ranks),
                                                        strict=True)})
        try:
            tpir, thr = M.tpir_at_fpir(s, ps, gs, fpir)
            rec.update({f"tpir@fpir={t:g}": float(v) for t, v in zip(fpir, tpir, strict=True)})
        except ValueError:  # closed-set split: no non-mated probes
            rec.update({f"tpir@fpir={t:g}": float("nan") for t in fpir})
        per_split.append(rec)
    keys = [k for k in per_split[0] if k.startswith(("rank", "tpir"))]
    summary = {k: {"mean": float(np.nanmean([r[k] for r in per_split])),
                   "std": float(np.nanstd([r[k] for r in per_split]))} for k in keys}
    return {"splits": per_split, "summary": summary,
            "std_kind": "population (ddof=0) over splits"}
