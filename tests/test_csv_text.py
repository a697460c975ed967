"""The fast CSV writer must write exactly what pandas writes: score files written before it
and after it are the same bytes."""

import csv
import io

import numpy as np
import pandas as pd
import pytest

from bench.data.csv_text import csv_chunks


def _pandas(df, float_format="%.9g"):
    buffer = io.StringIO()
    df.to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL, float_format=float_format)
    return buffer.getvalue()


def _ours(df, **kw):
    return "".join(csv_chunks(df, **kw))


EDGES = pd.DataFrame({
    "score": [np.inf, -np.inf, -0.0, np.nan, 1e300, 3.0, 0.0, 5e-324],
    "label": np.array([1, 0, 1, 0, 1, 0, 1, 0], dtype=np.int8),
    "flag": [True, False] * 4,
    "subject_a": ["a,b", 'q"x', "", None, "n\nl", "é", "cr\r", " sp "],
    "yaw": np.array([0.1, 2, np.nan, 4, 5, np.nan, -0.0, 0.0], dtype=np.float32),
    "big": np.array([2**62, -1, 0, 7, 7, 7, 7, 7], dtype=np.int64),
})


@pytest.mark.parametrize("float_format", ["%.9g", "%.3f"])
def test_edge_values_are_written_as_pandas_writes_them(float_format):
    assert _ours(EDGES, float_format=float_format) == _pandas(EDGES, float_format)


def test_repeated_floats_take_the_lookup_path_and_match():
    """A column with few distinct values (a yaw per template) is formatted once per value,
    including its NaN, -0.0 and 0.0, which compare equal but print apart."""
    values = np.tile([-0.0, 0.0, np.nan, 12.5, -90.0], 40)
    df = pd.DataFrame({"score": np.linspace(0, 1, values.size), "yaw_a": values})
    assert _ours(df, chunk_rows=7) == _pandas(df)


def test_random_score_tables_match_in_chunks():
    rng = np.random.default_rng(0)
    n = 5_000
    templates = np.array([f"t{i}" for i in range(50)], dtype=object)
    df = pd.DataFrame({
        "score": rng.standard_normal(n).astype(np.float32).astype(np.float64),
        "label": rng.integers(0, 2, n).astype(np.int8),
        "fold": rng.integers(1, 11, n),
        "subject_a": rng.choice(templates, n),
        "subject_b": pd.array(rng.choice(templates, n), dtype="str"),
        "yaw_a": rng.choice(rng.uniform(-90, 90, 30), n),
        "yaw_b": np.where(rng.random(n) < 0.1, np.nan, rng.uniform(-90, 90, n)),
    })
    for chunk_rows in (1, 333, n, 10 * n):
        assert _ours(df, chunk_rows=chunk_rows) == _pandas(df)


@pytest.mark.parametrize("df", [
    pd.DataFrame({"a": ["", "x"]}),  # a lone empty field is quoted by the csv module
    pd.DataFrame({"a": [1.5, 2.0], "o": [1, "x"]}),  # mixed object column
    pd.DataFrame({"a": [1.5, 2.0], "c": pd.Categorical(["x", "y"])}),
    pd.DataFrame({"a": [1.5, 2.0], "n": pd.array([1, None], dtype="Int64")}),
    pd.DataFrame([[1.0, 2.0]], columns=["a", "a"]),
    pd.DataFrame({"score": [], "label": []}),
    pd.DataFrame({'we"ird,name': [1.0], "label": [1]}),
], ids=["lone-column", "mixed-object", "categorical", "nullable-int", "repeated-names",
        "empty", "quoted-header"])
def test_frames_it_does_not_format_itself_still_match(df):
    assert _ours(df) == _pandas(df)


@pytest.mark.parametrize("df", [
    pd.DataFrame({"score": [0.5, 0.25], "o": [None, np.nan]}),  # an object column of NaN
    pd.DataFrame({"score": [0.5, 0.25], "o": np.array(["x", np.str_("y")], dtype=object)}),
    pd.DataFrame({"score": [0.5, 0.25], "o": [b"x", "y"]}),  # bytes: pandas' rules
], ids=["all-missing", "numpy-str", "bytes"])
def test_object_columns_of_text_or_nothing_match(df):
    assert _ours(df, chunk_rows=1) == _pandas(df)


def test_memory_does_not_grow_with_the_rows_of_a_column():
    """Bug: every column was factorised whole before the first row was written: 8 bytes
    of codes a row for each column, and pandas' hash table sized by the rows on top, so a
    1:N IJB-C score file (69M rows) took 4.6 GB beyond its table to write."""
    import tracemalloc

    rng = np.random.default_rng(0)
    n, chunk = 400_000, 1 << 13
    names = np.array([f"t{i}" for i in range(300)], dtype=object)
    df = pd.DataFrame({"score": rng.standard_normal(n), "label": rng.integers(0, 2, n),
                       "subject_a": rng.choice(names, n),
                       "subject_b": pd.array(rng.choice(names, n), dtype="str"),
                       "yaw_a": rng.choice(rng.uniform(-90, 90, 30), n)})
    tracemalloc.start()
    try:
        for _ in csv_chunks(df, chunk_rows=chunk):
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # a chunk's rows, as text and lists of cells, not the column's: 64 bytes a row of the
    # whole column before
    assert peak < 400 * chunk, peak / chunk
