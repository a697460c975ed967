"""What a 1:N run does after extraction, at IJB-C's size: the CMC and TPIR@FPIR of every
split, their bootstrap CI over probe subjects, the probe x gallery score table, its
metrics with the subject bootstrap, and the score file. Each stage is the run's own
function (:mod:`bench.runner.scoring`, :func:`bench.metrics.identification_ci`,
:func:`bench.evaluation.evaluate_scores`, :func:`bench.scores.write_scores`) on random
unit features, so the figures are what a user with the real release waits for once the
features exist. The CI stage is timed alone: the per-probe ranks and scores it resamples
come from the one pass over each matrix that the first stage also makes (the run makes
it once for both), so that pass is made before it, untimed.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class SearchBenchConfig:
    #: IJB-C's galleries G1 and G2, and its mixed probe templates
    galleries: tuple[int, ...] = (1_772, 1_759)
    probes: int = 19_593
    subjects: int = 3_531
    dim: int = 512
    n_boot: int = 1000
    seed: int = 0


def _splits(cfg: SearchBenchConfig):
    from ..runner.scoring import SplitScores

    rng = np.random.default_rng(cfg.seed)
    names = np.array([f"s{i}" for i in range(cfg.subjects)], dtype=object)
    splits, frames, next_id = [], [], 0
    for fold, n_gallery in enumerate(cfg.galleries, 1):
        tables = []
        for n in (n_gallery, cfg.probes):
            subject = names[rng.choice(cfg.subjects, n, replace=n > cfg.subjects)]
            tables.append(pd.DataFrame({"template": [f"t{next_id + i}" for i in range(n)],
                                        "subject": subject}))
            next_id += n
        gallery, probes = tables
        feats = rng.standard_normal((n_gallery + cfg.probes, cfg.dim)).astype(np.float32)
        feats /= np.linalg.norm(feats, axis=1, keepdims=True)
        scores = (feats[n_gallery:] @ feats[:n_gallery].T).astype(np.float64)
        splits.append(SplitScores(fold, gallery, probes, scores))
        frames += tables
    templates = pd.concat(frames, ignore_index=True)
    templates["yaw"] = rng.uniform(-90, 90, len(templates))
    return splits, templates


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def run(cfg: SearchBenchConfig, work_dir: Path) -> list[dict]:
    from .. import metrics as M
    from ..evaluation import EvalPlan, evaluate_scores
    from ..protocols import load_protocol
    from ..runner.scoring import identification, search_score_table, split_probe_scores
    from ..scores import write_scores

    splits, templates = _splits(cfg)
    rows = sum(len(s.gallery) * len(s.probes) for s in splits)
    plan = EvalPlan.from_protocol(load_protocol("ijbc-search"), n_boot=cfg.n_boot,
                                  seed=cfg.seed)
    out = work_dir / "scores.csv.gz"
    searches = split_probe_scores(splits)

    def ident_ci(_):
        return M.identification_ci(searches, plan.ranks, plan.fpir, plan.bootstrap_spec())

    stages = [("identification (CMC, TPIR@FPIR)",
               lambda _: identification(splits, plan.ranks, plan.fpir)),
              (f"identification CI with {cfg.n_boot} probe-subject resamples", ident_ci),
              ("probe x gallery score table", lambda _: search_score_table(splits, templates)),
              (f"metrics with {cfg.n_boot} subject-bootstrap resamples",
               lambda table: evaluate_scores(table, plan)),
              ("write scores.csv.gz", lambda table: write_scores(table, out))]
    records, table = [], None
    for task, stage in stages:
        t = time.perf_counter()
        value = stage(table)
        seconds = time.perf_counter() - t
        if isinstance(value, pd.DataFrame):
            table = value
        records.append({"task": task, "galleries": "+".join(map(str, cfg.galleries)),
                        "probes": cfg.probes, "score_rows": rows, "seconds": seconds,
                        "peak_rss_gib_so_far": _peak_rss_gib(),
                        "file_mb": out.stat().st_size / 1e6 if out.is_file() else None})
    return records
