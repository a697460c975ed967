"""Face models: a registry of stems (ResNet, iResNet, ONNX) and their DREAM variants.

Importing this package registers every model; there is nothing else to trigger.

>>> model = create_model("resnet18-dream")          # doctest: +SKIP
>>> model(model.preprocess.normalise(images), yaw)  # doctest: +SKIP
"""

from __future__ import annotations

from . import dlib_stem, iresnet, onnx_stem, resnet  # noqa: F401  (each registers its factories)
from .dream import DreamBlock
from .face_model import FaceModel
from .factory import (
    MODELS,
    create_model,
    factory_options,
    frozen_stem,
    model_file,
    register_model,
)
from .gates import DEFAULT_GATE, GATES
from .preprocess import Preprocess

__all__ = ["MODELS", "create_model", "register_model", "factory_options", "frozen_stem",
           "model_file", "Preprocess",
           "FaceModel", "DreamBlock", "GATES", "DEFAULT_GATE"]
