"""Per-comparison score files: the lasting artifact every metric, plot and leaderboard reads.

Format: CSV (optionally ``.csv.gz``) with a header. Required columns ``score`` (float,
higher = more similar) and ``label`` (1 genuine, 0 impostor); optional ``fold``,
``subject_a``, ``subject_b``, ``yaw_a``, ``yaw_b``; any other column is metadata, kept.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError
from .fileio import atomic_write

REQUIRED = ("score", "label")
OPTIONAL = ("fold", "subject_a", "subject_b", "yaw_a", "yaw_b")
NUMERIC = ("score", "yaw_a", "yaw_b")


def _line_text(path: Path, line: int) -> str | None:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            for i, text in enumerate(f, start=1):
                if i == line:
                    return text
    except OSError:
        return None
    return None


def _fail(path: Path, row: int, message: str):
    line = row + 2  # header is line 1
    raise DataError(message, path, line, _line_text(path, line))


def read_scores(path: str | Path) -> pd.DataFrame:
    """Read and validate a score file; errors name the file and the 1-based line."""
    path = Path(path)
    if not path.is_file():
        raise DataError("score file not found", path)
    try:
        df = pd.read_csv(path, dtype={"subject_a": str, "subject_b": str}, keep_default_na=True)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"cannot parse as CSV: {exc}", path) from None
    except pd.errors.EmptyDataError:
        raise DataError("empty file (expected a header with score,label)", path) from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise DataError(f"missing required column(s) {', '.join(missing)}; header has "
                        f"{', '.join(map(str, df.columns))}", path, 1)
    if df.empty:
        raise DataError("no score rows", path)
    for col in [c for c in NUMERIC if c in df.columns]:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() if col == "score" else (values.isna() & df[col].notna())
        if col == "score":
            bad |= ~np.isfinite(values.fillna(0.0))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            _fail(path, row, f"column {col!r}: {str(df[col].iloc[row])!r} is not a finite number")
        df[col] = values.astype(np.float64)
    labels = pd.to_numeric(df["label"], errors="coerce")
    bad = ~labels.isin([0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        _fail(path, row, f"column 'label': {str(df['label'].iloc[row])!r} is not 0 or 1")
    df["label"] = labels.astype(np.int8)
    if df["label"].nunique() < 2:
        raise DataError(f"all {len(df)} pairs have label {int(df['label'].iloc[0])}: "
                        "verification metrics need genuine and impostor pairs", path)
    if "fold" in df.columns and df["fold"].isna().any():
        _fail(path, int(np.flatnonzero(df["fold"].isna().to_numpy())[0]), "column 'fold' is empty")
    return df


def write_scores(df: pd.DataFrame, path: str | Path) -> Path:
    """Write atomically; required columns first, then the optional ones, then the rest."""
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"score frame lacks {missing}")
    first = [c for c in (*REQUIRED, *OPTIONAL) if c in df.columns]
    ordered = df[first + [c for c in df.columns if c not in first]]
    path = Path(path)
    with atomic_write(path) as f:
        ordered.to_csv(f, index=False, quoting=csv.QUOTE_MINIMAL, float_format="%.9g")
    return path


def example_scores(n_subjects: int = 500, n_folds: int = 10, pairs_per_fold: int = 350,
                   seed: int = 0) -> pd.DataFrame:
    """A CFP-FP-like score table with a built-in pose gap, for demos and docs.

    Each subject has 10 frontal images (|yaw| < 10) and 4 profiles (|yaw| 60..90); per fold,
    identity-disjoint, equal numbers of genuine and impostor frontal-frontal and
    frontal-profile pairs. Scores are cosine-like similarities whose genuine mean drops and
    spread grows with the larger |yaw| of the pair, the effect DREAM targets.
    """
    if n_subjects < 2 * n_folds:
        raise ValueError(f"need at least {2 * n_folds} subjects for {n_folds} folds")
    rng = np.random.default_rng(seed)
    subjects = np.array([f"{i + 1:03d}" for i in range(n_subjects)])
    fold_of = np.repeat(np.arange(1, n_folds + 1), int(np.ceil(n_subjects / n_folds)))[:n_subjects]
    rows = []
    for fold in range(1, n_folds + 1):
        subj = subjects[fold_of == fold]
        for kind in ("FF", "FP"):
            n = pairs_per_fold // 2  # per protocol (FF, FP) and label, as CFP splits
            a = rng.choice(subj, n)
            b_gen = a
            b_imp = rng.choice(subj, n)
            clash = b_imp == a
            b_imp[clash] = np.roll(subj, 1)[np.searchsorted(subj, a[clash])]
            for label, b in ((1, b_gen), (0, b_imp)):
                ya = rng.uniform(-10, 10, n)
                yb = rng.uniform(-10, 10, n) if kind == "FF" else rng.choice([-1, 1], n) * rng.uniform(60, 90, n)
                hard = np.maximum(np.abs(ya), np.abs(yb)) / 90.0
                if label:
                    score = rng.normal(0.62 - 0.22 * hard, 0.09 + 0.05 * hard)
                else:
                    score = rng.normal(0.05 + 0.05 * hard, 0.08)
                rows.append(pd.DataFrame({
                    "score": np.clip(score, -1, 1), "label": label, "fold": fold,
                    "subject_a": a, "subject_b": b, "yaw_a": ya.round(2), "yaw_b": yb.round(2),
                    "protocol": kind}))
    return pd.concat(rows, ignore_index=True)
