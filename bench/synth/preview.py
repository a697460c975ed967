"""A preview grid: identities (rows) x yaws (columns), with the yaw printed above each column."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import DataError
from ..fileio import atomic_write
from . import train
from .config import SynthConfig
from .identity import make_identity
from .render import IMAGE_SIZE, Pose, neutral_nuisance, render, sample_nuisance

DEFAULT_YAWS = (-90, -60, -30, 0, 30, 60, 90)


def preview_grid(config: SynthConfig | None = None, identities: int = 5,
                 yaws=DEFAULT_YAWS, nuisance: bool = True) -> np.ndarray:
    """(H, W, 3) uint8 RGB grid of the training part's first identities at the given yaws."""
    config = config if config is not None else SynthConfig()
    gap, header = 4, 18
    size = IMAGE_SIZE
    height = header + identities * (size + gap)
    width = len(yaws) * (size + gap) - gap
    grid = np.full((height, width, 3), 255, dtype=np.uint8)
    for c, yaw in enumerate(yaws):
        cv2.putText(grid, f"yaw {yaw:+d}", (c * (size + gap) + 24, 13), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for r in range(identities):
        identity = make_identity((config.seed, train.PART, r), config.difficulty)
        for c, yaw in enumerate(yaws):
            rng = np.random.default_rng((config.seed, 99, r, c))
            nz = sample_nuisance(rng, config.difficulty) if nuisance else neutral_nuisance()
            img = render(identity, Pose(float(yaw)), nz).image
            y0, x0 = header + r * (size + gap), c * (size + gap)
            grid[y0:y0 + size, x0:x0 + size] = img
    return grid


def render_preview(path: str | Path, config: SynthConfig | None = None, identities: int = 5,
                   yaws=DEFAULT_YAWS, nuisance: bool = True) -> Path:
    """Write :func:`preview_grid` as a PNG (atomically) and return its path."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise DataError("the preview is written as PNG: give a .png file name", path)
    if identities < 1 or not yaws:
        raise DataError("the preview needs at least one identity and one yaw", path)
    grid = preview_grid(config, identities, yaws, nuisance)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    assert ok
    with atomic_write(path, "wb", encoding=None) as f:
        f.write(buf.tobytes())
    return path
