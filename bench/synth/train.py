"""``train/``: one folder per identity and a manifest in the generic CSV format.

``train/metadata.csv`` columns: ``path`` (relative to the CSV's folder), ``subject``,
``yaw``, ``pitch``, ``roll`` (degrees), ``landmarks`` ("x1 y1 ... x22 y22", the 22 points of
:mod:`bench.face3d`, self-occluded ones included), ``visible`` ("1 0 ...": not hidden by
the head itself) and ``box`` ("x y w h").
"""

from __future__ import annotations

import csv
from typing import IO

import numpy as np

from .config import SynthConfig
from .jobs import IdentityJob, IdentityResult, ImageJob
from .poses import web_yaws, with_tilt

PART = 1
FOLDER = "train"
COLUMNS = ("path", "subject", "yaw", "pitch", "roll", "landmarks", "visible", "box")


def subject_name(index: int, count: int) -> str:
    return f"s{index + 1:0{max(5, len(str(count)))}d}"


def plan(config: SynthConfig) -> list[IdentityJob]:
    part = config.train
    jobs = []
    for i in range(part.identities):
        rng = np.random.default_rng((config.seed, PART, i, 0))
        n = part.images_per_identity
        poses = with_tilt(rng, web_yaws(rng, n, part), config.difficulty)
        subject = subject_name(i, part.identities)
        images = tuple(ImageJob(f"{FOLDER}/{subject}/{k:04d}.jpg", pose,
                                (config.seed, PART, i, k + 1)) for k, pose in enumerate(poses))
        jobs.append(IdentityJob((config.seed, PART, i), images))
    return jobs


def numbers(values, fmt: str = "{:.2f}") -> str:
    return " ".join(fmt.format(v) for v in np.asarray(values).ravel())


class ManifestWriter:
    """Streams manifest rows as identities finish, so memory stays flat."""

    def __init__(self, stream: IO[str]):
        self._csv = csv.writer(stream, lineterminator="\n")
        self._csv.writerow(COLUMNS)
        self.rows = 0

    def add(self, job: IdentityJob, result: IdentityResult) -> None:
        for image, res in zip(job.images, result.images, strict=True):
            subject = image.path.split("/")[1]
            self._csv.writerow([
                image.path[len(FOLDER) + 1:], subject, f"{image.pose.yaw:.3f}",
                f"{image.pose.pitch:.3f}", f"{image.pose.roll:.3f}", numbers(res.landmarks),
                numbers(res.visible.astype(int), "{}"), numbers(res.box)])
            self.rows += 1
