"""Registry-wide model contract: forward/backward, gate-zero identity, state-dict round trip."""

import pytest
import torch

from bench.errors import ConfigError
from bench.models import MODELS, DreamBlock, FaceModel, create_model

#: Models that need a file (the onnx stem) or an optional package are tested elsewhere.
# models whose weights are a user's file or ship in a package: frozen, nothing to train
NEEDS_FILE = {name for name in MODELS.names() if MODELS.meta(name)["feature_dim"] is None
              or MODELS.meta(name)["weights"] != "trained"}
BUILDABLE = [n for n in MODELS.names() if n not in NEEDS_FILE]
HEAVY = ("iresnet50", "iresnet100")  # tens of millions of parameters: slow on 2 CPU cores
ALL = [pytest.param(n, marks=pytest.mark.slow) if n.startswith(HEAVY) else n for n in BUILDABLE]
SMALL = [n for n in BUILDABLE if not n.startswith(HEAVY + ("resnet50",))]


def _batch(model: FaceModel, n: int = 2) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(n, 3, *model.preprocess.input_size)


@pytest.mark.parametrize("name", ALL)
def test_forward_backward_every_parameter_gets_gradient(name):
    torch.manual_seed(0)
    model = create_model(name)
    model.train()
    x = _batch(model)
    yaw = torch.tensor([70.0, -50.0])
    out = model(x, yaw) if model.dream is not None else model(x)
    assert out.shape == (2, model.feature_dim)
    assert model.feature_dim == MODELS.meta(name)["feature_dim"]
    out.pow(2).sum().backward()
    for pname, p in model.named_parameters():
        if not p.requires_grad:  # arcface_torch's fixed embedding-BN scale
            assert pname == "stem.features.weight"
            continue
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("name", [n for n in BUILDABLE if n.endswith("-dream")])
def test_dream_variant_records_gate_and_needs_yaw(name):
    model = create_model(name, gate="paper")
    assert model.config["gate"] == "paper"
    assert isinstance(model.dream, DreamBlock)
    with pytest.raises(ConfigError, match="yaw"):
        model.eval()(_batch(model, 1))


def test_gate_zero_is_exact_identity():
    torch.manual_seed(0)
    block = DreamBlock(16)
    with torch.no_grad():
        for p in block.parameters():
            p.add_(1.0)  # make the residual large so any leak would show
    mid = torch.randn(5, 16)
    out = block(mid, condition=torch.zeros(5))
    assert torch.equal(out, mid)
    partial = block(mid, condition=torch.tensor([0.0, 1.0, 0.0, 0.5, 0.0]))
    assert torch.equal(partial[[0, 2, 4]], mid[[0, 2, 4]])
    assert not torch.equal(partial[1], mid[1])


def test_gate_zero_identity_through_model():
    torch.manual_seed(0)
    model = create_model("resnet18-dream").eval()
    x = _batch(model)
    with torch.no_grad():
        assert torch.equal(model(x, condition=torch.zeros(2)), model.stem(x))


def test_dream_matches_formula():
    torch.manual_seed(0)
    block = DreamBlock(8, gate="code")
    mid = torch.randn(3, 8)
    yaw = torch.tensor([0.0, 45.0, -90.0])
    y = torch.sigmoid(10 * (yaw.abs() / 45 - 1)).unsqueeze(1)
    r = torch.relu(block.residual[2](torch.relu(block.residual[0](mid))))
    assert torch.allclose(block(mid, yaw), mid + y * r, atol=1e-6)


def test_dream_rejects_bad_gate_input():
    block = DreamBlock(4)
    mid = torch.zeros(2, 4)
    with pytest.raises(ConfigError, match="exactly one"):
        block(mid)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        block(mid, condition=torch.tensor([0.5, 1.5]))
    with pytest.raises(ConfigError, match="batch of 2"):
        block(mid, torch.zeros(3))
    with pytest.raises(ConfigError, match="NaN"):
        block(mid, torch.tensor([1.0, float("nan")]))


@pytest.mark.parametrize("name", SMALL)
def test_state_dict_round_trip(name):
    torch.manual_seed(1)
    a = create_model(name).eval()
    torch.manual_seed(2)
    b = create_model(name).eval()
    b.load_state_dict(a.state_dict())
    x = _batch(a)
    yaw = torch.tensor([10.0, 80.0])
    with torch.no_grad():
        assert torch.equal(a(x, yaw), b(x, yaw))


def test_unknown_option_and_model_are_clear():
    with pytest.raises(ConfigError, match="has no option"):
        create_model("resnet18", gate="code")
    with pytest.raises(ConfigError, match="Did you mean"):
        create_model("resnet19")


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["resnet18-dream", "iresnet18-dream"])
def test_forward_backward_on_gpu_matches_cpu(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    x, yaw = _batch(model), torch.tensor([20.0, 75.0])
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False  # cuDNN's default TF32 convs differ by ~1e-3
    try:
        with torch.no_grad():
            cpu = model(x, yaw)
            gpu = model.cuda()(x.cuda(), yaw.cuda())
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
    assert gpu.device.type == "cuda"
    # an untrained iresnet's eval output reaches ~1e7 (BN at its initial statistics): compare
    # relative to the output's scale
    assert (gpu.cpu() - cpu).abs().max() <= 1e-4 * cpu.abs().max()
    model.train()(x.cuda(), yaw.cuda()).sum().backward()
    assert all(p.grad is not None and p.grad.is_cuda for p in model.parameters() if p.requires_grad)


def test_preprocess_normalise_and_round_trip():
    from bench.models import Preprocess

    pre = Preprocess(input_size=(2, 3), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                     channel_order="BGR")
    rgb = torch.zeros(1, 2, 3, 3, dtype=torch.uint8)
    rgb[..., 0] = 255  # pure red
    x = pre.normalise(rgb)
    assert x.shape == (1, 3, 2, 3)
    assert torch.all(x[0, 2] == 1.0) and torch.all(x[0, 0] == -1.0)  # red moved to channel 2
    assert Preprocess.from_dict(pre.to_dict()) == pre
    with pytest.raises(ConfigError, match="align/resize"):
        pre.normalise(torch.zeros(1, 4, 4, 3, dtype=torch.uint8))
    with pytest.raises(ConfigError, match="channel_order"):
        Preprocess(channel_order="RBG")
    with pytest.raises(ConfigError, match="std"):
        Preprocess(std=(0.5, 0.0, 0.5))
    with pytest.raises(ConfigError, match="unknown preprocessing"):
        Preprocess.from_dict({"size": 3})
