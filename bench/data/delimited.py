"""Reading delimited text files, keeping each row's file line for errors.

Small files (metadata, comparison lists) are read by header name a line at a time: every
row of the frame carries ``_line`` (1-based line in the file) and ``_text`` (the line as
written), so a bad value is reported as ``file:line`` with the line itself. Quoted fields
may not span lines (none of the supported formats does that).

Large ones (score files, IJB-B/C meta files: up to 15.7M lines, where a Python pass per line
takes most of a minute) are read by :func:`read_columns`: the field count of every line
comes from byte positions, the values from pandas' C parser, and a line's text is looked up
only for an error. These files never quote fields.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from .skipped import SkippedRows

LINE, TEXT = "_line", "_text"


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else a DataError saying what was expected there."""
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "nothing"
        raise DataError(f"missing {what}: expected a file here, found {kind}", path)
    return path


def missing_image(image: str | Path) -> str:
    """The message for a listed image that is not there; a list written on Windows
    separates folders with backslashes, which name no folder here: say so."""
    hint = (" (the path separates folders with '\\', which names no folder here: "
            "write '/')") if "\\" in str(image) else ""
    return f"missing image: expected {image}{hint}"


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        kind = "a file" if path.exists() else "nothing"
        raise DataError(f"missing {what}: expected a folder here, found {kind}", path)
    return path


def count_numbered(parent: Path, name: Callable[[int], str], what: str) -> int:
    """N for folders ``name(1) .. name(N)`` under ``parent`` (official split folders when
    the count comes from the data, not the protocol); a gap is an error naming it."""
    require_dir(parent, f"{what} parent folder")
    n = 0
    while (parent / name(n + 1)).is_dir():
        n += 1
    if n == 0:
        raise DataError(f"missing {what}: expected a folder {name(1)} here", parent)
    if (parent / name(n + 2)).is_dir():
        raise DataError(f"{what} {name(n + 1)} is missing but {name(n + 2)} exists", parent)
    return n


def read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines as (1-based line number, text without the newline)."""
    try:
        with open(path, encoding="utf-8-sig", errors="strict") as f:
            text = f.read()
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1
        raise DataError(f"not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x})",
                        path, line) from None
    return [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]


def read_table(path: Path, what: str, *, required: Sequence[str], optional: Sequence[str] = (),
               header: bool = True, skipped: SkippedRows | None = None,
               delimiter: str = ",") -> pd.DataFrame:
    """Rows of a delimited file as str columns named as in ``required`` + found ``optional``.

    With ``header``, columns are found by name (case and surrounding spaces ignored) and
    their order in the file does not matter; extra columns are ignored. Without it, the
    file must hold exactly ``required`` columns in that order, and no row is taken as a
    header. Rows with the wrong number of fields are rejected through ``skipped``.
    """
    skipped = skipped if skipped is not None else SkippedRows()
    lines = read_lines(require_file(path, what))
    if header:
        if not lines:
            raise DataError(f"empty {what}: expected a header row with {list(required)}", path)
        head_line, head_text = lines[0]
        names = [h.strip().lower() for h in next(csv.reader([head_text], delimiter=delimiter))]
        missing = [c for c in required if c.lower() not in names]
        if missing:
            raise DataError(f"{what} lacks columns {missing} (expected a header naming at "
                            f"least {list(required)})", path, head_line, head_text)
        wanted = list(required) + [c for c in optional if c.lower() in names]
        twice = [c for c in wanted if names.count(c.lower()) > 1]
        if twice:  # which one would hold? never take the first in silence
            raise DataError(f"{what}: column {twice[0]!r} appears twice in the header", path,
                            head_line, head_text)
        positions = [names.index(c.lower()) for c in wanted]
        body = lines[1:]
        n_fields = len(names)
    else:
        wanted = list(required)
        positions = list(range(len(wanted)))
        body = lines
        n_fields = len(wanted)
    rows, keep_lines, keep_texts = [], [], []
    # one line at a time: an unbalanced quote must not swallow the lines after it
    parsed = [next(csv.reader([text], delimiter=delimiter), []) for _, text in body]
    for (line_no, text), fields in zip(body, parsed, strict=True):
        if len(fields) != n_fields:
            skipped.reject(DataError(f"malformed line: expected {n_fields} fields, found "
                                     f"{len(fields)}", path, line_no, text))
            continue
        rows.append([fields[p].strip() for p in positions])
        keep_lines.append(line_no)
        keep_texts.append(text)
    frame = pd.DataFrame(rows, columns=wanted, dtype=object) if rows else \
        pd.DataFrame({c: pd.Series(dtype=object) for c in wanted})
    frame[LINE] = np.asarray(keep_lines, dtype=np.int64)
    frame[TEXT] = np.asarray(keep_texts, dtype=object)
    return frame


def parse_numbers(frame: pd.DataFrame, column: str, path: Path, skipped: SkippedRows, *,
                  what: str = "number", allow_empty: bool = True,
                  integer: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised float parse of a str column: (values, ok mask).

    Empty cells become NaN when ``allow_empty``; anything else that is not a number (or not
    a whole number when ``integer``) is rejected through ``skipped`` with its file:line,
    and its row is False in the mask.
    """
    raw = frame[column].astype(str).str.strip()
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    empty = raw.eq("").to_numpy()
    bad = np.isnan(values) & ~empty & ~raw.str.lower().isin(("nan", "na")).to_numpy()
    if integer:  # "nan" and "inf" are no whole numbers either (they cast to -2**63)
        bad |= ~empty & (~np.isfinite(values) | (values != np.round(values)))
    if not allow_empty:
        bad |= empty
    for i in np.flatnonzero(bad):
        skipped.reject(DataError(f"{what}: {column} is {raw.iat[i]!r}, not a "
                                 f"{'whole number' if integer else 'number'}", path,
                                 int(frame[LINE].iat[i]), frame[TEXT].iat[i]))
    return values, ~bad


def keep_rows(frame: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    return frame.loc[np.asarray(mask, dtype=bool)].reset_index(drop=True)


ANGLES = ("yaw", "pitch", "roll")


def read_angle_table(path: Path, what: str, skipped: SkippedRows,
                     extra: Sequence[str] = ()) -> pd.DataFrame:
    """A ``path,yaw[,pitch,roll,...]`` file with its angle columns parsed to float.

    Rows with a non-numeric angle are rejected through ``skipped`` (file:line); the others
    are kept with the ``LINE``/``TEXT`` bookkeeping columns of :func:`read_table`.
    """
    rows = read_table(path, what, required=("path", "yaw"), optional=("pitch", "roll", *extra),
                      skipped=skipped)
    ok = np.ones(len(rows), dtype=bool)
    angles = {}
    for col in ANGLES:
        if col in rows:
            angles[col], good = parse_angles(rows, col, path, skipped)
            ok &= good
    return keep_rows(rows.assign(**angles), ok)


def parse_angles(frame: pd.DataFrame, column: str, path: Path, skipped: SkippedRows,
                 what: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`parse_numbers` of an angle column in degrees, rows beyond [-180, 180] also
    rejected (:func:`check_angles`): the values and the mask of good rows."""
    values, good = parse_numbers(frame, column, path, skipped,
                                 what=what or f"non-numeric {column}")
    return values, good & check_angles(frame, column, values, path, skipped, among=good)


#: Head pose angles are degrees in [-180, 180]; a larger one is a unit or data error (a
#: DREAM gate would take |yaw| = 400 as a full profile without a word).
MAX_ANGLE = 180.0


def check_angles(frame: pd.DataFrame, column: str, values: np.ndarray, path: Path,
                 skipped: SkippedRows, among: np.ndarray | None = None) -> np.ndarray:
    """Mask of rows whose angle is unknown (NaN) or within [-180, 180]; the others (of the
    rows ``among``, those not rejected already) are rejected through ``skipped`` with
    their file:line."""
    bad = ~np.isnan(values) & ~(np.abs(values) <= MAX_ANGLE)
    if among is not None:
        bad &= among
    for i in np.flatnonzero(bad):
        skipped.reject(DataError(f"{column} {frame[column].iat[i]} is outside "
                                 f"[-{MAX_ANGLE:g}, {MAX_ANGLE:g}] degrees", path,
                                 int(frame[LINE].iat[i]), frame[TEXT].iat[i]))
    return ~bad


GZIP_MAGIC = b"\x1f\x8b"


def read_text_bytes(path: Path) -> bytes:
    """The file's bytes (gunzipped when ``.gz`` or gzip's magic opens it: a downloaded
    ``scores.csv`` may be compressed under its plain name), checked to be UTF-8, without a
    byte-order mark, with line ends normalised to ``\\n`` and spaces or tabs at a line's
    end removed."""
    try:
        data = path.read_bytes()
        if path.suffix == ".gz" or data.startswith(GZIP_MAGIC):
            data = gzip.decompress(data)
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
    if b" \n" in data or b"\t\n" in data or data.endswith((b" ", b"\t")):
        # spaces at a line's end are invisible and not a field (insightface's own readers
        # take such lines); a line of spaces alone is then empty, and skipped as blank
        data = re.sub(rb"(?m)[ \t]+$", b"", data)
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
