"""Per-comparison score files: the lasting artifact every metric, plot and leaderboard reads.

Format: CSV (optionally ``.csv.gz``) with a header. Required columns ``score`` (float,
higher = more similar) and ``label`` (1 genuine, 0 impostor); optional ``fold``,
``subject_a``, ``subject_b``, ``yaw_a``, ``yaw_b``; any other column is metadata, kept.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from .data.csv_text import csv_chunks
from .data.delimited import field_counts, line_text, read_text_bytes
from .errors import DataError
from .fileio import atomic_write

REQUIRED = ("score", "label")
OPTIONAL = ("fold", "subject_a", "subject_b", "yaw_a", "yaw_b")
NUMERIC = ("score", "yaw_a", "yaw_b")
SUBJECTS = ("subject_a", "subject_b")
#: pandas' default missing-value spellings (its read_csv documentation), for every column
#: but the subject ids: a subject may be called NA or null, and only an empty id is none.
MISSING = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
           "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")


#: A side's yaw is an angle in degrees: anything beyond a half turn is a unit or data error.
MAX_ABS_YAW = 180.0


def _records(data: bytes, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(first line, field count) of every non-empty record, header first."""
    if b'"' not in data:
        return field_counts(data)
    starts, counts = [], []
    reader = csv.reader(io.StringIO(data.decode("utf-8")))
    line = 1
    try:
        for fields in reader:
            first, line = line, reader.line_num + 1
            if fields:
                starts.append(first)
                counts.append(len(fields))
    except csv.Error as exc:
        raise DataError(f"malformed CSV: {exc}", path, line) from None
    return np.asarray(starts, dtype=np.int64), np.asarray(counts, dtype=np.int64)


def _check_shape(data: bytes, path: Path) -> np.ndarray:
    """Check the header (no repeated column) and that every row has the header's number of
    fields (pandas would fill a short row with NaN, shifting what follows); returns the file
    line of each data row."""
    starts, counts = _records(data, path)
    if not starts.size:
        raise DataError("empty file (expected a header with score,label)", path)
    head = line_text(data, int(starts[0]))
    names = [h.strip() for h in next(csv.reader([head]))]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(f"column {name!r} appears twice in the header", path,
                            int(starts[0]), head)
        seen.add(name)
    n = len(names)
    bad = np.flatnonzero(counts[1:] != n)
    if bad.size:
        line, count = int(starts[1 + bad[0]]), int(counts[1 + bad[0]])
        raise DataError(f"{count} field{'s' if count != 1 else ''} where the header has "
                        f"{n} ({', '.join(names)})", path, line, line_text(data, line))
    return starts[1:]


def _read_csv(data: bytes, dtype: dict, as_written: bool = False) -> pd.DataFrame:
    """pandas' reader on the header's names stripped as the shape check strips them
    (``np.savetxt(delimiter=", ")`` writes ``score, label``); ``as_written``: every value
    as its text, none read as missing, in the columns of ``dtype``."""
    names = [str(name).strip() for name in pd.read_csv(io.BytesIO(data), nrows=0).columns]
    kept = set(SUBJECTS) | (set(dtype) if as_written else set())
    missing = {name: MISSING for name in names if name not in kept}
    return pd.read_csv(io.BytesIO(data), header=0, names=names, dtype=dtype,
                       keep_default_na=False, na_values=missing)


def _parse_fast(data: bytes) -> pd.DataFrame | None:
    """The frame with numeric columns parsed by pandas' C reader, or None when any value is
    not what a valid file holds; the checked parser then names the first bad line. Both
    parsers give the same float64 values (tested), so the fast one changes no number."""
    numeric = {c: np.float64 for c in (*NUMERIC, "label")}
    try:
        df = _read_csv(data, {**numeric, "subject_a": str, "subject_b": str})
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    if any(c not in df.columns for c in REQUIRED) or df.empty:
        return None
    if not np.isfinite(df["score"].to_numpy()).all():
        return None
    for col in [c for c in NUMERIC[1:] if c in df.columns]:
        v = df[col].to_numpy()
        if (np.abs(v[~np.isnan(v)]) > MAX_ABS_YAW).any():
            return None
    label = df["label"].to_numpy()
    if not ((label == 0) | (label == 1)).all():
        return None
    df["label"] = label.astype(np.int8)
    return df


def _parse_checked(data: bytes, row_lines: np.ndarray, path: Path) -> pd.DataFrame:
    """Parse every column as text first and convert it with checks, so the first bad value
    is reported with its file line and text."""
    def fail(row: int, message: str):
        line = int(row_lines[row]) if row < len(row_lines) else None
        raise DataError(message, path, line,
                        line_text(data, line) if line is not None else None)

    as_text = {c: str for c in ("subject_a", "subject_b", *NUMERIC, "label")}
    try:
        df = _read_csv(data, as_text, as_written=True)
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"cannot parse as CSV: {exc}", path) from None
    except pd.errors.EmptyDataError:
        raise DataError("empty file (expected a header with score,label)", path) from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise DataError(f"missing required column(s) {', '.join(missing)}; header has "
                        f"{', '.join(map(str, df.columns))}", path, 1)
    if df.empty:
        raise DataError("no score rows", path)
    if len(df) != len(row_lines):  # pragma: no cover - the shape check guarantees it
        raise DataError(f"read {len(df)} rows from {len(row_lines)} lines", path)
    for col in [c for c in NUMERIC if c in df.columns]:
        raw = df[col].str.strip()
        unknown = raw.isin(MISSING)  # a yaw may be unknown, a score may not
        values = pd.to_numeric(raw.mask(unknown), errors="coerce")
        bad = values.isna() if col == "score" else (values.isna() & ~unknown)
        finite = values.fillna(0.0)
        bad |= ~np.isfinite(finite)
        far = (np.abs(finite) > MAX_ABS_YAW) & np.isfinite(finite) if col != "score" else bad & False
        bad |= far
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            what = (f"is outside [-{MAX_ABS_YAW:g}, {MAX_ABS_YAW:g}] degrees" if far.iloc[row]
                    else "is not a finite number")
            fail(row, _bad_value(df[col], row, what))
        df[col] = values.astype(np.float64)
    # pandas writes a bool column as True/False, and its fast reader takes them: so do we
    raw = df["label"].str.strip()
    labels = pd.to_numeric(raw.str.lower().replace({"true": "1", "false": "0"}),
                           errors="coerce")
    bad = ~labels.isin([0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        fail(row, _bad_value(df["label"], row, "is not 0 or 1"))
    df["label"] = labels.astype(np.int8)
    return df


def _bad_value(column: pd.Series, row: int, what: str) -> str:
    value = column.iloc[row]
    if not str(value).strip():
        return f"column {column.name!r} is empty"
    return f"column {column.name!r}: {str(value)!r} {what}"


def read_scores(path: str | Path) -> pd.DataFrame:
    """Read and validate a score file; errors name the file and the 1-based line."""
    path = Path(path)
    if path.is_dir():
        raise DataError("is a folder, not a score file", path)
    if not path.is_file():
        raise DataError("score file not found", path)
    data = read_text_bytes(path)
    row_lines = _check_shape(data, path)
    df = _parse_fast(data)
    if df is None or len(df) != len(row_lines):
        df = _parse_checked(data, row_lines, path)
    if df["label"].nunique() < 2:
        raise DataError(f"all {len(df)} pairs have label {int(df['label'].iloc[0])}: "
                        "verification metrics need genuine and impostor pairs", path)
    if "fold" in df.columns and df["fold"].isna().any():
        row = int(np.flatnonzero(df["fold"].isna().to_numpy())[0])
        line = int(row_lines[row])
        raise DataError("column 'fold' is empty", path, line, line_text(data, line))
    _check_subjects(df, data, row_lines, path)
    return df


def _blank(column: pd.Series) -> np.ndarray:
    """(n,) bool: the ids that are empty or missing, tested once per distinct id (a row at
    a time took 14 s on IJB-C's 15.7M pairs)."""
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    blank = np.array([pd.isna(u) or not str(u).strip() for u in uniques], dtype=bool)
    return blank[codes] if blank.size else np.zeros(len(column), bool)


def _check_subjects(df: pd.DataFrame, data: bytes, row_lines: np.ndarray, path: Path) -> None:
    """Every pair names both subjects, or none does: one unnamed side would silently turn
    the subject bootstrap into pair resampling (narrower intervals, under another name)."""
    if not set(SUBJECTS) <= set(df.columns):
        return
    empty = np.column_stack([_blank(df[c]) for c in SUBJECTS])
    if empty.all() or not empty.any():
        return
    row, side = (int(v[0]) for v in np.nonzero(empty))
    line = int(row_lines[row])
    raise DataError(f"column {SUBJECTS[side]!r} is empty while other pairs name their "
                    "subjects: give every pair both, or drop both columns (intervals then "
                    "resample pairs)", path, line, line_text(data, line))


def write_scores(df: pd.DataFrame, path: str | Path) -> Path:
    """Write atomically; required columns first, then the optional ones, then the rest."""
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"score frame lacks {missing}")
    first = [c for c in (*REQUIRED, *OPTIONAL) if c in df.columns]
    ordered = df[first + [c for c in df.columns if c not in first]]
    path = Path(path)
    with atomic_write(path) as f:
        for chunk in csv_chunks(ordered, float_format="%.9g"):
            f.write(chunk)
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
