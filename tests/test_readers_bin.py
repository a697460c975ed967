"""insightface .bin reader: both pickle encodings, folds, hashing, the image cache, bad input."""

from __future__ import annotations

import hashlib
import os
import pickle

import cv2
import numpy as np
import pytest
from test_readers_fixtures import tiny_image, write_bin

from bench.data import SkippedRows
from bench.errors import DataError
from bench.readers import insightface_bin


@pytest.mark.parametrize("py2", [False, True], ids=["py3-bytes", "py2-str"])
def test_reads_both_encodings_into_decodable_images(tmp_path, py2):
    path = tmp_path / "cfp_fp.bin"
    blobs, issame = write_bin(path, n_pairs=10, py2=py2)
    ev = insightface_bin.read(path, folds=3, cache_dir=tmp_path / "cache")
    s, c = ev.samples.samples, ev.comparisons
    assert len(s) == 20 and len(c) == 10
    assert c["a"].tolist() == [str(2 * i) for i in range(10)]
    assert c["b"].tolist() == [str(2 * i + 1) for i in range(10)]
    assert c["label"].tolist() == [int(x) for x in issame]
    # KFold(3, shuffle=False) on 10 pairs: blocks of 4, 3, 3.
    assert c["fold"].tolist() == [1, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    for i in (0, 13):
        with open(s["path"][i], "rb") as f:
            assert f.read() == blobs[i]  # stored unchanged, no re-encoding
        decoded = cv2.imread(s["path"][i])
        assert decoded is not None and decoded.shape == (8, 8, 3)
    prov = ev.samples.provenance
    assert prov["files"] == {"cfp_fp.bin": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert prov["pickle_protocol"] == (2 if py2 else 4)
    assert prov["image_size"] == [8, 8]
    assert "contiguous blocks" in prov["folds"]


def test_cache_is_reused_and_keyed_by_content(tmp_path):
    path = tmp_path / "x.bin"
    write_bin(path, n_pairs=3)
    first = insightface_bin.read(path, cache_dir=tmp_path / "c", folds=2).samples.samples
    stamp = os.stat(first["path"][0]).st_mtime_ns
    second = insightface_bin.read(path, cache_dir=tmp_path / "c", folds=2).samples.samples
    assert second["path"].tolist() == first["path"].tolist()
    assert os.stat(second["path"][0]).st_mtime_ns == stamp
    write_bin(path, n_pairs=4)  # new content -> new folder
    third = insightface_bin.read(path, cache_dir=tmp_path / "c", folds=2).samples.samples
    assert os.path.dirname(third["path"][0]) != os.path.dirname(first["path"][0])


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_issame_as_numpy_and_blobs_as_uint8_arrays(tmp_path, protocol):
    """Protocol 5 is what insightface's packing scripts write on Python 3.8+
    (pickle.HIGHEST_PROTOCOL over cv2.imencode arrays); numpy pickles its arrays there
    through numpy's _frombuffer, which the reader refused."""
    path = tmp_path / "np.bin"
    blobs = [np.frombuffer(tiny_image(i), np.uint8).reshape(-1, 1) for i in range(4)]
    path.write_bytes(pickle.dumps((blobs, np.array([True, False])), protocol=protocol))
    ev = insightface_bin.read(path, folds=2, cache_dir=tmp_path / "c")
    assert ev.comparisons["label"].tolist() == [1, 0]
    assert ev.comparisons["fold"].tolist() == [1, 2]


def test_count_mismatch_and_not_a_bin(tmp_path):
    path = tmp_path / "bad.bin"
    path.write_bytes(pickle.dumps(([tiny_image(0)] * 3, [True])))
    with pytest.raises(DataError, match="count mismatch: 3 images for 1 pairs"):
        insightface_bin.read(path, cache_dir=tmp_path / "c")
    path.write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="not a readable insightface .bin"):
        insightface_bin.read(path, cache_dir=tmp_path / "c")
    with pytest.raises(DataError, match="missing insightface verification .bin file"):
        insightface_bin.read(tmp_path / "absent.bin")


def test_refuses_pickles_that_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.bin"
    path.write_bytes(pickle.dumps(([Evil(), b""], [True])))
    with pytest.raises(DataError, match="refusing to load"):
        insightface_bin.load_bin(path)


def test_undecodable_blob_strict_and_lenient(tmp_path):
    path = tmp_path / "b.bin"
    blobs = [tiny_image(i) for i in range(6)]
    blobs[3] = b"garbage"
    path.write_bytes(pickle.dumps((blobs, [True, False, True])))
    with pytest.raises(DataError, match=r"image 3 \(pair 2\) is not a JPEG or PNG"):
        insightface_bin.read(path, cache_dir=tmp_path / "c")
    skipped = SkippedRows(lenient=True)
    ev = insightface_bin.read(path, folds=3, cache_dir=tmp_path / "c", skipped=skipped)
    assert ev.comparisons["a"].tolist() == ["0", "4"] and len(skipped) == 1
    assert ev.comparisons["fold"].tolist() == [1, 3]  # folds stay those of the file order


def test_write_bin_round_trip(tmp_path):
    images = [tiny_image(i) for i in range(4)]
    digest = insightface_bin.write_bin(tmp_path / "w.bin", images, [False, True])
    assert digest == hashlib.sha256((tmp_path / "w.bin").read_bytes()).hexdigest()
    blobs, same = insightface_bin.load_bin(tmp_path / "w.bin")
    assert blobs == images and same.tolist() == [False, True]


def test_an_uppercase_bin_name_is_found_as_a_bin(tmp_path, monkeypatch):
    """Bug: CFP_FP.BIN fell through to the manifest reader: 'not UTF-8 text (byte 0 is
    0x80)'."""
    from bench.readers import read_images_of

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "CFP_FP.BIN"
    write_bin(path, n_pairs=3)
    assert len(read_images_of(path, skipped=SkippedRows()).samples) == 6
