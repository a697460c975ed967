"""Identification heads used only during training: plain softmax or ArcFace margin logits."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ClassifyConfig


class ArcFaceHead(nn.Module):
    """Additive angular margin (Deng et al., CVPR 2019): ``s * cos(theta + m)`` for the
    true class, ``s * cos(theta)`` for the others, on L2-normalised features and weights."""

    def __init__(self, dim: int, classes: int, scale: float = 32.0, margin: float = 0.5):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(classes, dim))
        nn.init.normal_(self.weight, std=0.01)
        self.scale, self.margin = float(scale), float(margin)

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # Angles near the margin need float32: autocast would run this linear in bf16.
        with torch.autocast(features.device.type, enabled=False):
            cos = F.linear(F.normalize(features.float()), F.normalize(self.weight.float()))
            return self._logits(cos, labels)

    def _logits(self, cos: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if labels is None or not self.training:
            return cos * self.scale
        cos = cos.clamp(-1 + 1e-7, 1 - 1e-7)
        target = cos.gather(1, labels[:, None])
        theta = torch.acos(target)
        # Beyond pi - m the margin would make the logit larger again: use the usual linear
        # extension cos(theta) - m * sin(m) there, which stays monotonic.
        with_margin = torch.where(theta + self.margin < math.pi, torch.cos(theta + self.margin),
                                  target - self.margin * math.sin(self.margin))
        return cos.scatter(1, labels[:, None], with_margin) * self.scale


class SoftmaxHead(nn.Linear):
    """The DREAM code's classifier: a linear layer over the (dropped-out) feature."""

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(features)


def make_head(cfg: ClassifyConfig, dim: int, classes: int) -> nn.Module:
    if cfg.head == "arcface":
        return ArcFaceHead(dim, classes, cfg.arcface_scale, cfg.arcface_margin)
    return SoftmaxHead(dim, classes)
