"""``bench detect DATA --out faces.csv``: run the detection stage on a dataset and say what
it found, one row per distinct (path, box) sample.

The detections land in the stage's per-image cache (``$BENCH_CACHE/detect``), so a later
``bench run``, ``bench yaw`` or ``bench align`` with the same detector reuses them.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._detect_options import LENIENT_IMAGES_OPTION, detector_options
from .yaw import FORMATS

if TYPE_CHECKING:  # numpy and pandas load with the command, not with `bench --help`
    import pandas as pd

# the command's help names the columns; importing bench.detect here would load numpy
# and OpenCV for `bench --help`
TABLE_COLUMNS = ("path", "box", "landmarks", "score", "n_faces", "landmark_source", "reason")


@click.command()
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="CSV to write: " + ",".join(TABLE_COLUMNS) + " (one row per sample).")
@detector_options
@click.option("--mode", type=click.Choice(["auto", "always"]), default="auto",
              show_default=True,
              help="auto: detect the samples without usable landmarks (as bench run does); "
                   "always: every sample but pre-aligned crops.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="Dataset layout, as for bench yaw.")
@LENIENT_IMAGES_OPTION
@click.option("--quiet", is_flag=True, help="No progress bar.")
def detect(data: Path, out: Path, detector: str, detector_model: str | None, mode: str,
           fmt: str, lenient: bool, quiet: bool) -> None:
    """Detect the faces of DATA (cached) and write the chosen face of every sample to --out."""
    from ..data.samples import unique_images
    from ..data.skipped import SkippedRows
    from ..detect import DetectOptions, complete_landmarks, create_detector, detection_table
    from ..fileio import atomic_write, check_output_file
    from .yaw import read_sample_set

    options = DetectOptions(detector=detector, model=detector_model, mode=mode)
    backend = create_detector(detector, detector_model)  # a bad name or model fails first
    skipped = SkippedRows(lenient=lenient)
    # --out is checked before the dataset is read and with its files, before the detection
    guard = functools.partial(check_output_file, out, inputs=(data, detector_model))
    sample_set = read_sample_set(data, fmt, skipped, guard)
    crops, _ = unique_images(sample_set.samples)
    start = time.perf_counter()
    frame, report = complete_landmarks(crops, options=options, detector=backend,
                                       progress=not quiet)
    seconds = time.perf_counter() - start
    table = detection_table(frame)
    with atomic_write(out) as f:
        table.to_csv(f, index=False)
    click.echo(summary_line(table, report, seconds, out))
    if report.failures:  # which ones, not only how many (the CSV has every reason)
        click.echo(f"no face: {report.failures_note()}", err=True)
    if report.exif_rotated:
        click.echo(f"warning: {report.exif_note()}", err=True)
    for error in skipped.errors:
        click.echo(f"skipped: {error}", err=True)


def summary_line(table: pd.DataFrame, report, seconds: float, out: Path) -> str:
    found, missed = report.found, len(report.failures)
    kept = len(table) - found - missed
    text = (f"{len(table)} samples -> {out}: {found} found, {missed} no face, {kept} kept "
            f"their own landmarks")
    if report.n_images:
        text += (f"; {report.n_images} images ({report.cache_hits} from the cache) in "
                 f"{seconds:.1f} s, {report.n_images / max(seconds, 1e-9):.1f} images/s")
    return text
