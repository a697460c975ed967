"""Training: naive, stitch, end2end and end2end+retrain, resumable, distributed with torchrun.

Entry point: :func:`train` (``bench train`` and the runner call it)::

    from bench.train import preset, train
    result = train("resnet18-dream", "retrain", "synth/train", config=preset(device="cpu"))
    model = result.load()          # create_model(result.model_name, weights=result.checkpoint)

Module map: ``config`` (dataclasses, presets, hash), ``data`` (aligned uint8 crops, sampler),
``heads`` (softmax, ArcFace), ``loop`` (identification training), ``stitch`` (the DREAM block
on cached features), ``distributed`` (torchrun), ``modes`` (the four modes and the cache).
"""

from .config import PRESETS, ClassifyConfig, StitchConfig, TrainConfig, preset
from .modes import MODES, TrainResult, find_finished, model_names, run_key, stage_model, train

__all__ = ["MODES", "PRESETS", "ClassifyConfig", "StitchConfig", "TrainConfig", "TrainResult",
           "find_finished", "model_names", "preset", "run_key", "stage_model", "train"]
