"""``bench yaw DATA --out yaw.csv``: estimate and cache head pose for every image of a dataset."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import click

from ..readers import IMAGE_LAYOUTS as FORMATS  # the registry module only: no reader loads
from ._detect_options import LENIENT_IMAGES_OPTION
from .params import POSITIVE_FLOAT, NameList


@click.command()
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="CSV to write: path,yaw,pitch,roll,source,rms_px (one row per image).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="Dataset layout; auto: an insightface .bin file, an IJB-A root "
                   "(IJB-A_11_sets/), an IJB-B/C folder (meta/ and loose_crop/), CFP when "
                   "DATA/Protocol exists, else a manifest CSV, a folder with metadata.csv, or "
                   "identity folders.")
@click.option("--sources", type=NameList("bench.pose.sources:SOURCES"),
              default="metadata,landmarks,image", show_default=True,
              help="Sources in order of preference; e.g. 'landmarks' alone re-estimates "
                   "from landmarks even where the dataset gives a yaw.")
@click.option("--backend", default="yunet", show_default=True,
              help="Face detector (yunet, insightface, dlib; see bench detect) for images "
                   "with neither yaw nor usable landmarks ('none' leaves them unknown). "
                   "Detections are cached ($BENCH_CACHE) and shared with bench detect/run.")
@click.option("--detector-model", default=None, type=click.Path(),
              help="The detector's model file or pack folder (insightface: det_10g.onnx "
                   "or its folder).")
@click.option("--focal-factor", type=POSITIVE_FLOAT, default=None,
              help="Camera focal length as a multiple of the image size (default 2.0).")
@LENIENT_IMAGES_OPTION
@click.option("--quiet", is_flag=True, help="No progress bar.")
def yaw(data: Path, out: Path, fmt: str, sources: str, backend: str,
        detector_model: str | None, focal_factor: float | None, lenient: bool,
        quiet: bool) -> None:
    """Estimate yaw (and pitch, roll) for every image in DATA and write them to --out."""
    import pandas as pd

    from ..data.skipped import SkippedRows
    from ..detect.stage import exif_note, exif_rotated
    from ..fileio import atomic_write, check_output_file
    from ..pose.pnp import DEFAULT_FOCAL_FACTOR
    from ..pose.sources import estimate_yaw

    # the dataset's own files are known once it is read: checked then, before the estimation
    guard = functools.partial(check_output_file, out, inputs=(data, detector_model))
    skipped = SkippedRows(lenient=lenient)
    sample_set = read_sample_set(data, fmt, skipped, guard)
    table = estimate_yaw(sample_set.samples, sources=list(sources),
                         backend=None if backend == "none" else backend,
                         detector_model=detector_model,
                         focal_factor=focal_factor or DEFAULT_FOCAL_FACTOR, progress=not quiet)
    with atomic_write(out) as f:
        table.to_csv(f, index=False, float_format="%.3f")
    counts = table["source"].value_counts()
    click.echo(f"{len(table)} images -> {out}: "
               + ", ".join(f"{name} {count}" for name, count in counts.items()))
    unknown = table.loc[table["source"] == "none", "path"].astype(str).tolist()
    if unknown:  # which ones, not only how many: each stays out of every yaw bin
        click.echo(f"no yaw: {len(unknown)} image{'s' * (len(unknown) != 1)} (no face found, "
                   "or too few points for a pose): " + ", ".join(unknown[:3])
                   + " ..." * (len(unknown) > 3), err=True)
    for error in skipped.errors:
        click.echo(f"skipped: {error}", err=True)
    # faces detected in stored pixels: a sideways photo gives a sideways pose, or none
    source = table["source"].astype(str)
    imaged = table.loc[source.str.startswith("image:") | (source == "none"), "path"]
    rotated = exif_rotated(pd.unique(imaged.astype(str)))
    if rotated:
        click.echo(f"warning: {exif_note(rotated)}", err=True)


def read_sample_set(data: Path, fmt: str, skipped, guard: Callable[..., object]):
    """The :class:`~bench.data.SampleSet` of DATA in the layout ``fmt`` (see --format),
    read between two calls of ``guard(read=...)``, the command's output check: before,
    with nothing read (a mistyped --out fails before a long read), and after, with every
    file the dataset holds or lists (:func:`files_read`), before any work on the images.
    Shared with ``bench detect`` and ``bench align``."""
    from ..readers import read_images_of

    guard(read=())
    sample_set = read_images_of(data, fmt, skipped=skipped)
    guard(read=files_read(sample_set, skipped.as_records()))
    return sample_set


def files_read(sample_set, skipped_rows: list[dict]) -> list[str | Path]:
    """Every file a command working on ``sample_set`` reads, which no output may replace
    (``read`` of :func:`bench.fileio.check_output_file`): the images, inside DATA or not;
    the lists and tables its reader hashed (provenance ``files``, named relative to its
    root: a manifest, CFP's pair lists and fiducial folder); and the file and image of each
    row skipped on the way (``skipped_rows``, as ``SkippedRows.as_records`` gives them: an
    undecodable photo that --lenient left out is still the user's, and is named at the
    list row listing it). Shared with ``bench detect``, ``align`` and ``protocols
    validate``."""
    import pandas as pd

    images = pd.unique(sample_set.samples["path"]).tolist()
    tables = [sample_set.root / name for name in sample_set.provenance.get("files", {})]
    skipped = [row.get(key) for row in skipped_rows for key in ("path", "image")]
    return [*images, *tables, *(path for path in skipped if path)]
