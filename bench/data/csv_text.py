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


class _Column:
    """How one column becomes text, a chunk of rows at a time: each distinct value of the
    chunk formatted once and looked up by code, or (for floats that rarely repeat) the
    float format applied to each cell. Chunk by chunk, so nothing is held per row of the
    whole column (codes of a 69M-row column are 550 MB, and pandas sizes the hash table
    that finds them by the rows it is given)."""

    def __init__(self, values: np.ndarray, kind: str, float_format: str):
        self.values, self.kind, self.float_format = values, kind, float_format

    def cells(self, lo: int, hi: int) -> list[str]:
        part = self.values[lo:hi]
        if self.kind == "float":
            # factorized by bit pattern: as floats, -0.0 and 0.0 are one value but print apart
            codes, uniques = pd.factorize(part.view(f"i{part.dtype.itemsize}"))
            if len(uniques) > len(part) // 4:
                fmt = self.float_format.__mod__
                return ["" if v != v else fmt(v) for v in part.tolist()]
            texts = ["" if u != u else self.float_format % u
                     for u in np.asarray(uniques).view(part.dtype).tolist()]
        elif self.kind == "int":
            codes, uniques = pd.factorize(part)
            texts = [str(u) for u in uniques.tolist()]
        else:
            codes, uniques = pd.factorize(part, use_na_sentinel=True)
            texts = [_quote(u) for u in uniques.tolist()]
        # code -1 (NaN, None) indexes the trailing empty field
        return np.array(texts + [""], dtype=object)[codes].tolist()


def _column(series: pd.Series, float_format: str) -> _Column | None:
    """The column's formatter, or None for a dtype only pandas formats as pandas does."""
    dtype = series.dtype
    numpy_dtype = isinstance(dtype, np.dtype)
    if numpy_dtype and dtype.kind == "f":
        return _Column(series.to_numpy(), "float", float_format)
    if numpy_dtype and dtype.kind in "iub":
        return _Column(series.to_numpy(), "int", float_format)
    if isinstance(dtype, pd.StringDtype) or (
            numpy_dtype and dtype.kind == "O"
            # ints, floats or objects in an object column: pandas' own rules
            and pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty")):
        return _Column(series.to_numpy(dtype=object), "text", float_format)
    return None


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
