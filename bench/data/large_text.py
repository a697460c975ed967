"""Large delimited text files read at the speed of pandas' C parser, errors still by line.

Score files and IJB-B/C meta files run to 15.7M lines: a Python pass per line takes most
of a minute, so the shape of every line (its field count) is found from byte positions
and the values are parsed by pandas. Files here never quote fields; a file with quotes is
the caller's slow path. Line numbers are 1-based and count every line, blank ones too.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from .skipped import SkippedRows

#: Column of :func:`read_columns` frames: the row's 1-based line in its file.
LINE = "_line"


def read_text_bytes(path: Path) -> bytes:
    """The file's bytes (gunzipped when ``.gz``), checked to be UTF-8, without a byte-order
    mark and with line ends normalised to ``\\n``."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"cannot read: {getattr(exc, 'strerror', None) or exc}", path) from None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise DataError(f"not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x})", path,
                        line) from None
    data = data.removeprefix(codecs.BOM_UTF8)
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data


def field_counts(data: bytes, sep: str = ",") -> tuple[np.ndarray, np.ndarray]:
    """(1-based line number, field count) of every non-empty line of quote-free bytes."""
    buf = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(buf == ord("\n"))
    stops = np.append(ends, buf.size)
    starts = np.concatenate([[0], ends + 1])
    # separators before each line's end, by binary search over their positions
    before = np.searchsorted(np.flatnonzero(buf == ord(sep)), stops)
    seps = np.diff(before, prepend=0)
    keep = np.flatnonzero(stops > starts)
    return keep + 1, seps[keep] + 1


def line_text(data: bytes, line: int) -> str:
    """The text of 1-based ``line``: only for error messages, so a plain split will do."""
    return data.split(b"\n", line)[line - 1].decode("utf-8")


def read_columns(path: Path, what: str, names: Sequence[str], *, sep: str = " ",
                 skipped: SkippedRows, numbers: Mapping[str, type] | None = None
                 ) -> tuple[pd.DataFrame, bytes]:
    """A header-less delimited file as a frame of ``names`` columns plus :data:`LINE`.

    Columns in ``numbers`` are parsed as that dtype (e.g. ``np.int64``); others stay str.
    A line with another field count or a value that is not a number is rejected through
    ``skipped`` with its line and text. Returns the frame and the file's bytes, so callers
    can quote further lines in their own errors (:func:`line_text`).
    """
    numbers = dict(numbers or {})
    data = read_text_bytes(path)
    lines, counts = field_counts(data, sep)
    if not lines.size:
        raise DataError(f"empty {what}", path)
    for i in np.flatnonzero(counts != len(names)):
        skipped.reject(DataError(f"malformed line: expected {len(names)} fields separated by "
                                 f"{sep!r}, found {counts[i]}", path, int(lines[i]),
                                 line_text(data, int(lines[i]))))
    good = counts == len(names)
    skip = set((lines[~good] - 1).tolist())
    options = dict(sep=sep, header=None, names=list(names), quoting=csv.QUOTE_NONE,
                   skiprows=skip or None, keep_default_na=False, na_filter=False)
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype={c: numbers.get(c, str) for c in names},
                            **options)
    except (ValueError, OverflowError):
        frame = pd.read_csv(io.BytesIO(data), dtype=str, **options)
    frame[LINE] = lines[good]
    ok = np.ones(len(frame), bool)
    for col, dtype in numbers.items():
        if frame[col].dtype == dtype:
            continue
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna().to_numpy() | (np.issubdtype(dtype, np.integer)
                                          & (values.to_numpy() % 1 != 0))
        for i in np.flatnonzero(bad & ok):
            line = int(frame[LINE].iat[i])
            skipped.reject(DataError(f"{col} {frame[col].iat[i]!r} is not a number", path, line,
                                     line_text(data, line)))
        ok &= ~bad
        frame[col] = values.where(~bad, 0).astype(dtype)
    if not ok.all():
        frame = frame.loc[ok].reset_index(drop=True)
    return frame, data
