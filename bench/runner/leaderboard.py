"""Leaderboards: one row per run, aggregated from ``runs/*/result.json`` (never hand-edited).

Rebuilding from the result files (instead of appending rows) makes concurrent runs safe:
each writer takes an exclusive lock, re-reads every result and replaces the tables
atomically, so the last writer's table holds every finished run.

A ``result.json`` that cannot be read (truncated, not JSON, keys missing) never vanishes in
silence: :func:`collect` returns it as a :class:`BadRun` and :func:`update` reports it
(``bench leaderboard`` prints one warning per file and builds the board from the valid
runs; ``--strict`` makes any bad file an error, exit 2).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import ConfigError
from ..fileio import atomic_write, clean_stale_temps, file_lock, prepare_output_dir, safe_name
from ..metric_specs import parse_metric
from ..report.tables import text_table
from .result_schema import RunResult, column_order

#: What runs and leaderboards write in a results folder (anything else there is left alone).
LOCK = ".leaderboard.lock"
BOARD = "leaderboard"
OWNED = ("runs", "leaderboard.csv", "leaderboard.md", LOCK)

@dataclass(frozen=True)
class BadRun:
    """A run file the leaderboard could not use, and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def _read_result(path: Path) -> RunResult | BadRun | None:
    """The result of one run file; None when it vanished (a run being replaced right now)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        return BadRun(path, f"cannot read: {getattr(exc, 'strerror', None) or exc}")
    try:
        result = json.loads(text)
    except json.JSONDecodeError as exc:
        return BadRun(path, f"truncated or not JSON (line {exc.lineno}: {exc.msg})")
    if not isinstance(result, dict):
        return BadRun(path, f"holds a JSON {type(result).__name__}, not a result object")
    # keys a newer bench added are no reason to drop a run; missing or mistyped ones are
    try:
        record = RunResult.from_dict(result)
    except ValueError as exc:
        problems = str(exc).split("; ")
        return BadRun(path, "not a run result: " + "; ".join(problems[:3])
                      + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""))
    try:
        record.leaderboard_row()
        parse_metric(record.main_score["name"])  # its direction orders the board
    except (KeyError, TypeError, AttributeError, IndexError, ValueError, ConfigError) as exc:
        return BadRun(path, f"not a run result: {type(exc).__name__} {exc}")
    return record


def collect_runs(out_dir: str | Path, protocol: str | None = None
                 ) -> tuple[pd.DataFrame, list[BadRun]]:
    """The leaderboard rows of every readable ``runs/*/result.json`` and the unreadable ones."""
    out_dir = Path(out_dir)
    rows, orders, bad = [], [], []
    clean_stale_temps(out_dir / "runs")  # a run whose writer was killed before its rename
    for path in sorted((out_dir / "runs").glob("*/result.json")):
        if path.parent.name.startswith("."):  # a run being written (or left by a killed one)
            continue
        record = _read_result(path)
        if record is None:
            continue
        if isinstance(record, BadRun):
            bad.append(record)
            continue
        if protocol and record.protocol["name"] != protocol:
            continue
        row, order = record.leaderboard_row()
        rows.append(row)
        orders.append(order)
    df = pd.DataFrame(rows, columns=column_order(orders) if rows else None)
    if not df.empty:
        # best first: the main metric's spec says which way is better (an EER ascends)
        better = df["main_score"].map(lambda name: parse_metric(name).higher_is_better)
        values = pd.to_numeric(df["value"], errors="coerce")
        df = (df.assign(_best=values.where(better, -values))
              .sort_values(["protocol", "_best"], ascending=[True, False], na_position="last")
              .drop(columns="_best").reset_index(drop=True))
    return df, bad


def collect(out_dir: str | Path, protocol: str | None = None) -> pd.DataFrame:
    return collect_runs(out_dir, protocol)[0]


def _fmt(v):
    if isinstance(v, float):
        return "" if v != v else f"{100 * v:.2f}" if abs(v) <= 1 else f"{v:.4g}"
    return v


def to_markdown(df: pd.DataFrame) -> str:
    if df.empty:
        return "_no runs yet_\n"
    shown = df.drop(columns=["run_id"]).map(_fmt)
    text = text_table(shown.to_numpy().tolist(), shown.columns)
    return ("Rates in percent; value [ci_low, ci_high] is the protocol's main score with the "
            "bootstrap CI that column ci describes (over subjects, or over pairs for data "
            "without subject ids, such as a .bin). Generated by `bench leaderboard` from "
            "runs/*/result.json.\n\n" + text + "\n")


def check_protocol(protocol: str | None, has_runs: bool = False) -> str | None:
    """A protocol name safe in a file name that is registered or names stored runs (those
    of a protocol file, ``-p mine.toml``, carry a name no registry holds), or None."""
    if protocol is None:
        return None
    from ..protocols import PROTOCOLS

    safe_name(protocol, "protocol")
    if not has_runs:
        PROTOCOLS.get(protocol)  # unknown: ConfigError with did-you-mean and the known names
    return protocol


def update(out_dir: str | Path, protocol: str | None = None, *, strict: bool = False,
           warn: Callable[[str], None] | None = None) -> tuple[Path, Path]:
    """Rebuild ``leaderboard.csv`` and ``leaderboard.md`` under ``out_dir``.

    Each unreadable run file is passed to ``warn`` (default: a Python warning); with
    ``strict`` any of them is a ConfigError and nothing is written.
    """
    import warnings

    out_dir = Path(out_dir)
    check_protocol(protocol, has_runs=True)
    with file_lock(out_dir / LOCK):
        clean_stale_temps(out_dir)  # a board being written when its writer was killed
        df, bad = collect_runs(out_dir, protocol)
        check_protocol(protocol, has_runs=not df.empty)
        if bad and strict:
            raise ConfigError(f"{len(bad)} unreadable run file(s) under {out_dir / 'runs'}: "
                              + "; ".join(map(str, bad)))
        for item in bad:
            message = f"skipped run {item}"
            if warn is None:
                warnings.warn(message, stacklevel=2)
            else:
                warn(message)
        csv_path, md_path = _write_board(out_dir, protocol, df)
        if protocol is None:  # the per-protocol boards `bench leaderboard -p` made, too
            for board in sorted(out_dir.glob(f"{BOARD}-*.csv")):
                name = board.stem[len(BOARD) + 1:]
                _write_board(out_dir, name, collect_runs(out_dir, name)[0])
    if bad:
        warn_count = f"{len(bad)} run file(s) skipped: the board lacks them"
        if warn is None:
            warnings.warn(warn_count, stacklevel=2)
        else:
            warn(warn_count)
    return csv_path, md_path


def _write_board(out_dir: Path, protocol: str | None, df: pd.DataFrame) -> tuple[Path, Path]:
    stem = BOARD if protocol is None else f"{BOARD}-{protocol}"
    csv_path, md_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.md"
    with atomic_write(csv_path) as f:
        df.to_csv(f, index=False, float_format="%.6g")
    with atomic_write(md_path) as f:
        f.write(to_markdown(df))
    return csv_path, md_path


def rebuild(out_dir: str | Path, protocol: str | None = None, *, strict: bool = False,
            warn: Callable[[str], None] | None = None) -> tuple[Path, Path]:
    """``bench leaderboard``: like :func:`update`, but ``out_dir`` must already hold runs
    (a mistyped ``--out`` is an error, not an empty board)."""
    out_dir = Path(out_dir)
    check_protocol(protocol, has_runs=True)  # a name unknown to both: update refuses it
    if not (out_dir / "runs").is_dir():
        what = "does not exist" if not out_dir.exists() else "holds no runs/ folder"
        raise ConfigError(f"--out {out_dir} {what}: nothing to build a leaderboard from "
                          "(bench run writes OUT/runs/*/result.json)")
    prepare_output_dir(out_dir, owned=OWNED)
    return update(out_dir, protocol, strict=strict, warn=warn)
