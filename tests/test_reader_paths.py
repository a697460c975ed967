"""A dataset reads the same whatever the spelling of its path.

Bug: CFP's reader kept a ``..`` of ``--data ../../cfp`` in its root while it normalised
the listed image paths, so no image was found under ``Data/Images`` of the root and every
fiducial file was missed: 0 of 1,400 images kept their landmarks (a run then detected
faces instead, 72.7 % instead of 80.0 % for SFace on the synthetic CFP-FP), with only a
note to say so.
"""

import os
from pathlib import Path

import numpy as np
import pytest

from bench.data import SkippedRows
from bench.readers import read_images_of


def _summary(samples):
    df = samples.samples
    has_points = df["landmarks"].map(lambda v: v is not None and np.size(v) > 0) \
        if "landmarks" in df else None
    return (df["path"].astype(str).tolist(),
            None if has_points is None else has_points.tolist())


@pytest.mark.parametrize("part", ["cfp", "ijba", "train", "cfp_fp.bin"])
def test_a_path_with_dot_dot_reads_as_the_plain_one(tiny_synth, tmp_path, part, monkeypatch):
    if not (tiny_synth / part).exists():
        pytest.skip(f"the tiny synthetic set has no {part}")
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    plain = read_images_of(tiny_synth / part, skipped=SkippedRows())
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")
    dotted = Path(os.path.relpath(tiny_synth, Path.cwd())) / "x" / ".." / part
    assert ".." in dotted.parts
    (tiny_synth / "x").mkdir(exist_ok=True)
    again = read_images_of(dotted, skipped=SkippedRows())
    assert _summary(again) == _summary(plain)
    if part == "cfp":
        assert all(_summary(plain)[1])


def test_a_synth_json_is_looked_for_above_the_real_folder(tmp_path, monkeypatch):
    """Bug: the folders 'above' ../../cfp were its lexical parents, so from
    T/anc/work/sub a synth.json in T/anc/work (no ancestor of T/anc/cfp) made real data
    synthetic (its counts, its folds)."""
    from bench.protocols.dataset import DataLocation, synth_manifest

    (tmp_path / "anc" / "cfp").mkdir(parents=True)
    (tmp_path / "anc" / "work" / "sub").mkdir(parents=True)
    (tmp_path / "anc" / "work" / "synth.json").write_text("{}")
    monkeypatch.chdir(tmp_path / "anc" / "work" / "sub")
    assert synth_manifest(DataLocation(Path("../../cfp"), None, "test")) is None
    (tmp_path / "synth.json").write_text("{}")
    assert synth_manifest(DataLocation(Path("../../cfp"), None, "test")) == \
        tmp_path / "synth.json"
