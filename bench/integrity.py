"""One integrity check for every cache entry: verify what was recorded, rebuild on mismatch.

A cache entry (aligned crops, a feature matrix, a finished training run) records the size
and/or sha256 of its payload when it is written. Before an entry is reused, its payload is
checked against that record; a mismatch (a truncated file after a full disk or a killed
copy, a file edited by hand) is reported as a :class:`CacheWarning` naming the file, and
the caller rebuilds the entry as if it were absent. A corrupt cache never fails a run and
is never trusted.

The CLI prints these warnings as ``warning: ...`` lines.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from .errors import BenchError
from .fileio import (
    atomic_write,
    clean_stale_temps,
    dump_json,
    output_error,
    sha256_bytes,
    sha256_file,
)


class CacheWarning(UserWarning):
    """A cache entry failed its check and is rebuilt."""


def warn_rebuild(path: str | Path, reason: str, action: str = "rebuilding it") -> None:
    warnings.warn(f"{path}: {reason}; {action}", CacheWarning, stacklevel=3)


def record(path: str | Path, hash_: bool = True) -> dict:
    """What to store beside a payload so it can be verified later."""
    path = Path(path)
    out = {"size": path.stat().st_size}
    if hash_:
        out["sha256"] = sha256_file(path)
    return out


def mismatch(path: str | Path, recorded: dict | None) -> str | None:
    """Why ``path`` does not match ``recorded`` (size, sha256; whichever it holds), or None."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    if not recorded:
        return None
    size = path.stat().st_size
    if "size" in recorded and recorded["size"] != size:
        return f"{size} bytes where {recorded['size']} were recorded (truncated?)"
    if "sha256" in recorded and recorded["sha256"] != sha256_file(path):
        return "content does not match its recorded sha256"
    return None


def intact(path: str | Path, recorded: dict | None, *also: str | Path) -> bool:
    """True when ``path`` matches ``recorded``; else a CacheWarning, ``path`` (and the
    ``also`` paths, e.g. its record) removed, and False: the caller rebuilds."""
    reason = mismatch(path, recorded)
    if reason is None:
        return True
    warn_rebuild(path, reason)
    for item in (path, *also):
        remove(item)
    return False


def remove(path: str | Path) -> None:
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def save_array(path: str | Path, array: np.ndarray, meta: dict | None = None) -> Path:
    """Write ``array`` as ``.npy`` (atomically) and its record beside it (``.npy.json``),
    with ``meta``: what the array's producer wants a cache hit to report."""
    path = Path(path)
    clean_stale_temps(path.parent)
    payload = io.BytesIO()
    np.save(payload, array)
    data = payload.getbuffer()
    # the record first: a process killed between the two writes leaves a record without its
    # array, which reads as absent, never an array without its record
    dump_json({"size": len(data), "sha256": sha256_bytes(data), "shape": list(array.shape),
               "dtype": str(array.dtype), "meta": meta or {}}, _sidecar(path))
    with atomic_write(path, "wb") as f:
        f.write(data)
    return path


def array_meta(path: str | Path) -> dict:
    """The ``meta`` saved with an array by :func:`save_array` ({} when there is none)."""
    try:
        return dict(json.loads(_sidecar(Path(path)).read_text()).get("meta") or {})
    except (OSError, ValueError, AttributeError):
        return {}


def load_array(path: str | Path, rows: int | None = None) -> np.ndarray | None:
    """The array saved by :func:`save_array`, or None when absent or failing its check (a
    CacheWarning says so and the entry is removed, so the caller rebuilds it)."""
    path = Path(path)
    if not path.is_file():
        return None
    side = _sidecar(path)
    recorded = None
    if side.is_file():
        try:
            recorded = json.loads(side.read_text())
        except (OSError, ValueError):
            recorded = None
    # no record: nothing vouches for the array (a cache copied in part, or cleaned by hand)
    reason = mismatch(path, recorded) if recorded else "no record of its size and checksum"
    array = None
    if reason is None:
        try:
            array = np.load(path)
        except (OSError, ValueError, EOFError) as exc:
            reason = f"unreadable ({exc})"
    if reason is None and rows is not None and (array.ndim < 1 or array.shape[0] != rows):
        reason = f"{array.shape[0] if array.ndim else 0} rows where {rows} are needed"
    if reason is not None:
        warn_rebuild(path, reason)
        remove(path)
        remove(side)
        return None
    return array


def preallocate(path: str | Path) -> None:
    """Reserve the blocks of ``path`` (its current size) now, so that a full disk is an
    error here and not a SIGBUS later when a memory map writes into a sparse file."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0 or not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):  # e.g. some network file systems
            return
        hint = f"needs {size / 1e6:.1f} MB: free some space or set $BENCH_CACHE elsewhere"
        raise BenchError(str(output_error(exc, path, hint))) from None
    finally:
        os.close(fd)
