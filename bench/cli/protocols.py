"""``bench protocols``: list the shipped protocols, show one resolved, validate a dataset."""

from __future__ import annotations

import json

import click
from tabulate import tabulate


@click.group(invoke_without_command=True)
@click.pass_context
def protocols(ctx: click.Context) -> None:
    """List benchmark protocols (``show NAME``, ``validate NAME`` for one)."""
    if ctx.invoked_subcommand is not None:
        return
    from ..protocols import PROTOCOLS

    rows = []
    for name in PROTOCOLS:
        p = PROTOCOLS.get(name)
        rows.append([name, p.task, p.format, p.data, p.main_score, p.description])
    click.echo(tabulate(rows, headers=["name", "task", "format", "data", "main", "description"]))


@protocols.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML.")
def show(name: str, as_json: bool) -> None:
    """Print NAME's resolved definition (``extends`` applied) as a standalone protocol file.

    NAME may also be the path of a .toml file.
    """
    from ..protocols import load_protocol
    from ..protocols.loading import dump_toml

    protocol = load_protocol(name)
    if as_json:
        click.echo(json.dumps(protocol.to_dict(), indent=2))
        return
    origin = f"extends {protocol.extends}, " if protocol.extends else ""
    click.echo(f"# {protocol.name}, resolved ({origin}from {protocol.source})")
    click.echo(dump_toml(protocol.to_file_dict()), nl=False)


@protocols.command()
@click.argument("name")
@click.option("--data", type=click.Path(), default=None,
              help="Data root holding the protocol's data path, or the dataset itself "
                   "(default: the protocol's variable, then $BENCH_DATA, then the embedded "
                   "synthetic dataset, generated on first use).")
@click.option("--lenient", is_flag=True,
              help="Skip bad rows and images that cannot be decoded, and list each one.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the report as JSON to this file.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Where decoded .bin images and built splits are kept "
                   "(default: $BENCH_CACHE or ~/.cache/bench).")
@click.option("--decode/--no-decode", default=True, show_default=True,
              help="Decode every image (finds truncated or corrupt files; --no-decode skips "
                   "it for speed on a large set).")
@click.option("--yaw-file", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Head pose per image (the CSV `bench yaw` writes), as bench run "
                   "--yaw-file takes it: data without its own yaw (a folder of photos) is "
                   "binned on it.")
def validate(name: str, data: str | None, lenient: bool, json_path: str | None,
             cache_dir: str | None, decode: bool, yaw_file: str | None) -> None:
    """Check every file, index and count NAME refers to, without running a model.

    Every image is also decoded (as a run would), unless --no-decode; with --lenient one
    that cannot be decoded is listed and left out with what uses it, as bench run
    --lenient does.
    """
    from ..data.cache import reader_cache
    from ..fileio import dump_json
    from ..protocols import load_eval_set, load_protocol
    from ..runner.data_source import synthetic_root, uses_default_data

    if json_path:
        from ..fileio import check_output_file

        check_output_file(json_path, inputs=(data, yaw_file), what="--json")
    protocol = load_protocol(name)
    default = None
    if uses_default_data(data, protocol):  # the same data `bench run` would use
        default = synthetic_root(cache_dir=cache_dir, echo=lambda m: click.echo(m, err=True))
    # the readers' part of the cache, as bench run and bench yaw name it: a yaw file
    # written for a .bin lists its images there
    eval_set, report = load_eval_set(protocol, data, lenient=lenient, default=default,
                                     cache_dir=reader_cache(cache_dir), yaw_file=yaw_file,
                                     decode=decode)
    if json_path:  # the files the dataset read are known now: none may be the report
        from .yaw import files_read

        check_output_file(json_path, inputs=(data, yaw_file), what="--json",
                          read=files_read(eval_set.samples, report.skipped))
    click.echo(report.format())
    if json_path:
        dump_json(report.to_dict(), json_path)
