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
@click.option("--strict", is_flag=True,
              help="Fail (exit 2) on an unreadable runs/*/result.json instead of warning and "
                   "leaving it out.")
def leaderboard(out, protocol, fmt, strict):
    """Rebuild the leaderboards from stored runs and print one.

    A run file that cannot be read (truncated, not a result) is named in a warning on
    stderr and left out of the board; with --strict it is an error and nothing is written.
    """
    from ..runner import leaderboard as lb

    csv_path, md_path = lb.rebuild(out, protocol, strict=strict,
                                   warn=lambda m: click.echo(f"warning: {m}", err=True))
    click.echo((md_path if fmt == "md" else csv_path).read_text(), nl=False)
