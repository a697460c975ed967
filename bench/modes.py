"""Training modes and the ``-dream`` naming rule, in one place.

The CLI, the runner, ``bench compare``, training and the model registry read them here (a
light module: listing choices imports nothing heavy). A DREAM model is its stem's name plus
``-dream``; ``naive`` trains the stem, the other modes train the DREAM model.
"""

from __future__ import annotations

MODES = ("naive", "stitch", "end2end", "retrain")
#: The mode of a model that is not trained here (given weights, a packaged model).
PRETRAINED = "pretrained"
RUN_MODES = (*MODES, PRETRAINED)
#: Modes that train a DREAM block (compare them with the naive stem on the same pairs).
DREAM_MODES = ("stitch", "end2end", "retrain")
DREAM_SUFFIX = "-dream"
#: The modes of a stem trained elsewhere (a packaged model, an ONNX file): the stem as it is
#: (naive) and a DREAM block stitched onto it; end2end and retrain would train the stem.
FROZEN_STEM_MODES = ("naive", "stitch")


def is_dream(model: str) -> bool:
    return model.endswith(DREAM_SUFFIX)


def stem_name(model: str) -> str:
    """``resnet18`` for ``resnet18-dream`` (and for ``resnet18``)."""
    return model.removesuffix(DREAM_SUFFIX)


def dream_name(model: str) -> str:
    """``resnet18-dream`` for ``resnet18`` (and for ``resnet18-dream``)."""
    return stem_name(model) + DREAM_SUFFIX


def model_for_mode(stem: str, mode: str) -> str:
    """The registered model a mode trains: the stem for naive, the DREAM model otherwise."""
    return stem if mode == "naive" else dream_name(stem)


def default_mode(model: str) -> str:
    """The mode a model trains in unless told: retrain for a DREAM model, naive for a stem."""
    return "retrain" if is_dream(model) else "naive"
