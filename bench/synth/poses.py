"""Yaw/pitch/roll distributions of the three parts (degrees, :mod:`bench.face3d` convention)."""

from __future__ import annotations

import numpy as np

from .config import Difficulty, TrainPart
from .render import Pose


def _signs(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.where(rng.random(n) < 0.5, -1.0, 1.0)


def web_yaws(rng: np.random.Generator, n: int, part: TrainPart) -> np.ndarray:
    """A web-like, frontal-heavy yaw sample of one identity: most |yaw| < 30, few beyond 60,
    and ``profile_fraction`` of the images (at least one) forced into 60..90."""
    n_profile = max(1, int(round(part.profile_fraction * n)))
    bulk = np.abs(rng.normal(0.0, part.frontal_std, n - n_profile))
    wide = rng.random(bulk.size) < part.wide_fraction
    bulk = np.where(wide, rng.uniform(0, 90, bulk.size), bulk)
    profile = rng.uniform(60, 90, n_profile)
    yaws = np.minimum(np.concatenate([bulk, profile]), 90.0) * _signs(rng, n)
    return yaws[rng.permutation(n)]


def wild_yaws(rng: np.random.Generator, n: int) -> np.ndarray:
    """IJB-A-like: half near-frontal, half spread over the whole range."""
    bulk = np.abs(rng.normal(0.0, 25.0, n))
    spread = rng.uniform(0, 90, n)
    return np.minimum(np.where(rng.random(n) < 0.5, bulk, spread), 90.0) * _signs(rng, n)


def uniform_yaws(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    return rng.uniform(lo, hi, n) * _signs(rng, n)


def with_tilt(rng: np.random.Generator, yaws: np.ndarray, d: Difficulty) -> list[Pose]:
    """Poses with small pitch and roll added to the given yaws."""
    pitch = np.clip(rng.normal(0, d.pitch_std, yaws.size), -3 * d.pitch_std, 3 * d.pitch_std)
    roll = np.clip(rng.normal(0, d.roll_std, yaws.size), -3 * d.roll_std, 3 * d.roll_std)
    return [Pose(round(float(y), 3), round(float(p), 3), round(float(r), 3))
            for y, p, r in zip(yaws, pitch, roll, strict=True)]
