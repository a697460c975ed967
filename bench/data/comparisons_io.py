"""Comparison lists on disk (``a,b,label,fold`` CSV with a sha256 sidecar) and the checks
every reader applies to its pairs: unknown template ids and duplicate pairs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ..fileio import atomic_write, sha256_file
from .delimited import LINE, TEXT, keep_rows, parse_numbers, read_table
from .samples import COMPARISON_COLUMNS, duplicate_pairs, new_comparisons, pair_keys
from .skipped import SkippedRows


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def write_comparisons(comparisons: pd.DataFrame, path: str | Path) -> str:
    """Write ``a,b,label,fold`` rows and ``PATH.sha256`` (``sha256sum`` format); return the hash.

    Both files are written atomically; ``sha256sum -c PATH.sha256`` verifies the list.
    """
    path = Path(path)
    with atomic_write(path) as f:
        comparisons.loc[:, list(COMPARISON_COLUMNS)].to_csv(f, index=False, lineterminator="\n")
    digest = sha256_file(path)
    with atomic_write(sidecar(path)) as f:
        f.write(f"{digest}  {path.name}\n")
    return digest


def reject_bad_pairs(pairs: pd.DataFrame, known_templates, path: Path,
                     skipped: SkippedRows, repeats: list[DataError] | None = None,
                     line_text: Callable[[int], str] | None = None) -> pd.DataFrame:
    """Drop (through ``skipped``) pairs naming an unknown template, pairing a template with
    itself, or listed twice.

    ``pairs`` needs ``a``, ``b`` and the ``_line``/``_text`` columns of :func:`read_table`;
    rows gathered from several files name theirs in a ``_file`` column (else ``path``).
    A list read without a text per row (:func:`~bench.data.delimited.read_columns`, whose
    millions of rows would each hold a string) gives ``line_text``: line number -> text,
    called for the rejected rows alone.
    A pair repeated in the other order counts as a duplicate; the first occurrence is kept.
    With a ``repeats`` list, repeated and self pairs are kept as published instead (CFP's official
    FF splits repeat 130 pairs, and every published number counts them): each is noted
    there as ``(kind, error)``, the error naming its file and line and the earlier pair's,
    ``kind`` one of :data:`REPEAT_KINDS`.
    """
    files = pairs["_file"].to_numpy() if "_file" in pairs else np.full(len(pairs), str(path))
    known = pd.Index(pd.unique(np.asarray(list(known_templates), dtype=object).astype(str)))

    def error(i: int, message: str) -> DataError:
        line = int(pairs[LINE].iat[i])
        text = pairs[TEXT].iat[i] if line_text is None else line_text(line)
        return DataError(message, files[i], line, text)

    ok = np.ones(len(pairs), dtype=bool)
    for side in ("a", "b"):
        unknown = ~pairs[side].isin(known).to_numpy()
        for i in np.flatnonzero(unknown & ok):
            skipped.reject(error(i, f"unknown template id {pairs[side].iat[i]!r}"))
        ok &= ~unknown
    same = ok & (pairs["a"].astype(str).to_numpy() == pairs["b"].astype(str).to_numpy())
    for i in np.flatnonzero(same):
        message = f"pair ({pairs['a'].iat[i]}, {pairs['b'].iat[i]}) compares a template with itself"
        if repeats is None:  # it scores the maximum whatever the model: a free true accept
            skipped.reject(error(i, message))
        else:
            repeats.append(("self", error(i, message)))
    if repeats is None:
        ok &= ~same
    dup = np.zeros(len(pairs), dtype=bool)
    dup[ok] = duplicate_pairs(pairs["a"].to_numpy()[ok], pairs["b"].to_numpy()[ok])
    if repeats is None:
        for i in np.flatnonzero(dup):
            skipped.reject(error(i, f"duplicate pair ({pairs['a'].iat[i]}, {pairs['b'].iat[i]})"))
        return keep_rows(pairs, ok & ~dup)
    repeats += _repeats(pairs, ok, dup, files, error)
    return keep_rows(pairs, ok)


#: How a kept repeat relates to the pair it repeats: the sides swapped in the same file (as
#: CFP's published FF splits), the same order in the same file, or a pair of another file;
#: "self": a pair of one template with itself, kept as published too.
REPEAT_KINDS = ("other order", "same order", "other file", "self")


def _repeats(pairs: pd.DataFrame, ok: np.ndarray, dup: np.ndarray, files: np.ndarray,
             error) -> list[tuple[str, DataError]]:
    rows = np.flatnonzero(ok)
    keys = pair_keys(pairs["a"].to_numpy()[ok], pairs["b"].to_numpy()[ok])
    first = rows[pd.Series(np.arange(rows.size)).groupby(keys).transform("first").to_numpy()]
    earlier = np.zeros(len(pairs), dtype=np.int64)
    earlier[rows] = first
    a, b = pairs["a"].astype(str).to_numpy(), pairs["b"].astype(str).to_numpy()
    out = []
    for i in np.flatnonzero(dup):
        j = int(earlier[i])
        kind = ("other file" if files[i] != files[j] else
                "same order" if a[i] == a[j] else "other order")
        where = f"line {int(pairs[LINE].iat[j])}" + ("" if files[i] == files[j]
                                                     else f" of {files[j]}")
        out.append((kind, error(i, f"duplicate pair ({a[i]}, {b[i]}): repeats {where}, "
                                   f"{'the sides swapped' if a[i] != a[j] else 'as written'}")))
    return out


def read_comparisons(path: str | Path, known_templates, skipped: SkippedRows | None = None
                     ) -> tuple[pd.DataFrame, str]:
    """Read a list written by :func:`write_comparisons`: (comparisons, sha256 of the file).

    When ``PATH.sha256`` exists the file must match it, so a shared split is the split
    that was published.
    """
    path = Path(path)
    skipped = skipped if skipped is not None else SkippedRows()
    rows = read_table(path, "comparison list", required=COMPARISON_COLUMNS, skipped=skipped)
    digest = sha256_file(path)
    check = sidecar(path)
    if check.is_file():
        expected = check.read_text().split()[0] if check.read_text().strip() else ""
        if expected != digest:
            raise DataError(f"comparison list does not match its checksum {check.name} "
                            f"(file {digest[:12]}..., recorded {expected[:12]}...)", path)
    label, ok_label = parse_numbers(rows, "label", path, skipped, what="bad label",
                                    allow_empty=False, integer=True)
    fold, ok_fold = parse_numbers(rows, "fold", path, skipped, what="bad fold",
                                  allow_empty=False, integer=True)
    ok = ok_label & ok_fold
    for i in np.flatnonzero(ok & ~np.isin(label, (0, 1))):
        skipped.reject(DataError("label must be 0 or 1", path, int(rows[LINE].iat[i]),
                                 rows[TEXT].iat[i]))
    ok &= np.isin(label, (0, 1))
    for i in np.flatnonzero(ok & (fold < 1)):
        skipped.reject(DataError("fold must be >= 1", path, int(rows[LINE].iat[i]),
                                 rows[TEXT].iat[i]))
    ok &= fold >= 1
    rows = rows.assign(label=label, fold=fold)
    rows = reject_bad_pairs(keep_rows(rows, ok), known_templates, path, skipped)
    return new_comparisons(rows["a"], rows["b"], rows["label"], rows["fold"]), digest
