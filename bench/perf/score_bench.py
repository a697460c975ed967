"""The whole ``bench score`` job against pandas + scikit-learn, from 10^4 to IJB-C size.

Both sides run as fresh processes on the same file, so the figures are what a user waits
for: interpreter start, reading the CSV, the metrics (and for ``bench score`` its
default 1,000-replicate bootstrap CIs). The baseline computes point estimates only
(``read_csv`` + ``roc_curve`` + ``auc``), which is what people run today.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: IJB-C 1:1: 15,658,489 pairs of which 19,557 genuine
IJBC_PAIRS, IJBC_GENUINE = 15_658_489, 19_557

_BASELINE = """
import sys
import pandas as pd
from sklearn.metrics import auc, roc_curve
df = pd.read_csv(sys.argv[1])
fpr, tpr, _ = roc_curve(df["label"].to_numpy(), df["score"].to_numpy())
print(auc(fpr, tpr))
"""


@dataclass(frozen=True)
class ScoreBenchConfig:
    sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000, 4_000_000, IJBC_PAIRS)
    genuine_fraction: float = IJBC_GENUINE / IJBC_PAIRS
    n_boot: int = 1000
    #: sizes run again with subject_a/subject_b columns (the subject bootstrap)
    subject_sizes: tuple[int, ...] = (IJBC_PAIRS,)
    subjects: int = 3_531   # IJB-C's
    seed: int = 0


def write_score_file(path: Path, n: int, genuine_fraction: float, subjects: int = 0,
                     seed: int = 0) -> Path:
    """A score file shaped like IJB-C's: float32-precision cosine-like scores with ties,
    ``score,label`` (and subject ids when ``subjects``), written as ``bench`` writes them."""
    rng = np.random.default_rng(seed)
    n_gen = max(1, round(n * genuine_fraction))
    y = np.zeros(n, dtype=np.int8)
    y[rng.choice(n, n_gen, replace=False)] = 1
    s = np.tanh(0.3 * (rng.normal(size=n) + 3.0 * y)).astype(np.float32)
    cols = {"score": s, "label": y}
    if subjects:
        a = rng.integers(0, subjects, n)
        b = np.where(y == 1, a, (a + rng.integers(1, subjects, n)) % subjects)
        cols |= {"subject_a": a, "subject_b": b}
    pd.DataFrame(cols).to_csv(path, index=False, float_format="%.6f")
    return path


def _timed_process(args: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} ... failed:\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def run(cfg: ScoreBenchConfig, work_dir: Path) -> list[dict]:
    records = []
    runs = [(n, 0) for n in cfg.sizes] + [(n, cfg.subjects) for n in cfg.subject_sizes]
    for n, subjects in runs:
        path = write_score_file(work_dir / f"scores-{n}.csv", n, cfg.genuine_fraction,
                                subjects, cfg.seed)
        ours_s, out = _timed_process([sys.executable, "-m", "bench", "score", str(path),
                                      "--json", "--n-boot", str(cfg.n_boot),
                                      "--seed", str(cfg.seed)])
        result = json.loads(out)
        base_s, base_out = _timed_process([sys.executable, "-c", _BASELINE, str(path)])
        ci = (result.get("ci") or {}).get("metrics", {}).get("auc", {})
        records.append({
            "pairs": n, "genuine": int(result["n_genuine"]), "subjects": subjects,
            "file_mb": round(path.stat().st_size / 2**20, 1),
            "bench_score_s": ours_s, "n_boot": cfg.n_boot,
            "ci_unit": (result.get("ci") or {}).get("unit", ""),
            "pandas_sklearn_s": base_s, "ratio": ours_s / base_s,
            "same_auc": bool(abs(float(base_out) - result["auc"]) < 1e-12),
            "auc": result["auc"], "auc_low": ci.get("low"), "auc_high": ci.get("high"),
        })
        path.unlink()
    return records
