"""``FaceModel``: a stem (images -> features) with an optional DREAM block on top."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from .dream import DreamBlock
from .preprocess import Preprocess


class FaceModel(nn.Module):
    """``forward(x, yaw)`` = ``stem(x)`` or, with a DREAM block, ``dream(stem(x), yaw)``.

    ``x`` is a float ``(N, 3, H, W)`` batch prepared by :attr:`preprocess`; ``yaw`` an ``(N,)``
    tensor in degrees (required when :attr:`dream` is set; ignored otherwise). ``config``
    holds everything needed to rebuild the model with :func:`bench.models.create_model`
    (registered name, factory options, the gate that runs).
    """

    def __init__(self, stem: nn.Module, feature_dim: int, preprocess: Preprocess,
                 dream: DreamBlock | None = None, config: dict[str, Any] | None = None):
        super().__init__()
        if dream is not None and dream.dim != feature_dim:
            raise ConfigError(f"DREAM block dim {dream.dim} != stem feature size {feature_dim}")
        self.stem = stem
        self.dream = dream
        self.feature_dim = int(feature_dim)
        self.preprocess = preprocess
        self.config: dict[str, Any] = dict(config or {})
        self.config["gate"] = None if dream is None else dream.gate

    def forward(self, x: torch.Tensor, yaw: torch.Tensor | None = None, *,
                condition: torch.Tensor | None = None) -> torch.Tensor:
        mid = self.stem(x)
        if self.dream is None:
            return mid
        if yaw is None and condition is None:
            raise ConfigError(f"model {self.config.get('name', '?')!r} has a DREAM block: "
                              "pass yaw (degrees) or condition ([0, 1])")
        return self.dream(mid, yaw, condition=condition)

    def extra_repr(self) -> str:
        return f"feature_dim={self.feature_dim}, preprocess={self.preprocess.describe()!r}"
