"""CSV text of a data frame, byte for byte what ``DataFrame.to_csv(index=False,
float_format=...)`` writes (minimal quoting, NaN as an empty field), in chunks of rows.

Why not pandas' writer: it formats every cell through Python, about 7 us a row, so a 1:N
IJB-C score file (69M probe x gallery rows) took 9 minutes to write. Here each column is
formatted once per distinct value (subjects, templates, yaws and folds repeat across a
score table) and only columns of mostly distinct floats, the scores, are formatted per
cell; rows are then joined in C. Columns of other dtypes leave the whole frame to pandas.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import numpy as np
import pandas as pd

#: rows per chunk: about 60 MB of text for a score table
CHUNK_ROWS = 1 << 20


def _quote(text: str) -> str:
    """A field as pandas' csv writer quotes it under QUOTE_MINIMAL: for the delimiter, the
    quote character and the line terminator ("\n"; a lone "\r" stays unquoted)."""
    if any(ch in text for ch in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _plain_strings(uniques: np.ndarray) -> bool:
    return all(isinstance(u, str) for u in uniques)


class _Column:
    """How one column becomes text: a lookup of its distinct values' text by code, or (for
    floats that rarely repeat) the float format applied to each cell."""

    def __init__(self, values: np.ndarray, texts: np.ndarray | None, float_format: str):
        self.values, self.texts, self.float_format = values, texts, float_format

    def cells(self, lo: int, hi: int) -> list[str]:
        if self.texts is not None:
            return self.texts[self.values[lo:hi]].tolist()
        fmt = self.float_format.__mod__
        return ["" if v != v else fmt(v) for v in self.values[lo:hi].tolist()]


def _column(series: pd.Series, float_format: str) -> _Column | None:
    """The column's formatter, or None for a dtype only pandas formats as pandas does."""
    dtype = series.dtype
    numpy_dtype = isinstance(dtype, np.dtype)
    if numpy_dtype and dtype.kind == "f":
        values = series.to_numpy()
        # factorized by bit pattern: as floats, -0.0 and 0.0 are one value but print apart
        codes, uniques = pd.factorize(values.view(f"i{dtype.itemsize}"))
        if len(uniques) > len(values) // 4:
            return _Column(values, None, float_format)
        texts = ["" if u != u else float_format % u
                 for u in np.asarray(uniques).view(dtype).tolist()]
    elif numpy_dtype and dtype.kind in "iub":
        codes, uniques = pd.factorize(series.to_numpy())
        texts = [str(u) for u in uniques.tolist()]
    elif (numpy_dtype and dtype.kind == "O") or isinstance(dtype, pd.StringDtype):
        codes, uniques = pd.factorize(series.to_numpy(dtype=object), use_na_sentinel=True)
        if not _plain_strings(uniques):
            return None  # ints, floats or objects in an object column: pandas' own rules
        texts = [_quote(u) for u in uniques.tolist()]
    else:
        return None
    # code -1 (NaN, None) indexes the trailing empty field
    return _Column(codes, np.array(texts + [""], dtype=object), float_format)


def csv_chunks(df: pd.DataFrame, float_format: str = "%.9g",
               chunk_rows: int = CHUNK_ROWS) -> Iterator[str]:
    """The header line, then the rows ``chunk_rows`` at a time, each chunk ending in a
    newline; joined, exactly ``df.to_csv(index=False, float_format=float_format)``."""
    # one column: the csv module quotes a lone empty field; repeated names: df[name] is a frame
    columns = [_column(df[name], float_format) for name in df.columns] \
        if df.columns.is_unique and len(df.columns) > 1 else [None]
    if any(c is None for c in columns):
        buffer = io.StringIO()
        df.to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL, float_format=float_format)
        yield buffer.getvalue()
        return
    yield ",".join(_quote(str(name)) for name in df.columns) + "\n"
    for lo in range(0, len(df), chunk_rows):
        hi = min(lo + chunk_rows, len(df))
        rows = zip(*(c.cells(lo, hi) for c in columns), strict=True)
        yield "\n".join(map(",".join, rows)) + "\n"
