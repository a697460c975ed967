"""Yaw-binned verification splits built from any dataset with an identity and a yaw per image.

Identities are dealt into ``folds`` disjoint groups by a seeded permutation. Within each
fold, every bin-by-bin cell (bin of side a <= bin of side b, over |yaw|) gets the same
number of genuine and impostor pairs: ``pairs_per_cell`` of each, or fewer where the fold
lacks candidates (then both shrink together and provenance says so). Side ``a`` is the
lower-|yaw| bin. The list is written as ``a,b,label,fold`` CSV with a sha256 sidecar, so
the split can be shared and re-read (:func:`bench.data.comparisons_io.read_comparisons`)
instead of rebuilt; the same input and parameters always give the same file.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .. import integrity
from ..data.cache import cache_root
from ..data.comparisons_io import read_comparisons, sidecar, write_comparisons
from ..data.evalset import EvalSet
from ..data.samples import SampleSet, new_comparisons
from ..data.skipped import SkippedRows
from ..data.yaw_file import apply_listed_yaw_file
from ..errors import ConfigError, DataError
from ..fileio import absolute
from ..yawbins import DEFAULT_EDGES, bin_labels, check_edges, yaw_bin

BUILDER_VERSION = 1
#: Readers whose images can feed a split: name -> "module:function(path, skipped)".
SOURCES = {
    "manifest": "bench.readers.manifest:read_samples",
    "cfp": "bench.readers.cfp:read_samples",
}


def read(path: str | Path, *, source: str = "auto", folds: int = 10,
         yaw_edges: Sequence[float] = DEFAULT_EDGES, pairs_per_cell: int = 50, seed: int = 0,
         split_file: str | None = None, yaw_file: str | None = None,
         cache_dir: str | Path | None = None, skipped: SkippedRows | None = None) -> EvalSet:
    """Read the source images, then read ``split_file`` (relative to ``path``'s folder) when
    given, else build the split and keep it in the cache (reused while input and
    parameters are unchanged).

    ``yaw_file`` (``path,yaw[,pitch,roll,source]`` CSV as ``bench yaw`` writes it, relative
    to ``path``'s folder or absolute) sets the yaw of the images it lists, so a dataset
    without yaw (the real CFP) can be binned on estimated poses.
    """
    skipped = skipped if skipped is not None else SkippedRows()
    path = absolute(path)
    base = path if path.is_dir() else path.parent
    samples = read_source(path, source, skipped)
    check_image_level(samples)
    if yaw_file is not None:
        apply_listed_yaw_file(samples, base / yaw_file, skipped, path)
    params = {"folds": folds, "yaw_edges": list(check_edges(yaw_edges)),
              "pairs_per_cell": pairs_per_cell, "seed": seed, "version": BUILDER_VERSION}
    if split_file is not None:
        list_path = base / split_file
        comparisons, digest = read_comparisons(list_path, samples.samples["template"], skipped)
        how = f"read from {list_path}"
    else:
        list_path = cache_root(cache_dir) / "splits" / f"yawbins-{_input_key(samples, params)}.csv"
        if (list_path.is_file() and sidecar(list_path).is_file()
                and integrity.intact(list_path, {"sha256": _recorded(sidecar(list_path))},
                                     sidecar(list_path))):
            comparisons, digest = read_comparisons(list_path, samples.samples["template"])
            how = f"built earlier with these parameters; read from {list_path}"
        else:
            comparisons, notes = build_split(samples.samples, **{k: params[k] for k in (
                "folds", "yaw_edges", "pairs_per_cell", "seed")})
            digest = write_comparisons(comparisons, list_path)
            samples.provenance.setdefault("notes", []).extend(notes)
            how = f"built and written to {list_path}"
    samples.provenance.update(
        split_file=str(list_path), split_sha256=digest, split_params=params,
        folds=(f"{folds} identity-disjoint folds, balanced genuine/impostor pairs per yaw "
               f"cell; {how}"))
    samples.provenance.setdefault("files", {})[list_path.name] = digest
    return EvalSet(samples=samples, comparisons=comparisons)


def _recorded(check: Path) -> str:
    text = check.read_text().split()
    return text[0] if text else ""


def read_source(path: Path, source: str, skipped: SkippedRows) -> SampleSet:
    """Samples of ``path`` read as ``source``; ``auto``: CFP when the folder holds
    ``Protocol/Pair_list_F.txt``, else a manifest (CSV, folder with metadata.csv, folders)."""
    if source == "auto":
        source = "cfp" if (path / "Protocol" / "Pair_list_F.txt").is_file() else "manifest"
    if source not in SOURCES:
        raise ConfigError(f"yaw-split source must be 'auto' or one of {sorted(SOURCES)}, got "
                          f"{source!r}")
    module, _, attr = SOURCES[source].partition(":")
    return getattr(importlib.import_module(module), attr)(path, skipped)


def check_image_level(samples: SampleSet) -> None:
    if samples.samples["template"].duplicated().any():
        raise DataError("a yaw-binned split pairs single images, but this dataset groups "
                        "images into templates; drop its 'template' column", samples.root)


def build_split(samples: pd.DataFrame, *, folds: int = 10,
                yaw_edges: Sequence[float] = DEFAULT_EDGES, pairs_per_cell: int = 50,
                seed: int = 0) -> tuple[pd.DataFrame, list[str]]:
    """(comparisons over ``samples["template"]``, notes on cells that came up short).

    Images with unknown yaw are left out (and counted in the notes).
    """
    if folds < 2 or pairs_per_cell < 1:
        raise ConfigError(f"need folds >= 2 and pairs_per_cell >= 1, got {folds}, "
                          f"{pairs_per_cell}")
    edges = check_edges(yaw_edges)
    rng = np.random.default_rng(seed)
    bins = yaw_bin(samples["yaw"].to_numpy(dtype=np.float64), edges)
    usable = np.flatnonzero(bins >= 0)
    notes = []
    if usable.size < len(samples):
        n = len(samples) - usable.size
        notes.append(f"{n} image{'s' * (n != 1)} with unknown yaw left out")
    subject_code, subjects = pd.factorize(samples["subject"].to_numpy()[usable], sort=True)
    if len(subjects) < 2 * folds:
        # no yaw at all is the usual state of a folder of photos, and a small set of one's
        # own is the other usual cause: each has a remedy
        fewer = max(2, len(subjects) // 2)
        how = (": estimate it with `bench yaw DATA --out yaw.csv`, then pass --yaw-file "
               "yaw.csv" if len(subjects) == 0 else
               f": run a protocol file with fewer folds, e.g. -p mine.toml holding "
               f"'name = \"mine\"', 'extends = \"yaw-bins\"' and '[folds] count = "
               f"{fewer}'" if fewer < folds else f": {_MORE_YAW}")
        raise DataError(f"{len(subjects)} identities with a known yaw: too few for {folds} "
                        f"folds (need at least two per fold){how}")
    fold_of_subject = np.empty(len(subjects), dtype=np.int64)
    for k, group in enumerate(np.array_split(rng.permutation(len(subjects)), folds), 1):
        fold_of_subject[group] = k
    image_fold = fold_of_subject[subject_code]
    n_bins = len(edges) - 1
    cells = [(lo, hi) for lo in range(n_bins) for hi in range(lo, n_bins)]
    labels = bin_labels(edges)
    parts = []
    for fold in range(1, folds + 1):
        members = usable[image_fold == fold]
        subj = subject_code[image_fold == fold]
        genuine = _genuine_candidates(members, subj, bins)
        for lo, hi in cells:
            cand = genuine[(genuine[:, 2] == lo) & (genuine[:, 3] == hi)]
            n = min(pairs_per_cell, len(cand))
            chosen = cand[rng.choice(len(cand), size=n, replace=False)] if n else cand[:0]
            impostor = _impostors(members, subj, bins, lo, hi, n, rng)
            n = min(n, len(impostor))
            if n < pairs_per_cell:
                notes.append(f"fold {fold} cell {labels[lo]}|{labels[hi]}: {n} genuine and "
                             f"{n} impostor pairs (fewer than {pairs_per_cell} candidates)")
            parts.append(np.column_stack([chosen[:n, 0], chosen[:n, 1], np.ones(n, np.int64),
                                          np.full(n, fold)]))
            parts.append(np.column_stack([impostor[:n, 0], impostor[:n, 1],
                                          np.zeros(n, np.int64), np.full(n, fold)]))
    table = np.concatenate(parts).astype(np.int64) if parts else np.zeros((0, 4), np.int64)
    _require_both_labels(table, folds)
    template = samples["template"].to_numpy()
    return new_comparisons(template[table[:, 0]], template[table[:, 1]], table[:, 2],
                           table[:, 3]), notes


#: What a set with too few usable identities lacks (two folds is the least there is).
_MORE_YAW = ("needs more identities with two or more images of known yaw: estimate the "
             "missing yaw with `bench yaw DATA --out yaw.csv` (a --yaw-file must cover every "
             "photo), or add photos")


def _require_both_labels(table: np.ndarray, folds: int) -> None:
    """Every fold needs genuine and impostor pairs: a fold without one cannot be scored,
    and cross-validated accuracy over the rest would be reported as if nothing were amiss."""
    for fold in range(1, folds + 1):
        labels = table[table[:, 3] == fold, 2]
        for value, name in ((1, "genuine"), (0, "impostor")):
            if not (labels == value).any():
                raise DataError(f"fold {fold} has no {name} pair (its identities have too "
                                f"few images of known yaw): the split {_MORE_YAW}")


def _genuine_candidates(members: np.ndarray, subj: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """(M, 4) rows ``a, b, bin a, bin b`` of every same-identity pair, ``bin a <= bin b``."""
    frame = pd.DataFrame({"i": members, "s": subj})
    pairs = frame.merge(frame, on="s")
    pairs = pairs[pairs["i_x"] < pairs["i_y"]]
    a, b = pairs["i_x"].to_numpy(), pairs["i_y"].to_numpy()
    swap = bins[a] > bins[b]
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    return np.column_stack([a, b, bins[a], bins[b]]).astype(np.int64)


def _impostors(members: np.ndarray, subj: np.ndarray, bins: np.ndarray, lo: int, hi: int,
               n: int, rng: np.random.Generator, rounds: int = 20) -> np.ndarray:
    """Up to ``n`` distinct different-identity pairs (a in bin lo, b in bin hi), sampled
    with rejection: cheap when pools are large, exhaustive enough when they are small."""
    pool_a = np.flatnonzero(bins[members] == lo)
    pool_b = np.flatnonzero(bins[members] == hi)
    if n == 0 or not pool_a.size or not pool_b.size:
        return np.zeros((0, 2), np.int64)
    found = np.zeros((0, 2), np.int64)
    for _ in range(rounds):
        draw = 2 * (n - len(found)) + 16
        ia, ib = rng.choice(pool_a, draw), rng.choice(pool_b, draw)
        keep = subj[ia] != subj[ib]
        pairs = np.column_stack([members[ia[keep]], members[ib[keep]]])
        if lo == hi:  # the same unordered pair may be drawn either way round
            pairs = np.sort(pairs, axis=1)
        found = np.concatenate([found, pairs])
        _, first = np.unique(found, axis=0, return_index=True)
        found = found[np.sort(first)]
        if len(found) >= n:
            break
    return found[:n]


def _input_key(samples: SampleSet, params: dict) -> str:
    """Content hash of the images' (template, subject, yaw) and the build parameters."""
    frame = samples.samples
    h = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    h.update(pd.util.hash_pandas_object(
        frame.loc[:, ["template", "subject", "yaw"]].fillna({"yaw": np.inf}),
        index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]
