"""Gate functions ``Y``: map |yaw| in degrees to a weight in [0, 1] for the DREAM residual.

Both registered gates are centred at 45 degrees (see ``shared/design/dream.md``). The gate's
input may be any scalar nuisance in principle; these two are defined on yaw. A model records
the gate that ran in its ``config["gate"]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..registry import Registry

GateFn = Callable[[torch.Tensor], torch.Tensor]

GATES: Registry[GateFn] = Registry("gate")

#: The gate a DREAM block uses unless told otherwise.
DEFAULT_GATE = "code"


@GATES.register("code")
def code_gate(abs_yaw_deg: torch.Tensor) -> torch.Tensor:
    """The authors' code (stitching/branch_util.py): ``sigmoid(10 * (|yaw| / 45 - 1))``.

    About 0 for a frontal face, 0.5 at 45 degrees, about 1 at 90.
    """
    return torch.sigmoid(10.0 * (abs_yaw_deg.abs() / 45.0 - 1.0))


@GATES.register("paper")
def paper_gate(abs_yaw_deg: torch.Tensor) -> torch.Tensor:
    """The paper's text: ``sigmoid(4 / pi * |yaw_rad| - 1)``; 0.27 frontal, 0.73 at 90 degrees."""
    return torch.sigmoid(4.0 / math.pi * torch.deg2rad(abs_yaw_deg.abs()) - 1.0)


def gate_values(yaw_deg: torch.Tensor, gate: str = DEFAULT_GATE) -> torch.Tensor:
    """Evaluate the named gate on a yaw tensor (degrees, any sign)."""
    return GATES.get(gate)(yaw_deg.abs())
