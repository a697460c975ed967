"""``bench align``: aligned crops as image files plus a manifest, and a preview grid."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from ..align.plan import PROFILE_MODES
from ._detect_options import DETECT_MODE_OPTION, LENIENT_IMAGES_OPTION, detector_options
from .params import POSITIVE


@click.command()
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option("--template", "-t", "template_name", default="arcface112", show_default=True,
              help="Alignment template (see bench.align.templates.TEMPLATES).")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: images/..., metadata.csv, align_report.json.")
@click.option("--preview", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a PNG grid of originals beside their crops.")
@click.option("--preview-count", type=POSITIVE, default=12, show_default=True,
              help="Samples in the preview (a few fallbacks, then spread over |yaw|).")
@click.option("--profile", type=click.Choice(PROFILE_MODES), default="auto", show_default=True,
              help="Pose-aware references: for hidden-eye/poor fits (auto), never, always.")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if present).")
@click.option("--batch-size", type=POSITIVE, default=64, show_default=True)
@click.option("--format", "image_format", type=click.Choice(["png", "jpg"]), default="png",
              show_default=True, help="Crop file format (png is lossless).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the aligned crops in this cache too (reused by later runs).")
@LENIENT_IMAGES_OPTION
@detector_options
@DETECT_MODE_OPTION
@click.option("--quiet", is_flag=True, help="No progress bar.")
def align(data, template_name, out, preview, preview_count, profile, device, batch_size,
          image_format, cache_dir, lenient, detector, detector_model, detect_mode, quiet):
    """Align the faces of DATA (a manifest CSV, a folder with metadata.csv, identity folders,
    a CFP or IJB-A root, or an insightface .bin) to a template; write crops + manifest."""
    from ..align.api import align_batches
    from ..align.export import write_aligned
    from ..align.plan import AlignOptions
    from ..align.preview import write_preview
    from ..align.templates import get_template
    from ..data.cache import cache_root
    from ..data.samples import unique_images
    from ..data.skipped import SkippedRows
    from ..detect import DETECTORS, DetectOptions, complete_landmarks
    from ..errors import ConfigError
    from ..fileio import dump_json, staged_dir
    from .yaw import read_sample_set

    template = get_template(template_name)  # an unknown name fails before any reading
    if detector not in DETECTORS:  # so does a detector's, needed or not
        raise ConfigError(DETECTORS.unknown_message(detector))
    options = DetectOptions(detector=detector, model=detector_model, mode=detect_mode)
    skipped = SkippedRows(lenient=lenient)
    # before any work: never write over (or into) the dataset or a file it lists, never
    # fail at the end
    guard = functools.partial(check_outputs, out, preview, cache_dir,
                              inputs=(data, detector_model))
    sample_set = read_sample_set(data, "auto", skipped, guard)
    crops_frame, inverse = unique_images(sample_set.samples)
    # as bench run does: samples without usable points get a detector's (cached)
    crops_frame, detection = complete_landmarks(
        crops_frame, uses_landmarks=template.uses_landmarks, options=options,
        cache_dir=cache_root(), progress=not quiet)
    click.echo(detection.summary())
    stream = align_batches(crops_frame, template, device, batch_size,
                           options=AlignOptions(profile=profile), cache_dir=cache_dir,
                           warn=False)
    # crops, manifest and report appear together or not at all (a bad image midway
    # leaves nothing in --out)
    with staged_dir(out, marker="align_report.json") as staging:
        write_aligned(stream, sample_set, inverse, staging, image_format)
        report = stream.report.to_dict()
        report.update(source=str(data), detection=detection.to_dict(),
                      skipped_rows=skipped.as_records(), provenance=sample_set.provenance)
        dump_json(report, staging / "align_report.json")
    manifest = out / "metadata.csv"
    click.echo(stream.report.summary())
    if len(skipped):
        click.echo(f"skipped {len(skipped)} bad rows or images (listed in align_report.json)")
        for error in skipped.errors:
            click.echo(f"skipped: {error}", err=True)
    click.echo(f"wrote {len(crops_frame)} crops and {manifest}")
    if preview is not None:
        click.echo(f"wrote {write_preview(stream, preview, preview_count)}")


def check_outputs(out: Path, preview: Path | None, cache_dir: Path | None, *, inputs,
                  read=()) -> None:
    """Every output of ``bench align`` checked against its ``inputs`` and the files
    ``read`` from them (see :func:`bench.fileio.prepare_output_dir`)."""
    from ..fileio import check_output_file, prepare_output_dir

    prepare_output_dir(out, inputs=inputs, read=read)
    if preview is not None:
        check_output_file(preview, inputs=inputs, what="--preview", read=read)
    if cache_dir is not None:
        prepare_output_dir(cache_dir, inputs=inputs, what="--cache-dir", read=read)
