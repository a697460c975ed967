"""IJB-A and IJB-B/C readers on hand-made variants of the real releases' files."""

from __future__ import annotations

import pytest
from test_readers_fixtures import write_ijbc

from bench.data import SkippedRows
from bench.errors import DataError
from bench.readers import ijbc


def test_a_search_list_template_without_crops_is_named_by_its_line(tmp_path):
    """A 1:N list naming a template the face list lacks (a truncated face list, or the other
    release's lists) was dropped in silence, even in strict mode."""
    root = tmp_path / "IJBC"
    write_ijbc(root)
    probes = root / "meta" / "ijbc_1N_probe_mixed.csv"
    n_lines = len(probes.read_text().splitlines())
    with open(probes, "a") as f:
        f.write("999,9,img/999.jpg\n")
    with pytest.raises(DataError, match=rf"ijbc_1N_probe_mixed.csv:{n_lines + 1}: template "
                                        "999 .*ijbc_face_tid_mid.txt"):
        ijbc.read(root, task="search", cache_dir=tmp_path / "cache")
    skipped = SkippedRows(lenient=True)
    ev = ijbc.read(root, task="search", skipped=skipped, cache_dir=tmp_path / "cache")
    assert "999" not in set(ev.search["template"])
    assert [(r["line"], r["text"]) for r in skipped.as_records()] == \
        [(n_lines + 1, "999,9,img/999.jpg")]
    # the 1:1 set only takes subjects from these lists: nothing to reject there
    assert len(ijbc.read(root, cache_dir=tmp_path / "cache").comparisons) > 0
