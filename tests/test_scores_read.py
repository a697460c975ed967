"""The score-file reader's fast path gives exactly what the checked parser gives."""

import numpy as np
import pandas as pd
import pytest

from bench import scores as S
from bench.errors import DataError
from bench.scores import example_scores, read_scores, write_scores


def _checked(path):
    data = S.read_text_bytes(path)
    return S._parse_checked(data, S._check_shape(data, path), path)


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_fast_and_checked_parsers_agree(tmp_path, suffix):
    df = example_scores(n_subjects=40, n_folds=4, pairs_per_fold=60, seed=3)
    rng = np.random.default_rng(0)
    df["score"] = rng.normal(size=len(df)) * rng.choice([1e-6, 1.0, 1e3], len(df))
    df.loc[::7, "yaw_b"] = np.nan  # an empty yaw is allowed
    path = write_scores(df, tmp_path / f"s{suffix}")
    fast = read_scores(path)
    assert S._parse_fast(S.read_text_bytes(path)) is not None  # the fast path was taken
    pd.testing.assert_frame_equal(fast, _checked(path))
    assert fast["score"].to_numpy().tobytes() == _checked(path)["score"].to_numpy().tobytes()


def test_crlf_and_bom_read_like_plain_text(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text("score,label,yaw_a\n0.5,1,3\n0.25,0,\n")
    odd = tmp_path / "odd.csv"
    odd.write_bytes(b"\xef\xbb\xbfscore,label,yaw_a\r\n0.5,1,3\r\n\r\n0.25,0,\r\n")
    pd.testing.assert_frame_equal(read_scores(plain), read_scores(odd))


@pytest.mark.parametrize("text,line,what", [
    ("score,label,yaw_a\n0.5,1,3\n0.2,0\n", 3, "2 fields"),        # short row, yaw optional
    ("score,label\n0.5,1\n\n0.2,1,7\n", 4, "3 fields"),            # long row after a blank
    ("score,label\n0.5,1\nnan,0\n", 3, "not a finite number"),
    ("score,label,yaw_b\n0.5,1,200\n0.1,0,1\n", 2, "outside"),
    ("score,label\n0.5,1\n0.1,2\n", 3, "is not 0 or 1"),
    # bug: an empty field was shown as 'nan'
    ("score,label\n0.5,1\n0.1,\n", 3, "column 'label' is empty"),
    ("score,label\n0.5,1\n,0\n", 3, "column 'score' is empty"),
    # bug: True/False passed the fast parser, so the checked one (run for another bad
    # row) blamed the first True instead of the bad row
    ("score,label\n0.5,True\n0.2,False\n0.3,1.5\n", 4, "'1.5' is not 0 or 1"),
])
def test_bad_rows_are_named_by_line(tmp_path, text, line, what):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(DataError, match=what) as err:
        read_scores(p)
    assert f"bad.csv:{line}" in str(err.value)


def test_score_files_are_gzipped_at_the_fast_level(tmp_path):
    """gzip's default level 9 took as long as formatting the CSV itself (7 s per million
    score rows on 2 cores), for files 5-15 % smaller than level 1's (1 s): an IJB-C 1:N
    run writes 69 million rows, so the level is the fast one (gzip's header says which)."""
    import gzip

    from bench.scores import example_scores, read_scores, write_scores

    df = example_scores(n_subjects=20, n_folds=2, pairs_per_fold=10)
    path = write_scores(df, tmp_path / "s.csv.gz")
    assert path.read_bytes()[8] == 4  # XFL 4: "compressor used fastest algorithm"
    assert len(read_scores(path)) == len(df)
    assert gzip.decompress(path.read_bytes()).startswith(b"score,label")


def test_labels_written_as_booleans_read_as_0_and_1(tmp_path):
    """pandas writes a bool column as True/False: both parsers take them, in any case."""
    p = tmp_path / "b.csv"
    p.write_text("score,label\n0.9,True\n0.1,false\n0.8,TRUE\n0.2,0\n")
    assert read_scores(p)["label"].tolist() == [1, 0, 1, 0]


def test_a_gzipped_file_under_a_plain_name_is_read(tmp_path):
    """Bug: scores.csv holding gzip bytes failed as 'not UTF-8 text (byte 1 is 0x8b)'."""
    import gzip

    text = "score,label\n0.9,1\n0.1,0\n"
    plain, packed = tmp_path / "a.csv", tmp_path / "b.csv"
    plain.write_text(text)
    packed.write_bytes(gzip.compress(text.encode()))
    pd.testing.assert_frame_equal(read_scores(packed), read_scores(plain))
