"""``bench detect DATA --out faces.csv``: run the detection stage on a dataset and say what
it found, one row per distinct (path, box) sample.

The detections land in the stage's per-image cache (``$BENCH_CACHE/detect``), so a later
``bench run``, ``bench yaw`` or ``bench align`` with the same detector reuses them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .yaw import FORMATS

if TYPE_CHECKING:  # numpy and pandas load with the command, not with `bench --help`
    import pandas as pd

TABLE_COLUMNS = ("path", "box", "landmarks", "score", "n_faces", "landmark_source", "reason")


@click.command()
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="CSV to write: " + ",".join(TABLE_COLUMNS) + " (one row per sample).")
@click.option("--detector", default="yunet", show_default=True,
              help="Face detector: yunet (5 points, extra 'sface'), insightface (SCRFD, "
                   "needs --detector-model), dlib (68 points, extra 'dlib').")
@click.option("--detector-model", default=None, type=click.Path(),
              help="The detector's model file or pack folder (insightface: det_10g.onnx "
                   "or its folder).")
@click.option("--mode", type=click.Choice(["auto", "always"]), default="auto",
              show_default=True,
              help="auto: detect the samples without usable landmarks (as bench run does); "
                   "always: every sample but pre-aligned crops.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="Dataset layout, as for bench yaw.")
@click.option("--lenient", is_flag=True, help="Skip malformed dataset rows (each is reported).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def detect(data: Path, out: Path, detector: str, detector_model: str | None, mode: str,
           fmt: str, lenient: bool, quiet: bool) -> None:
    """Detect the faces of DATA (cached) and write the chosen face of every sample to --out."""
    from ..data.samples import unique_images
    from ..data.skipped import SkippedRows
    from ..detect import DetectOptions, complete_landmarks, create_detector
    from ..fileio import atomic_write
    from .yaw import read_samples

    options = DetectOptions(detector=detector, model=detector_model, mode=mode)
    backend = create_detector(detector, detector_model)  # a bad name or model fails first
    skipped = SkippedRows(lenient=lenient)
    crops, _ = unique_images(read_samples(data, fmt, skipped))
    start = time.perf_counter()
    frame, report = complete_landmarks(crops, options=options, detector=backend,
                                       progress=not quiet)
    seconds = time.perf_counter() - start
    table = detection_table(frame, report, detections(frame, backend, options))
    with atomic_write(out) as f:
        table.to_csv(f, index=False)
    click.echo(summary_line(table, report, seconds, out))
    for error in skipped.errors:
        click.echo(f"skipped: {error}", err=True)


def detections(frame: pd.DataFrame, detector, options) -> dict:
    """Path -> all faces found in it, for the samples the stage detected: read back from
    the cache the stage has just filled (the stage keeps only the chosen face)."""
    import numpy as np

    from ..detect import detect_images

    detected = np.isin(frame["landmark_source"].to_numpy(dtype=object), ("detection", "none"))
    paths = sorted(set(frame["path"].to_numpy(dtype=object)[detected].astype(str)))
    found, _ = detect_images(paths, detector, options=options)
    return dict(zip(paths, found, strict=True))


def detection_table(frame: pd.DataFrame, report, faces: dict) -> pd.DataFrame:
    """One row per sample of ``frame`` (the output of ``complete_landmarks`` in mode auto or
    always): :data:`TABLE_COLUMNS`. ``faces``: path -> :class:`~bench.detect.Faces` of the
    samples it detected.

    ``box`` and ``score`` are the chosen face's (the dataset's box for samples not
    detected); ``landmarks`` the five points ``x1 y1 ... x5 y5`` in the ``five`` scheme
    order (pupil_r, pupil_l, nose_tip, mouth_corner_r, mouth_corner_l), empty when the
    sample has no such five; ``n_faces`` the faces in its image; ``reason`` why none was
    chosen. Pure: belongs in ``bench.detect`` next to the stage.
    """
    import numpy as np
    import pandas as pd

    from ..align.schemes import canonical_landmarks
    from ..detect import choose_face
    from ..face3d import FIVE_POINT

    points, _ = canonical_landmarks([v if isinstance(v, np.ndarray) else None
                                     for v in frame["landmarks"]])
    five = points[:, list(FIVE_POINT)]
    sources = frame["landmark_source"].to_numpy(dtype=object)
    # The stage lists the samples without a face in row order, each with its reason.
    reasons = iter(f["reason"] for f in report.failures)
    rows = []
    for i, (path, box) in enumerate(zip(frame["path"], frame["box"], strict=True)):
        row = {"path": path, "box": _text(box, ".1f"), "landmarks": _text(five[i], ".2f"),
               "score": "", "n_faces": "", "landmark_source": sources[i], "reason": ""}
        if sources[i] == "detection":
            found = faces[str(path)]
            # The stage filled a missing box with the chosen face's: that box (or the
            # dataset's, which chose it) picks the same face again.
            k, _ = choose_face(found, np.asarray(box, np.float64))
            # all from the cache's copy: the stage's first run has the unrounded points,
            # which would make this table differ (by 0.01 px) between a first and a later run
            row.update(box=_text(found.boxes[k], ".1f"),
                       landmarks=_text(found.points[k, list(FIVE_POINT)], ".2f"),
                       score=f"{found.scores[k]:.4f}", n_faces=len(found))
        elif sources[i] == "none" and str(path) in faces:
            row.update(n_faces=len(faces[str(path)]), reason=next(reasons, "no face chosen"))
        rows.append(row)
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def _text(values, fmt: str) -> str:
    import numpy as np

    if not isinstance(values, np.ndarray) or not np.isfinite(values).all():
        return ""
    return " ".join(f"{v:{fmt}}" for v in np.asarray(values).ravel())


def summary_line(table: pd.DataFrame, report, seconds: float, out: Path) -> str:
    counts = table["landmark_source"].value_counts()
    found, missed = int(counts.get("detection", 0)), int(counts.get("none", 0))
    kept = len(table) - found - missed
    text = (f"{len(table)} samples -> {out}: {found} found, {missed} no face, {kept} kept "
            f"their own landmarks")
    if report.n_images:
        text += (f"; {report.n_images} images ({report.cache_hits} from the cache) in "
                 f"{seconds:.1f} s, {report.n_images / max(seconds, 1e-9):.1f} images/s")
    return text
