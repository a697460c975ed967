"""Tiny models and data sets for the training tests (importable by spawned workers too).

``tinytest`` / ``tinytest-dream`` are registered on import: a two-conv stem (optionally
with batch norm) with 16-d features at 16x16 input, so a training step takes milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from torch import nn

from bench.models import MODELS, DreamBlock, FaceModel, Preprocess, register_model

TINY = "tinytest"
TINY_PREPROCESS = Preprocess(input_size=(16, 16), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                             template="celeba")
YAWS = (0.0, 5.0, -10.0, 15.0, 60.0, -70.0, 80.0, 30.0)


def _stem(norm: bool) -> nn.Module:
    layers = [nn.Conv2d(3, 8, 3, stride=2, padding=1)]
    layers += [nn.BatchNorm2d(8)] if norm else []
    layers += [nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
               nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 16)]
    return nn.Sequential(*layers)


def _tiny(*, norm: bool = True) -> FaceModel:
    return FaceModel(_stem(norm), 16, TINY_PREPROCESS, config={"family": "tiny"})


def _tiny_dream(*, norm: bool = True, gate: str = "code") -> FaceModel:
    return FaceModel(_stem(norm), 16, TINY_PREPROCESS, DreamBlock(16, gate),
                     config={"family": "tiny"})


if TINY not in MODELS:
    register_model(TINY, feature_dim=16, preprocess=TINY_PREPROCESS)(_tiny)
    register_model(f"{TINY}-dream", feature_dim=16, preprocess=TINY_PREPROCESS)(_tiny_dream)


def make_manifest(root: Path, identities: int = 4, per_identity: int = 8, size: int = 24,
                  seed: int = 0) -> Path:
    """Random JPEGs, one base pattern per identity plus noise; yaw cycles through YAWS."""
    rng = np.random.default_rng(seed)
    rows = ["path,subject,yaw"]
    for s in range(identities):
        base = rng.integers(0, 256, (size, size, 3))
        for i in range(per_identity):
            img = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
            path = root / f"id{s}" / f"{i:02d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), img)
            rows.append(f"id{s}/{i:02d}.jpg,id{s},{YAWS[i % len(YAWS)]}")
    manifest = root / "metadata.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


def tiny_config(**changes):
    """A CPU config that trains the tiny model in well under a second per epoch."""
    from bench.train import preset

    base = {"classify.epochs": 3, "classify.batch_size": 8, "classify.warmup_epochs": 0.5,
            "classify.dropout": 0.3, "stitch.iterations": 200, "stitch.batch_size": 8,
            "stitch.lr": 0.01, "progress": False, "workers": 1, "input_size": None}
    return preset("cpu", "cpu", **{**base, **changes})
