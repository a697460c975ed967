"""Atomic writes and content hashes: a killed process never leaves a half-written result."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8",
                 durable: bool = True) -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it over ``path`` only on success.

    The rename is atomic on POSIX, so readers see either the old or the new file, never a
    half-written one. A ``.gz`` suffix gzips the content deterministically (no timestamp).
    ``durable=False`` skips the fsync: for many small cache entries whose reader checks
    them and recomputes a damaged one (an fsync each costs more than the work cached).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as raw:
            sink: IO = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if path.suffix == ".gz" else raw
            out: IO = sink if "b" in mode else io.TextIOWrapper(sink, encoding=encoding, newline="")
            yield out
            out.flush()
            if out is not sink:
                out.detach()
            if sink is not raw:
                sink.close()
            raw.flush()
            if durable:
                os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def json_safe(obj: Any) -> Any:
    """Replace NaN and +-inf by None recursively: JSON never holds them."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:  # numpy scalars
        return json_safe(obj.item())
    if hasattr(obj, "tolist"):
        return json_safe(obj.tolist())
    return obj


def dump_json(obj: Any, path: str | Path | None = None, indent: int | None = 2,
              durable: bool = True) -> str:
    """Serialise with NaN/inf as null; write atomically when ``path`` is given."""
    text = json.dumps(json_safe(obj), indent=indent, sort_keys=False, allow_nan=False) + "\n"
    if path is not None:
        with atomic_write(path, durable=durable) as f:
            f.write(text)
    return text


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
