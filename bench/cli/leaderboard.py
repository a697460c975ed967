"""``bench leaderboard``: aggregate every result.json into CSV and markdown tables."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--out", default="results", show_default=True, type=click.Path(path_type=Path),
              help="Results folder holding runs/*/result.json.")
@click.option("--protocol", default=None, help="Only this protocol (writes leaderboard-P.*).")
@click.option("--format", "fmt", type=click.Choice(["md", "csv"]), default="md", show_default=True,
              help="What to print.")
def leaderboard(out, protocol, fmt):
    """Rebuild the leaderboards from stored runs and print one."""
    from ..runner import leaderboard as lb

    csv_path, md_path = lb.update(out, protocol)
    click.echo((md_path if fmt == "md" else csv_path).read_text(), nl=False)
