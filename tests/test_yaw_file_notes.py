"""What a run says about the yaw a --yaw-file gave: the notes must match the angles read."""

from __future__ import annotations

import cv2
import numpy as np

from bench.data.skipped import SkippedRows
from bench.data.yaw_file import apply_yaw_file
from bench.readers.manifest import read_samples


def _folders(root, n=4):
    for i in range(n):
        (root / f"p{i % 2}").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / f"p{i % 2}" / f"{i}.png"), np.full((16, 16, 3), 40 * i, np.uint8))
    return sorted(root.glob("*/*.png"))


def test_rows_without_a_yaw_are_not_counted_as_yaw_given(tmp_path):
    """Bug: 'yaw of 4/4 images from yaw.csv' while one row had an empty yaw (bench yaw
    found no face): the note counted the listed rows, not the angles."""
    images = _folders(tmp_path / "data")
    yaw = tmp_path / "yaw.csv"
    yaw.write_text("path,yaw\n" + "".join(f"{p},{'' if i == 2 else 10 * i}\n"
                                           for i, p in enumerate(images)))
    samples = read_samples(tmp_path / "data")
    apply_yaw_file(samples, yaw, SkippedRows())
    notes = samples.provenance["notes"]
    assert f"yaw of 3/4 images from {yaw}; 1 row there gives no yaw" in notes, notes


def test_identity_folders_do_not_say_yaw_unknown_once_a_file_gave_it(tmp_path):
    """Bug: every identity-folder run with --yaw-file printed 'identity folders: yaw unknown
    (estimate it before binning)' beside 'yaw of 4/4 images from yaw.csv'."""
    images = _folders(tmp_path / "data")
    yaw = tmp_path / "yaw.csv"
    yaw.write_text("path,yaw\n" + "".join(f"{p},{5 * i}\n" for i, p in enumerate(images)))
    samples = read_samples(tmp_path / "data")
    apply_yaw_file(samples, yaw, SkippedRows())
    notes = " | ".join(samples.provenance["notes"])
    assert "yaw unknown" not in notes, notes
    assert f"yaw of 4/4 images from {yaw}" in notes
