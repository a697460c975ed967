"""Review of the IJB protocols against the real releases: what a real copy must pass."""

from __future__ import annotations

import pytest
from test_readers_fixtures import write_ijbc

from bench.protocols import PROTOCOLS, load_eval_set, load_protocol


def test_search_protocols_expect_only_counts_a_search_has(tmp_path):
    """ijbc-search inherited ijbc-verify's pair counts, so a complete real IJB-C failed its
    count check ("pairs: expected 15658489, found None")."""
    info = write_ijbc(tmp_path / "IJBC")
    protocol = tmp_path / "tiny-search.toml"
    protocol.write_text(f'name = "tiny-search"\nextends = "ijbc-search"\n[counts]\n'
                        f'images = {info["images"]}\ntemplates = {info["templates"]}\n'
                        f'subjects = {info["subjects"]}\n')
    _, report = load_eval_set(str(protocol), tmp_path, cache_dir=tmp_path / "cache")
    assert not report.mismatches
    for name in PROTOCOLS.names():
        p = load_protocol(name)
        if p.task == "search":
            assert not set(p.counts) & {"pairs", "genuine", "impostor"}, name


@pytest.mark.parametrize("name,images,templates,subjects", [
    ("ijbc-search", 469375, 23124, 3531), ("ijbb-search", 227630, 12115, 1845)])
def test_search_protocols_keep_the_release_counts(name, images, templates, subjects):
    assert load_protocol(name).counts == {"images": images, "templates": templates,
                                          "subjects": subjects}
