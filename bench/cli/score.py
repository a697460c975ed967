"""``bench score``: metrics of a per-comparison score file."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from ..yawbins import PAIR_RULES
from .params import COUNT, FAR_TARGETS, SEED, YAW_EDGES


@click.command()
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.option("--bins", type=YAW_EDGES, default="0,30,60,90", show_default=True,
              help="|yaw| bin edges: from 0, increasing, in degrees.")
@click.option("--far", type=FAR_TARGETS, default="0.1,0.01,0.001", show_default=True,
              help="FAR targets for TAR@FAR, each in (0, 1].")
@click.option("--rule", type=click.Choice(list(PAIR_RULES)), default="max", show_default=True,
              help="Which side's |yaw| puts a pair in a bin (the pair_rule of protocol files): "
                   "max, min, or probe (side b).")
@click.option("--n-boot", type=COUNT, default=1000, show_default=True,
              help="Bootstrap resamples (0: no CI).")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option("--example", type=click.Path(path_type=Path),
              help="Write an example score file (CFP-FP-like, with a pose gap) to this path and exit.")
def score(file, bins, far, rule, n_boot, seed, as_json, example):
    """Metrics of a score file: AUC, EER, TAR@FAR, fold accuracy and per-yaw tables, with CIs."""
    from ..evaluation import EvalPlan, evaluate_scores
    from ..fileio import check_output_file, dump_json
    from ..report.tables import summary_table, yaw_section
    from ..scores import example_scores, read_scores, write_scores
    from ..yawbins import YawBinning

    if example is not None:
        if file is not None:  # one of the two uses, as bench synth OUT / --preview
            raise click.UsageError("give either a score FILE or --example OUT.csv, not both")
        check_output_file(example, what="--example")
        path = write_scores(example_scores(), example)
        click.echo(f"wrote example score file {path}")
        return
    if file is None:
        raise click.UsageError("give a score FILE (or --example OUT.csv to make one)")
    cfg = EvalPlan(yaw=YawBinning(bins, rule), far=far, n_boot=n_boot, seed=seed)
    df = read_scores(file)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate_scores(df, cfg)
    for w in caught:
        click.echo(f"warning: {w.message}", err=True)
    if as_json:
        click.echo(dump_json(result), nl=False)
        return
    click.echo(f"{file}: {result['n_pairs']} pairs, {result['n_genuine']} genuine")
    click.echo(summary_table(result))
    if section := yaw_section(result):
        click.echo("")
        click.echo(section)
