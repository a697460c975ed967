"""iResNet-18/34/50/100 stems, state-dict compatible with insightface arcface_torch.

Module names and shapes match ``recognition/arcface_torch/backbones/iresnet.py`` so that a
``backbone.pth`` from arcface_torch loads as is: ``conv1, bn1, prelu, layer1..4, bn2, fc,
features``; blocks ``bn1, conv1, bn2, prelu, conv2, bn3, downsample``. As there, the final
``fc`` flattens a 7x7 map (input must be 112x112), the output is a 512-d embedding after a
BatchNorm1d whose scale is fixed at 1 (``features.weight`` does not train).
Preprocessing is insightface's: ArcFace five-point template, RGB, ``(x/255 - 0.5) / 0.5``,
flip test at evaluation.
"""

from __future__ import annotations

import torch
from torch import nn

from .dream import DreamBlock
from .face_model import FaceModel
from .factory import register_pair
from .preprocess import Preprocess

ARCFACE_PREPROCESS = Preprocess(input_size=(112, 112), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                                channel_order="RGB", template="arcface112", flip_test=True)

_LAYERS = {
    "iresnet18": [2, 2, 2, 2],
    "iresnet34": [3, 4, 6, 3],
    "iresnet50": [3, 4, 14, 3],
    "iresnet100": [3, 13, 30, 3],
}
_BN_EPS = 1e-5
_FINAL_MAP = 7 * 7  # 112 / 2**4


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class IBasicBlock(nn.Module):
    """Pre-activation-style block of iResNet: BN-conv-BN-PReLU-conv(stride)-BN + shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=_BN_EPS)
        self.conv1 = _conv3x3(cin, cout)
        self.bn2 = nn.BatchNorm2d(cout, eps=_BN_EPS)
        self.prelu = nn.PReLU(cout)
        self.conv2 = _conv3x3(cout, cout, stride)
        self.bn3 = nn.BatchNorm2d(cout, eps=_BN_EPS)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(cout, eps=_BN_EPS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class IResNetStem(nn.Module):
    def __init__(self, arch: str, feature_dim: int = 512, dropout: float = 0.0):
        super().__init__()
        self.arch = arch
        self.conv1 = _conv3x3(3, 64)
        self.bn1 = nn.BatchNorm2d(64, eps=_BN_EPS)
        self.prelu = nn.PReLU(64)
        widths = (64, 128, 256, 512)
        cin = 64
        for i, (width, blocks) in enumerate(zip(widths, _LAYERS[arch], strict=True), start=1):
            layer = [IBasicBlock(cin, width, stride=2)]
            layer += [IBasicBlock(width, width) for _ in range(blocks - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*layer))
            cin = width
        self.bn2 = nn.BatchNorm2d(512, eps=_BN_EPS)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(512 * _FINAL_MAP, feature_dim)
        self.features = nn.BatchNorm1d(feature_dim, eps=_BN_EPS)
        # arcface_torch initialisation; the embedding BN's scale stays 1, as there.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.ones_(self.features.weight)
        self.features.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


def _create(arch: str, gate: str | None, dropout: float) -> FaceModel:
    stem = IResNetStem(arch, 512, dropout)
    dream = None if gate is None else DreamBlock(512, gate)
    return FaceModel(stem, 512, ARCFACE_PREPROCESS, dream,
                     config={"family": "iresnet", "arch": arch})


for _arch in _LAYERS:
    register_pair(_arch, lambda gate, *, _a=_arch, dropout: _create(_a, gate, dropout),
                  options={"dropout": 0.0}, feature_dim=512, preprocess=ARCFACE_PREPROCESS,
                  description=f"{_arch} (arcface_torch backbone.pth compatible), 512-d")
