"""The face-detector options of every command that may detect (run, compare, align, detect):
one definition, so they are spelled and explained alike."""

from __future__ import annotations

import click

DETECTOR_OPTIONS = [
    click.option("--detector", default="yunet", show_default=True,
                 help="Face detector for samples without usable landmarks: yunet (5 points, "
                      "extra 'sface'), insightface (SCRFD, needs --detector-model), dlib "
                      "(68 points, extra 'dlib'). Detections are cached ($BENCH_CACHE)."),
    click.option("--detector-model", default=None, type=click.Path(),
                 help="The detector's model file or pack folder (insightface: det_10g.onnx "
                      "or its folder)."),
]


def detector_options(fn):
    for option in reversed(DETECTOR_OPTIONS):
        fn = option(fn)
    return fn

#: ``--detect``: which samples the stage detects (bench.detect.stage.DETECT_MODES)
DETECT_MODE_OPTION = click.option(
    "--detect", "detect_mode", type=click.Choice(["auto", "always", "never"]), default="auto",
    show_default=True, help="auto: detect samples without usable landmarks; always: every "
                            "sample (dataset points ignored); never: fall back to boxes.")

#: ``--lenient`` of the commands that work on a dataset's images (detect, yaw, align)
LENIENT_IMAGES_OPTION = click.option(
    "--lenient", is_flag=True,
    help="Skip (and report) malformed dataset rows and images that cannot be decoded (every "
         "image is decoded first).")
