"""From a protocol and a data root to an EvalSet and its validation report.

Where the data is (first that applies):

1. ``data`` given by the caller (``--data DIR``): a data root holding ``<protocol.data>``,
   or the dataset itself when ``DIR/<protocol.data>`` does not exist;
2. the protocol's own environment variable (``data_env``, e.g. ``BENCH_CFP``): the dataset;
3. ``BENCH_DATA``: a data root;
4. ``default``: the data root the caller falls back on (the runner passes the embedded
   synthetic dataset).
"""

from __future__ import annotations

import inspect
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.decode_check import check_images
from ..data.evalset import EvalSet
from ..data.report import ValidationReport, build_report
from ..data.skipped import SkippedRows
from ..data.yaw_file import apply_listed_yaw_file
from ..errors import ConfigError, DataError
from ..fileio import absolute
from ..readers import READERS, read_dataset
from .protocol import Protocol, suggest

DATA_ENV = "BENCH_DATA"
SYNTH_MANIFEST = "synth.json"
#: Reader arguments the loader fills from the protocol or the call, never from ``[reader]``.
INJECTED = ("folds", "yaw_edges", "cache_dir", "skipped")


@dataclass(frozen=True)
class DataLocation:
    """``dataset``: the path handed to the reader; ``how``: which rule chose it."""

    dataset: Path
    root: Path | None
    how: str


def locate_data(protocol: Protocol, data: str | Path | None = None,
                default: str | Path | None = None) -> DataLocation:
    if data is not None:
        root = Path(data)
        if (root / protocol.data).exists():
            return DataLocation(root / protocol.data, root, "--data (data root)")
        if root.exists():
            return DataLocation(root, None, "--data (the dataset itself)")
        raise DataError(f"data folder not found (expected a data root holding "
                        f"{protocol.data!r}, or the dataset itself)", root)
    if protocol.data_env and os.environ.get(protocol.data_env):
        return DataLocation(Path(os.environ[protocol.data_env]), None, f"${protocol.data_env}")
    for value, how in ((os.environ.get(DATA_ENV), f"${DATA_ENV}"), (default, "default")):
        if value:
            return DataLocation(Path(value) / protocol.data, Path(value), how)
    envs = " or ".join(f"${e}" for e in (protocol.data_env, DATA_ENV) if e)
    raise ConfigError(f"protocol {protocol.name}: no data given; pass --data DIR or set {envs} "
                      f"(the dataset is expected at DIR/{protocol.data})")


def _missing_within(path: str | None, folder: str | Path) -> bool:
    """``path`` (what an error names) is ``folder`` itself (not the dataset it was taken
    for), or lies in it and does not exist."""
    if path is None:
        return False
    path, folder = absolute(path), absolute(folder)
    return path == folder or (path.is_relative_to(folder) and not path.exists())


def _reader_takes(protocol: Protocol, option: str) -> bool:
    return option in inspect.signature(READERS.get(protocol.format)).parameters


def reader_kwargs(protocol: Protocol) -> dict[str, Any]:
    """``[reader]`` options checked against the reader's signature (a typo fails here, by
    name, not deep inside the reader)."""
    read = READERS.get(protocol.format)
    params = inspect.signature(read).parameters
    allowed = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY and n not in INJECTED]
    bad = sorted(set(protocol.reader) - set(allowed))
    if bad:
        raise ConfigError(f"{protocol.source or protocol.name}: [reader] options {bad} are not "
                          f"options of the {protocol.format!r} reader; it takes {allowed}"
                          f"{suggest(bad, allowed)}")
    kwargs = dict(protocol.reader)
    injected = {"folds": protocol.folds.count, "yaw_edges": protocol.yaw.bins}
    kwargs.update({k: v for k, v in injected.items() if k in params})
    return kwargs


def synth_manifest(location: DataLocation) -> Path | None:
    """The ``synth.json`` of a generated dataset (at the data root or up to two folders above
    the dataset), or None for real data."""
    return next((folder / SYNTH_MANIFEST for folder in _ancestors(location)
                 if (folder / SYNTH_MANIFEST).is_file()), None)


def expected_counts(protocol: Protocol, location: DataLocation) -> tuple[dict[str, int], str]:
    """(counts to check, where they come from). A synthetic dataset's ``synth.json`` may
    declare ``protocol_counts.<name>``; otherwise its counts are not checked, since the
    protocol's describe the real dataset."""
    manifest = synth_manifest(location)
    if manifest is not None:
        try:
            declared = json.loads(manifest.read_text()).get("protocol_counts", {})
        except (json.JSONDecodeError, AttributeError) as exc:
            raise DataError(f"not a valid synth.json ({exc})", manifest) from None
        if protocol.name in declared:
            return dict(declared[protocol.name]), str(manifest)
        return {}, f"synthetic data ({manifest}) declares no counts for {protocol.name}"
    if not protocol.counts:
        return {}, f"protocol {protocol.name} declares none"
    return dict(protocol.counts), protocol.source or protocol.name


def _ancestors(location: DataLocation) -> list[Path]:
    """The data root, then the dataset's own folder and the two above it."""
    start = location.dataset if location.dataset.is_dir() else location.dataset.parent
    found = [location.root] if location.root is not None else []
    return found + [start, *list(absolute(start).parents)[:2]]


def load_eval_set(protocol: Protocol | str, data: str | Path | None = None, *,
                  lenient: bool = False, default: str | Path | None = None,
                  cache_dir: str | Path | None = None,
                  yaw_file: str | Path | None = None,
                  decode: bool = False) -> tuple[EvalSet, ValidationReport]:
    """Read the protocol's dataset and check it: the set and its validation report.

    ``yaw_file``: a ``path,yaw,...`` CSV (``bench yaw``) whose head pose replaces the
    dataset's for the images it lists, before yaw bins are counted.
    ``decode``: decode every image too (:func:`bench.data.decode_check.check_images`).

    Strict (default): the first bad row, missing file or count mismatch raises DataError
    (with ``decode``, so do images that cannot be decoded).
    ``lenient``: bad rows are skipped and listed in ``report.skipped``, count mismatches
    in ``report.mismatches``. Counts are fatal only when the protocol has ``strict_counts``.
    With ``decode``, an image that cannot be decoded is listed there too and left out with
    the templates it leaves empty and the comparisons naming them, before anything is
    counted.
    """
    if isinstance(protocol, str):
        from .loading import load_protocol

        protocol = load_protocol(protocol)
    location = locate_data(protocol, data, default)
    kwargs = reader_kwargs(protocol)
    synthetic = synth_manifest(location) is not None
    if synthetic and protocol.folds.kind == "official" and "folds" in kwargs:
        # A generated dataset may have fewer splits than the real one: read what it holds.
        kwargs["folds"] = None
    yaw_in_reader = yaw_file is not None and _reader_takes(protocol, "yaw_file")
    if yaw_in_reader:
        # this reader bins on yaw while it reads (yaw-bins builds its split there): it must
        # see the file's poses, not get them after the pairs are chosen
        kwargs["yaw_file"] = str(absolute(yaw_file))
    skipped = SkippedRows(lenient=lenient)
    try:
        evalset = read_dataset(protocol.format, location.dataset, skipped=skipped,
                               cache_dir=cache_dir, **kwargs)
    except DataError as exc:
        # The hint helps only when DIR may have been meant as a data root and the error
        # is a file of the dataset missing under it: a file cannot be a root, an error at
        # a line or about what is in the data (too few identities) means the dataset was
        # found, and one about another input (the yaw file) is not about where it is.
        if location.root is None and data is not None and Path(data).is_dir() \
                and exc.line is None and _missing_within(exc.path, data):
            exc.args = (f"{exc} (also looked for {Path(data) / protocol.data}: not found)",)
        raise
    if evalset.task != protocol.task:
        raise ConfigError(f"protocol {protocol.name} is a {protocol.task} protocol but its "
                          f"reader returned {evalset.task} data")
    if yaw_file is not None and not yaw_in_reader:
        apply_listed_yaw_file(evalset.samples, yaw_file, skipped, location.dataset)
    if decode:
        evalset, decoded = check_images(evalset, skipped)
        # first among the notes: `bench run` prints the first ones alone, and what the
        # check left out must not be cut off there
        prov = evalset.samples.provenance
        prov["notes"] = [decoded, *prov.get("notes", [])]
    notes = [f"data found by {location.how}"]
    if synthetic and kwargs.get("folds", 0) is None:
        notes.append(f"synthetic data: its {len(evalset.folds)} official splits read as found "
                     f"(the protocol's {protocol.folds.count} are those of the real dataset)")
    expected, count_source = expected_counts(protocol, location)
    report = build_report(evalset, protocol=protocol.name, dataset=str(location.dataset),
                          yaw=protocol.yaw, expected=expected, count_source=count_source,
                          skipped=skipped.as_records(), notes=notes)
    if report.mismatches and protocol.strict_counts and not lenient:
        raise DataError(f"count mismatch with protocol {protocol.name} (expected counts from "
                        f"{report.count_source}): {'; '.join(report.mismatches)}. A truncated "
                        "download or another release of the files? Check them; to run on "
                        "them as they are, pass --lenient (the mismatch is then reported) or "
                        "use a protocol file with strict_counts = false", location.dataset)
    return evalset, report
