"""Decode every image of a dataset once, so a corrupt file is found by ``protocols validate``
and not halfway through a run. The decoder is the one runs use (:mod:`bench.align.decode`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from ..errors import DataError


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


def require_decodable(paths: Sequence[str | Path], workers: int = 4, shown: int = 5,
                      samples: pd.DataFrame | None = None) -> int:
    """Decode every image; a DataError naming the first bad ones if any fails, each at the
    list row that names it when ``samples`` records one. Returns the number of distinct
    images checked."""
    bad = undecodable(paths, workers)
    if samples is not None:
        from .samples import at_listing

        bad = [at_listing(e, samples) for e in bad]
    if bad:
        listed = "\n  ".join(str(e) for e in bad[:shown])
        more = f"\n  ... and {len(bad) - shown} more" if len(bad) > shown else ""
        raise DataError(f"{len(bad)} image(s) cannot be decoded:\n  {listed}{more}")
    return len(set(map(str, paths)))
