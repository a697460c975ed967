"""``bench train``: train (or reuse) a model in one of the four DREAM training modes."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import click

from ..errors import ConfigError
from ..modes import MODES
from ._detect_options import DETECT_MODE_OPTION, detector_options
from .params import POSITIVE


def _parse_set(items: tuple[str, ...]) -> dict:
    """``key=value`` pairs; values are JSON when they parse as JSON (numbers, lists, true)."""
    changes = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value (e.g. classify.lr=0.05), got {item!r}")
        try:
            changes[key.strip()] = json.loads(text)
        except ValueError:
            changes[key.strip()] = text
    return changes


@click.command()
@click.option("--model", required=True, help="Registered model, e.g. resnet18-dream (or resnet18).")
@click.option("--mode", required=True, type=click.Choice(MODES),
              help="naive: stem; stitch: DREAM block on a frozen naive stem; end2end: both "
                   "together; retrain: end2end, then its block as in stitch.")
@click.option("--data", required=True, type=click.Path(path_type=Path),
              help="Training set: manifest CSV, folder with metadata.csv, or identity folders.")
@click.option("--yaw-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Head pose per image (the CSV `bench yaw` writes) for training data "
                   "without a yaw of its own, e.g. identity folders of photos.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Runs folder [default: $BENCH_CACHE/train].")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run from its last epoch (else restart it).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None,
              help="[default: cuda when available]")
@click.option("--preset", "preset_name", type=click.Choice(["cpu", "gpu"]), default=None,
              help="Training recipe [default: the device's].")
@click.option("--epochs", type=POSITIVE, default=None, help="Override classify.epochs.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override any config field, e.g. classify.head=arcface, stitch.iterations=500, "
                   "input_size=[112,112], model_options={\"gate\":\"paper\"}. Repeatable.")
@click.option("--threads", type=POSITIVE, default=None,
              help="CPU threads for torch [default: torch's]. On a CPU shared with other jobs "
                   "1 can be several times faster than 2 (no OpenMP contention).")
@detector_options
@DETECT_MODE_OPTION
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def train(model, mode, data, yaw_file, out, resume, device, preset_name, epochs, overrides, threads,
          detector, detector_model, detect_mode, progress, as_json):
    """Train MODEL in MODE on DATA, or reuse the finished run with the same config and data.

    Writes OUT/<model>-<mode>-<key>/model.pt (load with --weights or create_model) and
    log.json beside it. Multi-GPU / multi-node: the same command under torchrun, e.g.
    ``torchrun --no-python --nproc-per-node 8 bench train ...``.
    """
    from ..detect.stage import DetectOptions
    from ..fileio import prepare_output_dir
    from ..train import preset
    from ..train import train as run_training
    from ..train.distributed import env_world_size

    if out is not None:
        prepare_output_dir(out, inputs=(data, yaw_file))
    changes = _parse_set(overrides)
    if epochs is not None:
        changes["classify.epochs"] = epochs
    changes["progress"] = progress
    if threads is not None:
        changes["threads"] = threads
    config = preset(preset_name, device, **changes)
    main = int(os.environ.get("RANK", "0")) == 0
    if main:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        world = env_world_size()
        click.echo(f"training {model} ({mode}) on {data} with the {config.preset} preset on "
                   f"{config.device}" + (f" x {world} processes" if world > 1 else ""), err=True)
    detect = DetectOptions(detector=detector, model=detector_model, mode=detect_mode)
    result = run_training(model, mode, data, out, config, resume=resume, yaw_file=yaw_file,
                          detect=detect)
    if not main:
        return
    if as_json:
        from ..fileio import dump_json

        click.echo(dump_json(result.to_dict()), nl=False)
        return
    verb = "reused" if result.reused else "trained"
    click.echo(f"{verb} {result.model_name} ({mode}): {result.checkpoint}")
    click.echo(f"log: {result.log}")
    shown = {k: v for k, v in result.metrics.items() if k != "upstream" and v is not None}
    click.echo("  " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in shown.items()))
