"""A yaw file written by bench yaw for a .bin applies wherever the .bin is read again."""

from __future__ import annotations

import pandas as pd
from click.testing import CliRunner
from test_readers_fixtures import write_bin

from bench.cli import main


def test_validate_with_cache_dir_finds_the_bin_images_bench_yaw_named(tmp_path, monkeypatch):
    # --cache-dir C (documented as the default $BENCH_CACHE made explicit) put the .bin's
    # images under C/bin/, where bench yaw and bench run keep them under C/readers/bin/,
    # so the yaw file written for the .bin matched none of its images
    cache = tmp_path / "cache"
    monkeypatch.setenv("BENCH_CACHE", str(cache))
    write_bin(tmp_path / "lfw.bin", n_pairs=10)
    listed = tmp_path / "listed.csv"
    r = CliRunner().invoke(main, ["yaw", str(tmp_path / "lfw.bin"), "--out", str(listed),
                                  "--sources", "metadata", "--backend", "none", "--quiet"])
    assert r.exit_code == 0, r.output
    paths = pd.read_csv(listed)["path"]
    pd.DataFrame({"path": paths, "yaw": 10.0}).to_csv(tmp_path / "yaw.csv", index=False)
    protocol = tmp_path / "small-lfw.toml"
    protocol.write_text('name = "small-lfw"\nextends = "lfw-bin"\nstrict_counts = false\n')
    r = CliRunner().invoke(main, ["protocols", "validate", str(protocol), "--data",
                                  str(tmp_path / "lfw.bin"), "--cache-dir", str(cache),
                                  "--yaw-file", str(tmp_path / "yaw.csv"), "--no-decode"])
    assert r.exit_code == 0, r.output
    assert "yaw of 20/20 images" in r.output
