"""ResNet-18/34/50 stems in the DREAM code's form: torchvision trunk, pooled, fc to 256-d.

The authors' ``ResNet.py`` is torchvision's ResNet with its classifier replaced by
``feature = Linear(512 * expansion, 256)``; their classifier ``fc`` sits on top of the
(DREAM-mapped) feature and is a training head, not part of the stem. The module names here
are torchvision's plus ``feature``, so torchvision ImageNet state dicts and the authors'
checkpoints load without renaming the trunk.

Input size: the DREAM code feeds 224x224 crops of CelebA-aligned faces; the harness's faces are
112x112. We keep torchvision's stem (7x7 stride-2 conv + max-pool) at 112x112, which leaves a
4x4 map before pooling: it keeps ImageNet/DREAM weights usable unchanged, and the adaptive
average pool makes any input size work (the authors' fixed ``AvgPool2d(7)`` only fits 224).
Normalisation follows the DREAM code: ``ToTensor()`` only, i.e. mean 0, std 1 on x/255
(pass ``preprocess={"mean": ..., "std": ...}`` to ``create_model`` for ImageNet weights).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from .dream import DreamBlock
from .face_model import FaceModel
from .factory import register_pair
from .preprocess import Preprocess

DREAM_PREPROCESS = Preprocess(input_size=(112, 112), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                              channel_order="RGB", template="celeba", flip_test=False)

_ARCH = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
}


class ResNetStem(ResNet):
    """torchvision ResNet trunk -> global average pool -> ``feature`` (Linear to ``dim``)."""

    def __init__(self, arch: str, feature_dim: int = 256):
        block, layers = _ARCH[arch]
        super().__init__(block, layers)
        del self.fc  # the ImageNet classifier; DREAM's features come from `feature`
        self.feature = nn.Linear(512 * block.expansion, feature_dim)
        self.arch = arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.feature(torch.flatten(self.avgpool(x), 1))


def _create(arch: str, feature_dim: int, gate: str | None) -> FaceModel:
    stem = ResNetStem(arch, feature_dim)
    dream = None if gate is None else DreamBlock(feature_dim, gate)
    return FaceModel(stem, feature_dim, DREAM_PREPROCESS, dream,
                     config={"family": "resnet", "arch": arch})


for _arch in _ARCH:
    register_pair(_arch, lambda gate, *, _a=_arch, feature_dim: _create(_a, feature_dim, gate),
                  options={"feature_dim": 256}, feature_dim=256, preprocess=DREAM_PREPROCESS,
                  description=f"{_arch} stem (DREAM code form), 256-d")
