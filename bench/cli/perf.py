"""``bench perf``: benchmarks that measure and record figures under results/perf/."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def perf():
    """Measure speed and record it (CSV + markdown, named by device, precision, torch)."""


@perf.command("metrics")
@click.option("--out", default="results/perf", show_default=True, type=click.Path(path_type=Path))
@click.option("--pairs", default=15_658_489, show_default=True, help="Comparisons (IJB-C 1:1 size).")
@click.option("--genuine", default=19_557, show_default=True)
@click.option("--repeats", default=3, show_default=True)
def metrics_cmd(out, pairs, genuine, repeats):
    """ROC/AUC/EER/TAR@FAR at IJB-C scale vs scikit-learn; fold accuracy vs a grid."""
    from tabulate import tabulate

    from ..perf import metrics_bench
    from ..perf.record import environment, write_records

    records = metrics_bench.run(metrics_bench.MetricsBenchConfig(
        n_pairs=pairs, n_genuine=genuine, repeats=repeats))
    click.echo(tabulate(records, headers="keys", tablefmt="github", floatfmt=".4g"))
    csv_path, md_path = write_records(records, "metrics", out, environment("cpu"), "fp64")
    click.echo(f"wrote {csv_path} and {md_path}")
