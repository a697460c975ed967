"""Options shared by ``bench run`` and ``bench compare`` (one definition, two commands)."""

from __future__ import annotations

import click

from ..errors import ConfigError
from ._detect_options import DETECT_MODE_OPTION, DETECTOR_OPTIONS
from .params import COUNT, POSITIVE, SEED


def run_options(fn):
    options = [
        click.option("--protocol", "-p", required=True, help="Protocol name (bench protocols)."),
        click.option("--data", default=None, type=click.Path(),
                     help="Data root (or the dataset itself). Default: $BENCH_DATA, else the "
                          "embedded synthetic dataset."),
        click.option("--train-data", default=None, type=click.Path(),
                     help="Training manifest/folder (default: the data root's train/ part "
                          "when it has one, as the synthetic dataset does; real data needs "
                          "it for every mode that trains)."),
        click.option("--yaw-file", default=None, type=click.Path(dir_okay=False),
                     help="Head pose per image (the CSV `bench yaw` writes) for data without "
                          "its own yaw, e.g. real CFP or a .bin; needed by DREAM models and "
                          "the per-yaw breakdown."),
        click.option("--unknown-yaw", type=click.Choice(["refuse", "stem"]), default="refuse",
                     show_default=True,
                     help="A DREAM model's images without a yaw (faces `bench yaw` did not "
                          "find): refuse the run, or run them through the stem alone (gate "
                          "0), counted and listed in result.json."),
        click.option("--train-yaw-file", default=None, type=click.Path(dir_okay=False),
                     help="The same for the training data (e.g. identity folders of photos): "
                          "every DREAM mode trains on yaw."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
                     show_default=True),
        click.option("--out", default="results", show_default=True, type=click.Path(),
                     help="Results folder: runs/, leaderboards."),
        click.option("--flip/--no-flip", default=None,
                     help="Flip test (sum of features of an image and its mirror). Default: the "
                          "protocol's choice, which defers to the model's preprocessing."),
        click.option("--n-boot", type=COUNT, default=1000, show_default=True,
                     help="Bootstrap resamples for CIs."),
        click.option("--seed", type=SEED, default=0, show_default=True),
        click.option("--preset", "train_preset", type=click.Choice(["cpu", "gpu"]), default=None,
                     help="Training preset (default: fitted to the device)."),
        click.option("--epochs", default=None, type=POSITIVE, help="Override the preset's epochs."),
        click.option("--lenient", is_flag=True,
                     help="Skip (and report) malformed data rows, and images that cannot be "
                          "decoded with the pairs and templates that need them (every "
                          "image is decoded first)."),
        click.option("--batch-size", default=None, type=POSITIVE,
                     help="Feature extraction batch size (default: 256 on CUDA, 64 on the "
                          "CPU)."),
        *DETECTOR_OPTIONS,
        DETECT_MODE_OPTION,
        click.option("--threads", type=POSITIVE, default=None,
                     help="CPU threads of torch and ONNX Runtime [default: theirs, one per "
                          "core]. On a CPU shared with other jobs 1 can be several times "
                          "faster than 2."),
        click.option("--quiet", is_flag=True, help="No progress bars."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def run_config_kwargs(data, train_data, yaw_file, unknown_yaw, train_yaw_file, device, out,
                      flip, n_boot, seed, train_preset, epochs, lenient, batch_size, detector,
                      detector_model, detect_mode, threads, quiet) -> dict:
    if n_boot < 0:
        raise ConfigError("--n-boot must be >= 0")
    changes = {} if epochs is None else {"classify.epochs": epochs}
    return dict(data=data, train_data=train_data, yaw_file=yaw_file, unknown_yaw=unknown_yaw,
                train_yaw_file=train_yaw_file,
                device=None if device == "auto" else device, out=out, flip=flip, n_boot=n_boot,
                seed=seed, train_preset=train_preset, train_changes=changes, lenient=lenient,
                batch_size=batch_size, detector=detector, detector_model=detector_model,
                detect=detect_mode, threads=threads, progress=not quiet)
