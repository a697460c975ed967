"""Where derived data (decoded .bin images, built yaw splits) is kept between runs."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "BENCH_CACHE"


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir`` if given, else ``$BENCH_CACHE``, else ``~/.cache/bench``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bench"


def reader_cache(cache_dir: str | Path | None = None) -> Path:
    """Where readers keep what they derive from a dataset (a .bin's images, yaw splits).

    One place for every caller: ``bench yaw`` and ``bench run`` must name a .bin's images
    by the same paths for a yaw file written by one to apply in the other.
    """
    return cache_root(cache_dir) / "readers"
