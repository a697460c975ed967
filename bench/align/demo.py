"""Regenerate ``docs/img/align_preview.png``: ``python -m bench.align.demo OUT.png``.

Synthetic faces from the generator (frontal and profile, with each landmark's
self-occlusion) are pasted into larger frames at a random rotation, scale and position,
then aligned to ``arcface112`` by the same code ``bench align`` runs. The rows show the
cases the alignment distinguishes: five points (``template``, insightface's fit), a profile
whose five points are all given (``template`` still), a profile with its hidden eye
removed and its yaw known or unknown (``posed``), and a sample with a box only (``box``
fallback).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ..face3d import FIVE_POINT
from .api import AlignReport, align_batches
from .preview import write_preview
from .transform import apply

FRAME_HW = (300, 380)


def _synth(root: Path) -> Path:
    from ..synth.config import preset
    from ..synth.generate import generate

    config = preset("small").replace(**{
        "train.identities": 4, "train.images_per_identity": 8, "train.profile_fraction": 0.5,
        "cfp.identities": 4, "cfp.splits": 2, "cfp.frontal": 2, "cfp.profile": 1,
        "ijba.subjects": 6, "ijba.stills": 2, "ijba.videos": 1, "ijba.frames": 1,
        "ijba.splits": 1})
    generate(root, config, workers=1, force=True)
    return root / "train"


def _numbers(text: str) -> np.ndarray:
    return np.asarray(text.split(), dtype=np.float64)


def demo_samples(train: Path, out: Path, seed: int = 0) -> pd.DataFrame:
    """Frames with the demo's cases, written under ``out``; returns their sample rows."""
    rows = pd.read_csv(train / "metadata.csv")
    yaw = rows["yaw"].abs().to_numpy()
    pupils = np.stack([_numbers(v)[list(FIVE_POINT[:2])] for v in rows["visible"]])
    one_eye = np.flatnonzero((yaw > 60) & (pupils.sum(1) == 1))
    frontal = np.flatnonzero(yaw < 25)[:3]
    profiles = np.setdiff1d(np.flatnonzero(yaw > 60), one_eye[:2])[:2]
    box_only = np.flatnonzero((yaw > 25) & (yaw < 60))[:1]
    if len(one_eye) < 2 or len(profiles) < 2 or len(frontal) < 3:  # pragma: no cover
        raise RuntimeError("the synthetic set has too few frontal or profile images")
    # (row, all points given?, yaw known?); None: no points at all
    cases = ([(i, True, True) for i in (*frontal, *profiles)]
             + [(one_eye[0], False, True), (one_eye[1], False, False)]
             + [(i, None, True) for i in box_only])
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for k, (i, all_points, yaw_known) in enumerate(cases):
        crop = cv2.imread(str(train / rows["path"][i]))
        scale, angle = rng.uniform(1.3, 2.0), rng.uniform(-30, 30)
        m = cv2.getRotationMatrix2D((55.5, 55.5), angle, scale)
        m[:, 2] += np.array(FRAME_HW[::-1]) / 2 - 55.5 + rng.uniform(-40, 40, 2)
        background = rng.uniform(40, 200, (*FRAME_HW, 3)).astype(np.uint8)
        background = cv2.GaussianBlur(background, (0, 0), 6)
        frame = cv2.warpAffine(crop, m, FRAME_HW[::-1], flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_TRANSPARENT, dst=background)
        path = out / f"frame_{k:02d}.jpg"
        cv2.imwrite(str(path), frame)
        points = apply(m, _numbers(rows["landmarks"][i]).reshape(-1, 2))[list(FIVE_POINT)]
        visible = _numbers(rows["visible"][i]).astype(bool)[list(FIVE_POINT)]
        if all_points is False:
            points[~visible] = np.nan
        x, y, w, h = _numbers(rows["box"][i])
        corners = apply(m, np.array([[x, y], [x + w, y], [x, y + h], [x + w, y + h]]))
        lo, hi = corners.min(0), corners.max(0)
        records.append({
            "path": str(path), "subject": rows["subject"][i],
            "yaw": rows["yaw"][i] if yaw_known else np.nan,
            "landmarks": None if all_points is None else points.astype(np.float32),
            "box": np.array([*lo, *(hi - lo)], np.float32)})
    return pd.DataFrame(records)


def render_demo(out: str | Path) -> AlignReport:
    """Generate the frames in a temporary folder, align them, write the preview PNG."""
    with tempfile.TemporaryDirectory() as tmp:
        samples = demo_samples(_synth(Path(tmp) / "synth"), Path(tmp) / "frames")
        stream = align_batches(samples, "arcface112", "cpu", warn=False)
        for _ in stream:
            pass
        write_preview(stream, out, n=len(samples), columns=3)
    return stream.report


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m bench.align.demo OUT.png")
    print(render_demo(argv[0]).summary())
    print(f"wrote {argv[0]}")


if __name__ == "__main__":
    main()
