import math

import pytest
import torch

from bench.errors import ConfigError
from bench.models.gates import GATES, gate_values


def test_code_gate_values():
    y = gate_values(torch.tensor([0.0, 45.0, -45.0, 90.0]), "code")
    assert y[0].item() == pytest.approx(1 / (1 + math.exp(10)), rel=1e-5)
    assert y[1].item() == pytest.approx(0.5)
    assert y[2].item() == pytest.approx(0.5)
    assert y[3].item() == pytest.approx(1 / (1 + math.exp(-10)), rel=1e-6)


def test_paper_gate_values():
    y = gate_values(torch.tensor([0.0, 90.0, -90.0]), "paper")
    assert y[0].item() == pytest.approx(1 / (1 + math.e), abs=1e-6)  # 0.269
    assert y[1].item() == pytest.approx(1 / (1 + math.exp(-1)), abs=1e-6)  # 0.731
    assert y[2].item() == pytest.approx(y[1].item())


@pytest.mark.parametrize("name", GATES.names())
def test_gates_are_monotone_in_unit_interval_and_even(name):
    yaw = torch.linspace(0, 90, 91)
    y = GATES.get(name)(yaw)
    assert torch.all((y >= 0) & (y <= 1))
    assert torch.all(y[1:] > y[:-1])
    assert torch.equal(gate_values(-yaw, name), gate_values(yaw, name))


def test_unknown_gate_suggests():
    with pytest.raises(ConfigError, match="Did you mean code"):
        gate_values(torch.zeros(1), "cod")


def test_the_gate_is_computed_in_float32_for_half_precision_features():
    """Bug: under CUDA autocast the yaw took the features' bf16 dtype before the gate, so
    47.3 degrees became 47.25 and the gate at 44 degrees read 0.441 instead of 0.445."""
    from bench.models import DreamBlock

    block = DreamBlock(4)
    yaw = torch.tensor([44.0, 46.0, 47.3])
    exact = block.gate_weight(torch.zeros(3, 4), yaw).reshape(-1)
    half = block.gate_weight(torch.zeros(3, 4, dtype=torch.bfloat16), yaw).reshape(-1)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, exact, rtol=0, atol=1e-7)
