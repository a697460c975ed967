"""insightface .bin files as researchers build them: entries of other sizes, other blob types."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from test_readers_fixtures import tiny_image

from bench.data import SkippedRows
from bench.readers import insightface_bin


def test_each_image_carries_the_template_points_of_its_own_size(tmp_path):
    # a .bin mixing 112x112 crops with a 160x120 one: the first image's points on every
    # image put the larger crop's eyes where a 112x112 one has them
    blobs = [tiny_image(i, size=112) for i in range(3)] + [_image(160, 120, seed=3)]
    path = tmp_path / "mixed.bin"
    path.write_bytes(pickle.dumps((blobs, [True, False]), protocol=4))
    ev = insightface_bin.read(path, folds=2, cache_dir=tmp_path / "c")
    points = ev.samples.samples["landmarks"]
    assert np.allclose(points[0], insightface_bin.aligned_points([112, 112]))
    assert np.allclose(points[3], insightface_bin.aligned_points([160, 120]))
    assert ev.samples.provenance["image_size"] == [112, 112]
    assert any("160x120" in note for note in ev.samples.provenance["notes"])


def _image(h: int, w: int, seed: int) -> bytes:
    import cv2

    rng = np.random.default_rng(seed)
    ok, buf = cv2.imencode(".jpg", rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_bytearray_blobs_are_read_at_every_pickle_protocol(tmp_path, protocol):
    # _as_bytes takes bytearrays, but below protocol 5 a pickle rebuilds them through the
    # builtins.bytearray global, which the restricted unpickler refused
    blobs = [tiny_image(i) for i in range(4)]
    path = tmp_path / "ba.bin"
    path.write_bytes(pickle.dumps(([bytearray(b) for b in blobs], [True, False]),
                                  protocol=protocol))
    got, same = insightface_bin.load_bin(path)
    assert got == blobs and same.tolist() == [True, False]


def test_a_skipped_pair_s_images_leave_the_samples_too(tmp_path):
    # --lenient dropped the pair of an undecodable blob but kept the blob among the
    # samples, so bench run and validate then failed decoding the image no pair uses
    blobs = [tiny_image(i) for i in range(6)]
    blobs[3] = b"garbage"
    path = tmp_path / "b.bin"
    path.write_bytes(pickle.dumps((blobs, [True, False, True])))
    ev = insightface_bin.read(path, folds=3, cache_dir=tmp_path / "c",
                              skipped=SkippedRows(lenient=True))
    samples = ev.samples.samples
    assert samples["template"].tolist() == ["0", "1", "4", "5"]
    assert all(p.endswith(".jpg") for p in samples["path"])
    assert set(ev.comparisons["a"]) | set(ev.comparisons["b"]) == set(samples["template"])
