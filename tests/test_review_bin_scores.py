"""bench score on files as other tools write them."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.scores import read_scores


@pytest.mark.parametrize("header", ["score, label, fold, subject_a",
                                    "score ,label,fold , subject_a"])
def test_a_header_with_spaces_reads_like_a_plain_one(tmp_path, header):
    # np.savetxt(delimiter=", ") writes "score, label": the shape check strips the names,
    # the parsers did not, so the file was refused for lacking the 'label' it has
    rows = ["0.5,1,1,007", "0.25,0,1,008", "0.75,1,2,009", "0.125,0,2,010"]
    plain = tmp_path / "plain.csv"
    plain.write_text("\n".join(["score,label,fold,subject_a", *rows]) + "\n")
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("\n".join([header, *(r.replace(",", ", ") for r in rows)]) + "\n")
    got = read_scores(spaced)
    assert list(got.columns) == ["score", "label", "fold", "subject_a"]
    pd.testing.assert_frame_equal(got[["score", "label", "fold"]],
                                  read_scores(plain)[["score", "label", "fold"]])
    assert got["subject_a"].str.strip().tolist() == ["007", "008", "009", "010"]
