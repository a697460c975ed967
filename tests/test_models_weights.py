"""Weight loading from local files: torchvision, arcface_torch, DREAM code, harness checkpoints."""

import warnings

import numpy as np
import pytest
import torch
import torchvision

from bench.errors import DataError
from bench.models import create_model
from bench.models.weights import read_checkpoint, save_checkpoint


def _x(n=2, size=64):
    torch.manual_seed(0)
    return torch.randn(n, 3, size, size)


def test_torchvision_resnet_state_dict_loads_trunk(tmp_path):
    torch.manual_seed(3)
    tv = torchvision.models.resnet18()
    path = tmp_path / "resnet18-imagenet.pth"
    torch.save(tv.state_dict(), path)
    model = create_model("resnet18", weights=path)
    own = model.stem.state_dict()
    for key, value in tv.state_dict().items():
        if key.startswith("fc."):
            assert key not in own  # the ImageNet classifier is not part of the stem
        else:
            assert torch.equal(own[key], value), key
    assert model.config["weights"] == str(path)


def test_dream_code_checkpoint_maps_names(tmp_path):
    torch.manual_seed(4)
    ref = create_model("resnet18-dream").eval()
    theirs = {}
    for key, value in ref.state_dict().items():
        key = key.replace("stem.", "").replace("dream.residual.0.", "fc1.")
        theirs["module." + key.replace("dream.residual.2.", "fc2.")] = value
    theirs["module.fc.weight"] = torch.zeros(10, 256)  # their identity classifier
    theirs["module.fc.bias"] = torch.zeros(10)
    path = tmp_path / "model_best.pth.tar"
    torch.save({"epoch": 60, "arch": "resnet18", "state_dict": theirs}, path)
    assert read_checkpoint(path).kind == "dream"
    model = create_model("resnet18-dream", weights=path).eval()
    yaw = torch.tensor([0.0, 70.0])
    with torch.no_grad():
        assert torch.equal(model(_x(), yaw), ref(_x(), yaw))


def test_arcface_torch_backbone_loads(tmp_path):
    torch.manual_seed(5)
    ref = create_model("iresnet18").eval()
    path = tmp_path / "backbone.pth"
    torch.save(ref.stem.state_dict(), path)  # arcface_torch saves the bare backbone
    model = create_model("iresnet18", weights=path).eval()
    with torch.no_grad():
        assert torch.equal(model(_x(2, 112)), ref(_x(2, 112)))


def test_arcface_torch_key_layout():
    keys = create_model("iresnet50").stem.state_dict()
    assert keys["fc.weight"].shape == (512, 512 * 7 * 7)
    assert keys["features.weight"].shape == (512,)
    assert "layer3.13.prelu.weight" in keys and "layer3.14.bn1.weight" not in keys
    assert keys["layer1.0.downsample.0.weight"].shape == (64, 64, 1, 1)
    assert keys["layer2.0.conv2.weight"].shape == (128, 128, 3, 3)


def test_harness_checkpoint_restores_options_and_preprocess(tmp_path):
    torch.manual_seed(6)
    ref = create_model("resnet18-dream", feature_dim=64, gate="paper",
                       preprocess={"mean": (0.485, 0.456, 0.406)}).eval()
    path = save_checkpoint(ref, tmp_path / "run" / "ckpt.pt", epoch=3)
    model = create_model("resnet18-dream", weights=path).eval()
    assert model.feature_dim == 64
    assert model.config["gate"] == "paper"
    assert model.preprocess == ref.preprocess
    yaw = torch.tensor([30.0, 80.0])
    with torch.no_grad():
        assert torch.equal(model(_x(), yaw), ref(_x(), yaw))
    assert torch.load(path, weights_only=True)["epoch"] == 3


def test_naive_checkpoint_starts_a_dream_model(tmp_path):
    """Stitch training: a trained naive stem, a fresh DREAM block on top."""
    torch.manual_seed(8)
    naive = create_model("resnet18", feature_dim=64).eval()
    path = save_checkpoint(naive, tmp_path / "naive.pt")
    model = create_model("resnet18-dream", weights=path).eval()
    assert model.feature_dim == 64  # options restored from the naive checkpoint
    assert model.config["weights_not_loaded"] == ["dream.residual.0", "dream.residual.2"]
    with torch.no_grad():
        assert torch.equal(model.stem(_x()), naive(_x()))
    dreamed = tmp_path / "dream.pt"
    save_checkpoint(model, dreamed)
    with pytest.raises(DataError, match="unexpected keys"):  # the block is never dropped
        create_model("resnet18", weights=dreamed)


def test_mismatch_names_missing_and_unexpected_keys(tmp_path):
    state = create_model("resnet18").stem.state_dict()
    state.pop("layer4.1.bn2.weight")
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(DataError) as err:
        create_model("resnet18", weights=path)
    msg = str(err.value)
    assert str(path) in msg
    assert "missing keys (1): stem.layer4.1.bn2.weight" in msg
    assert "unexpected keys (1): stem.extra.weight" in msg


def test_wrong_architecture_reports_shapes(tmp_path):
    path = tmp_path / "r34.pth"
    torch.save(create_model("resnet18", feature_dim=128).state_dict(), path)
    with pytest.raises(DataError, match="shape mismatches"):
        create_model("resnet18", weights=path)


def test_unreadable_and_missing_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        create_model("resnet18", weights=tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_text("not a checkpoint")
    with pytest.raises(DataError, match="cannot read"):
        create_model("resnet18", weights=junk)


def test_onnx_export_round_trip_through_onnx_stem(tmp_path):
    pytest.importorskip("onnxruntime")
    torch.manual_seed(7)
    ref = create_model("resnet18").eval()
    path = tmp_path / "r18.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated, still exact
        torch.onnx.export(ref.stem, (_x(1, 112),), str(path), dynamo=False,
                          input_names=["data"], output_names=["embedding"],
                          dynamic_axes={"data": {0: "n"}, "embedding": {0: "n"}})
    model = create_model("onnx", path=str(path), preprocess=ref.preprocess)
    assert model.feature_dim == 256
    x = _x(3, 112)
    with torch.no_grad():
        assert torch.allclose(model(x), ref(x), atol=1e-4)
        # a batch larger than one onnxruntime call comes back whole and in order
        model.stem.max_call = 2
        assert torch.allclose(model(x), ref(x), atol=1e-4)
    dream = create_model("onnx-dream", path=str(path))
    out = dream(x, torch.tensor([0.0, 60.0, 90.0]))
    out.sum().backward()  # the frozen stem gives no gradient; the block trains
    assert all(p.grad is not None for p in dream.dream.parameters())
    assert list(dream.stem.parameters()) == []


def test_onnx_strips_initializers_listed_as_inputs(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.eye(4, 3, dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["y"])],
        "old_exporter",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2]),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3]),  # initializer as input
         helper.make_tensor_value_info("unused", TensorProto.FLOAT, [7])],  # fed by no one
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        initializer=[weight])
    path = tmp_path / "old.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    model = create_model("onnx", path=str(path), preprocess={"input_size": (2, 2)})
    x = torch.arange(8, dtype=torch.float32).reshape(2, 1, 2, 2)
    assert model.feature_dim == 3
    assert torch.equal(model(x), x.reshape(2, 4)[:, :3])  # batch 2 through a batch-1 graph


def test_ctrl_c_while_a_checkpoint_is_written_stays_a_clean_interrupt(tmp_path, monkeypatch):
    """Bug (seen as a flaky `bench train` SIGINT test): Ctrl-C landing in a checkpoint's
    write (the syscall returns EINTR, Python raises KeyboardInterrupt inside the file's
    write) came out of torch.save's C++ writer as RuntimeError('unexpected pos'): the CLI
    then showed a crash (exit 1) instead of 'interrupted' (exit 130)."""
    import contextlib

    from bench.models import create_model, weights

    real = weights.atomic_write

    class Interrupted:
        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, data):
            self.written += len(data)
            if self.written > 1000:
                raise KeyboardInterrupt
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

    @contextlib.contextmanager
    def interrupted_write(path, mode="w", **kw):
        with real(path, mode, **kw) as f:
            yield Interrupted(f)

    monkeypatch.setattr(weights, "atomic_write", interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        weights.save_checkpoint(create_model("resnet18"), tmp_path / "model.pt")
    assert list(tmp_path.iterdir()) == []  # neither the checkpoint nor a temporary
