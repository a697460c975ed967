"""One synthetic person: 3D head shape and painted albedo, drawn from a seed."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from ..face3d import MIRROR
from .albedo import Appearance, paint_texture, sample_appearance
from .config import Difficulty
from .head import Grid, Head, build_head, make_grid, sample_shape


@dataclass(frozen=True)
class Identity:
    head: Head
    texture: np.ndarray        # (rows, cols, 3) float32 albedo on the head's grid
    appearance: Appearance

    @property
    def landmarks(self) -> np.ndarray:
        return self.head.shape.landmarks


@lru_cache(maxsize=1)
def default_grid() -> Grid:
    return make_grid()


def make_identity(seed, difficulty: Difficulty = Difficulty(), symmetric: bool = False) -> Identity:
    """Draw an identity from ``seed`` (anything ``np.random.default_rng`` takes).

    ``symmetric`` mirrors shape and albedo onto themselves and drops the marks: used by tests
    that compare an image at yaw ``y`` with the flipped image at ``-y``.
    """
    rng = np.random.default_rng(seed)
    masculine = float(rng.random())
    shape = sample_shape(rng, difficulty.shape_spread, masculine)
    appearance = sample_appearance(rng, masculine, difficulty.albedo_spread, difficulty.marks)
    if symmetric:
        lm = shape.landmarks
        mirrored = lm[list(MIRROR)] * np.array([-1.0, 1.0, 1.0])
        shape = replace(shape, landmarks=(lm + mirrored) / 2)
        appearance = replace(appearance, marks=np.zeros((0, 4)))
    grid = default_grid()
    head = build_head(shape, grid)
    texture = paint_texture(head, appearance, rng)
    if symmetric:
        # Column k mirrors to column (cols - k) mod cols (azimuth u -> -u).
        flip = (-np.arange(grid.cols)) % grid.cols
        texture = (texture + texture[:, flip]) / 2
        points = head.points.copy()
        points = (points + points[:, flip] * np.array([-1.0, 1.0, 1.0])) / 2
        head = replace(head, points=points)
    return Identity(head=head, texture=texture, appearance=appearance)
