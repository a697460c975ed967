"""Decode every image of a dataset once, before any work, so that a corrupt file is found by
``protocols validate`` and by a lenient run, and not halfway through a run. The decoder is
the one runs use (:mod:`bench.align.decode`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import DataError
from .evalset import EvalSet, Removal, without_samples
from .samples import SampleSet, at_listing, at_listings
from .skipped import SkippedRows


def _check(path: str | Path) -> DataError | None:
    from ..align.decode import decode_cv2, read_bytes

    try:
        decode_cv2(read_bytes(path), path)
    except DataError as exc:
        return exc
    return None


def undecodable(paths: Sequence[str | Path], workers: int = 4,
                progress: Callable[[int], None] | None = None) -> list[DataError]:
    """One DataError per distinct image of ``paths`` that cannot be read and decoded."""
    unique = list(dict.fromkeys(str(p) for p in paths))
    bad: list[DataError] = []
    with ThreadPoolExecutor(max(1, workers)) as pool:  # OpenCV and file reads free the GIL
        for err in pool.map(_check, unique, chunksize=64):
            if err is not None:
                bad.append(err)
            if progress is not None:
                progress(1)
    return bad


def without_undecodable(sample_set: SampleSet, skipped: SkippedRows,
                        workers: int = 4) -> SampleSet:
    """For the commands that work on images alone (detect, yaw, align): lenient, the set
    without its images that do not decode, each rejected through ``skipped`` at every list
    row naming it, as a lenient run skips them; strict, the set as it is (the first bad
    image stops the command where it is reached, named at its list row)."""
    if not skipped.lenient:
        return sample_set
    samples = sample_set.samples
    bad = undecodable(samples["path"], workers)
    if not bad:
        return sample_set
    keep = ~_reject(bad, samples, skipped)
    return dataclasses.replace(sample_set, samples=samples[keep].reset_index(drop=True))


def _reject(bad: list[DataError], samples, skipped: SkippedRows):
    """Each bad image rejected through ``skipped`` at every list row naming it (an IJB-A
    image may be listed by several splits); (N,) bool: the rows of those images."""
    for err in bad:
        for row in at_listings(err, samples):
            skipped.reject(row)
    return samples["path"].astype(str).isin({str(e.path) for e in bad}).to_numpy()


def check_images(evalset: EvalSet, skipped: SkippedRows, workers: int = 4
                 ) -> tuple[EvalSet, str]:
    """Decode every image of ``evalset``: the set to evaluate and a note saying what was
    decoded and left out.

    Strict (``skipped`` not lenient): a DataError naming the first bad images, each at the
    list row that names it. Lenient: each bad image is rejected through ``skipped`` at every
    list row naming it, and the set comes back without it, without the templates it leaves
    empty and without the comparisons naming those
    (:func:`~bench.data.evalset.without_samples`).
    """
    samples = evalset.samples.samples
    bad = undecodable(samples["path"], workers)
    n_images = samples["path"].nunique()
    if not bad:
        return evalset, f"decoded all {n_images} images"
    if not skipped.lenient:
        raise _undecodable_error([at_listing(e, samples) for e in bad])
    kept, removal = without_samples(evalset, _reject(bad, samples, skipped))
    if (len(kept.comparisons) if kept.comparisons is not None else len(kept.search)) == 0:
        raise DataError(f"--lenient left nothing to evaluate: {len(bad)} of {n_images} images "
                        f"cannot be decoded, first: {bad[0]}", evalset.samples.root)
    return kept, _skip_note(len(bad), removal, evalset.task)


def _undecodable_error(bad: list[DataError], shown: int = 5) -> DataError:
    listed = "\n  ".join(str(e) for e in bad[:shown])
    more = f"\n  ... and {len(bad) - shown} more" if len(bad) > shown else ""
    return DataError(f"{len(bad)} image(s) cannot be decoded:\n  {listed}{more}")


def _skip_note(n_bad: int, removal: Removal, task: str) -> str:
    parts = [f"{_count(n_bad, 'image')} that cannot be decoded skipped (lenient; each listed "
             f"with the skipped rows)"]
    if removal.templates:
        k = len(removal.templates)
        shown = ", ".join(removal.templates[:5]) + (", ..." if k > 5 else "")
        entries = ("pair", "pairs") if task == "verify" else ("gallery/probe entry",
                                                              "gallery/probe entries")
        parts.append(f"{_count(k, 'template')} left without an image ({shown}) dropped, with "
                     f"the {_count(removal.comparisons, *entries)} naming "
                     f"{'it' if k == 1 else 'them'}")
    if removal.shrunk:
        parts.append(f"{_count(removal.shrunk, 'template')} pooled from the images left")
    if removal.unmated:
        parts.append(f"{_count(removal.unmated, 'probe')} lost the gallery mate: now "
                     f"non-mated searches")
    return "; ".join(parts)


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"
