"""The DREAM block: ``f = mid + Y * R(mid)`` with ``R`` two fc+ReLU layers (CVPR 2018).

Module names follow the authors' code (``fc1``/``fc2`` become ``residual.0``/``residual.2``)
so that their checkpoints map onto it one to one.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .gates import DEFAULT_GATE, GATES


def _check(ok: torch.Tensor, message: str) -> None:
    """Validate a tensor condition without a host sync on the GPU: reading a CUDA bool in
    Python would stall every training step, so there the check is an async device assert."""
    if ok.is_cuda:
        torch._assert_async(ok, message)
    elif not bool(ok):
        raise ConfigError(message)


class DreamBlock(nn.Module):
    """Residual equivariant mapping gated by yaw (or by a generic condition in [0, 1]).

    ``forward(mid, yaw)`` gates with ``GATES[gate](|yaw|)``; ``forward(mid, condition=c)``
    uses ``c`` as the gate value directly. Exactly one of the two must be given, so the gate
    input is always explicit.
    """

    def __init__(self, dim: int, gate: str = DEFAULT_GATE):
        super().__init__()
        if int(dim) < 1:
            raise ConfigError(f"DreamBlock dim must be positive, got {dim}")
        GATES.get(gate)  # fail now, with did-you-mean, rather than at the first forward
        self.dim = int(dim)
        self.gate = gate
        self.residual = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU())

    def gate_weight(self, mid: torch.Tensor, yaw: torch.Tensor | None = None,
                    condition: torch.Tensor | None = None) -> torch.Tensor:
        """The ``(N, 1)`` gate value for a batch, in float32 at least: under autocast the
        features are bf16, whose 8 bits would round the yaw (47.3 to 47.25) and the gate."""
        if (yaw is None) == (condition is None):
            raise ConfigError("DreamBlock needs exactly one of yaw (degrees) or condition ([0, 1])")
        dtype = torch.promote_types(mid.dtype, torch.float32)
        if yaw is not None:
            value = GATES.get(self.gate)(
                torch.as_tensor(yaw).to(device=mid.device, dtype=dtype).abs())
        else:
            value = torch.as_tensor(condition).to(device=mid.device, dtype=dtype)
            _check(~torch.any((value < 0) | (value > 1)), "condition values must lie in [0, 1]")
        value = value.reshape(-1)
        if value.shape[0] != mid.shape[0]:
            raise ConfigError(f"gate input has {value.shape[0]} values for a batch of {mid.shape[0]}")
        _check(~torch.isnan(value).any(),
               "yaw/condition contains NaN: estimate yaw first (bench yaw)")
        return value.unsqueeze(1)

    def forward(self, mid: torch.Tensor, yaw: torch.Tensor | None = None, *,
                condition: torch.Tensor | None = None) -> torch.Tensor:
        weight = self.gate_weight(mid, yaw, condition)
        # Frontal faces (weight 0) must pass through bit-exactly: no arithmetic on `mid` there.
        return torch.where(weight == 0, mid, mid + weight * self.residual(mid))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, gate={self.gate!r}"
