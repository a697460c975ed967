"""``bench models``: every registered model with its feature size and preprocessing."""

from __future__ import annotations

import click
from tabulate import tabulate


@click.command()
@click.option("--names", is_flag=True, help="Only the names, one per line.")
def models(names: bool) -> None:
    """List registered models (use a name with ``bench run --model NAME``)."""
    from ..models import MODELS, factory_options

    if names:
        click.echo("\n".join(MODELS.names()))
        return
    rows = []
    for name in MODELS.names():
        meta = MODELS.meta(name)
        pre = meta["preprocess"]
        h, w = pre.input_size
        options = ", ".join(f"{k}={v!r}" for k, v in factory_options(name).items())
        rows.append([name, meta.get("weights", "trained"), meta["feature_dim"] or "from file",
                     f"{h}x{w}", pre.channel_order,
                     _triple(pre.mean), _triple(pre.std), pre.template,
                     "yes" if pre.flip_test else "no", options])
    click.echo(tabulate(rows, headers=["model", "weights", "dim", "input", "order", "mean", "std",
                                       "template", "flip", "options"]))


def _triple(values: tuple[float, ...]) -> str:
    return ",".join(f"{v:.4g}" for v in values)
