"""``bench run``: the main job."""

from __future__ import annotations

import click

from ..modes import DREAM_MODES, RUN_MODES, is_dream, stem_name
from ._run_options import run_config_kwargs, run_options


@click.command()
@click.option("--model", "-m", required=True, help="Model name (bench models), e.g. resnet18-dream.")
@click.option("--mode", type=click.Choice(RUN_MODES),
              default=None, help="Training mode (default: retrain for -dream models, naive for "
                                 "stems, pretrained with --weights).")
@click.option("--weights", default=None, type=click.Path(),
              help="Local weights/checkpoint to evaluate instead of training.")
@run_options
def run(model, mode, weights, **kw):
    """Evaluate a model on a protocol: per-yaw verification with CIs, plots, leaderboard.

    Example: bench run --protocol cfp-fp --model resnet18-dream

    ``-p bin-suite`` runs every insightface verification .bin found (lfw, cfp_ff, cfp_fp,
    agedb_30, calfw, cplfw) and prints one table in insightface's log layout.
    """
    from ..report.tables import identification_table, summary_table, yaw_section
    from ..runner.run import RunConfig, run_benchmark
    from ..runner.suite import PROTOCOL_SUITES, log_lines, run_suite

    protocol = kw.pop("protocol")
    cfg = RunConfig(protocol=protocol, model=model, mode=mode, weights=weights,
                    **run_config_kwargs(**kw))
    if protocol in PROTOCOL_SUITES:
        suite = run_suite(protocol, cfg, echo=click.echo)
        if suite.table_path is not None:  # None on the other ranks under torchrun
            click.echo("")
            click.echo("\n".join(log_lines(suite)))
            click.echo(f"suite table: {suite.table_path}")
        return
    outcome = run_benchmark(cfg, echo=click.echo)
    if outcome is None:  # another rank than 0 under torchrun: rank 0 reports
        return
    res = outcome.result
    main = res["main_score"]
    click.echo("")
    click.echo(f"{res['model']['name']} ({res['model']['mode']}) on {res['protocol']['name']}: "
               f"{main['name']} = {_pct(main['value'])}"
               + (f" [{_pct(main['low'])}, {_pct(main['high'])}]" if main.get("low") is not None
                  else ""))
    if res.get("identification"):
        click.echo(identification_table(res["identification"]))
        click.echo("")
        click.echo("every probe x gallery pair scored as a 1:1 comparison (the per-yaw "
                   "breakdown below is of these pairs):")
    click.echo(summary_table(res["metrics"]))
    if section := yaw_section(res["metrics"]):
        click.echo("")
        click.echo(section)
    click.echo("")
    click.echo(f"run folder: {outcome.run_dir}")
    for name, rel in res["files"].items():
        click.echo(f"  {name}: {outcome.run_dir / rel}")
    click.echo(f"leaderboard: {cfg.out}/leaderboard.md")
    if res["model"]["mode"] in DREAM_MODES and is_dream(model):
        # one run's CI says how well the model does, not whether DREAM helped: that needs
        # the naive stem on the same pairs
        click.echo(f"does DREAM beat the plain stem? paired CIs on the same pairs: bench compare "
                   f"-p {protocol} --stem {stem_name(model)}")


def _pct(v):
    return "n/a" if v is None else f"{100 * v:.2f}%"
