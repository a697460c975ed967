"""``bench compare``: naive, stitch, end2end and retrain side by side with paired CIs."""

from __future__ import annotations

import click

from ..modes import FROZEN_STEM_MODES, MODES
from ._run_options import run_config_kwargs, run_options
from .params import NameList


@click.command()
@click.option("--stem", required=True, help="Plain stem name, e.g. resnet18.")
@click.option("--modes", type=NameList("bench.modes:MODES"), default=None,
              help=f"Modes to compare (naive, the baseline, is always run) [default: "
                   f"{','.join(MODES)}; {','.join(FROZEN_STEM_MODES)} for a pretrained stem "
                   "such as sface or onnx, which runs as it is as the baseline].")
@click.option("--weights", default=None, type=click.Path(dir_okay=False),
              help="The model file of a stem not trained here: --stem onnx --weights FILE.onnx "
                   "(the stitch run trains a DREAM block on that same file).")
@run_options
def compare(stem, modes, weights, **kw):
    """Train (or reuse) every mode, evaluate on identical comparisons, write one report."""
    from ..runner.compare import compare_modes
    from ..runner.run import RunConfig

    protocol = kw.pop("protocol")
    base = RunConfig(protocol=protocol, model=stem, weights=weights, **run_config_kwargs(**kw))
    outcome = compare_modes(protocol, stem, None if modes is None else list(modes), base,
                            echo=click.echo)
    if outcome is None:  # another rank than 0 under torchrun: rank 0 reports
        return
    click.echo("")
    click.echo((outcome.report_dir / "report.md").read_text())
    click.echo(f"report: {outcome.report_dir}/report.md, report.csv, roc_overlay.png")
