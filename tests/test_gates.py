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
