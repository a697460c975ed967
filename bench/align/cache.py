"""Optional on-disk cache of aligned uint8 crops, so training and repeated evaluation decode
and warp each image once.

An entry is a folder ``<root>/<template>-<key>/`` holding ``crops.npy`` ((N, 3, h, w)
uint8, read back as a memory map), ``transforms.npy`` ((N, 2, 3) image -> crop, including
the whole-image fallbacks, which need the decoded size) and ``meta.json`` (the key and the
alignment report). Everything else about a sample's alignment is recomputed from the
same inputs, which the key covers. The key hashes
everything the crops depend on: the cache format, the template's full definition, the
alignment options, and per sample its path, file size and modification time, landmarks,
box, yaw and pitch. Editing an image (new mtime or size), its points or the template gives a
new key; stale entries are never read, only left behind.

Entries are built in a hidden temporary folder and renamed into place when complete, so a
killed run leaves no half-written entry and two concurrent runs cannot corrupt one; the
folders of killed runs are removed by the next writer. ``crops.npy`` is preallocated (a
full disk is an error up front, not a SIGBUS through the memory map) and ``meta.json``
records its size: an entry that fails the check is reported, removed and rebuilt
(:mod:`bench.integrity`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import integrity
from ..fileio import clean_stale_temps, dump_json, make_temp_dir
from .plan import AlignOptions
from .templates import Template

CACHE_FORMAT = 1


def cache_key(paths: Sequence[str], template: Template, options: AlignOptions,
              *arrays: np.ndarray) -> str:
    """Hex digest over the inputs of an alignment run: the format, template and options,
    each path's size and modification time, and the per-sample ``arrays`` (points, boxes,
    yaw, ...)."""
    h = hashlib.sha256()
    header = {"format": CACHE_FORMAT, "template": repr(template),
              "options": dataclasses.asdict(options)}
    h.update(json.dumps(header, sort_keys=True).encode())
    stats = []
    for path in paths:
        try:
            st = os.stat(path)
            stats.append(f"{path}\0{st.st_size}\0{st.st_mtime_ns}")
        except OSError:
            stats.append(f"{path}\0missing")
    h.update("\n".join(stats).encode())
    for array in arrays:
        h.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    return h.hexdigest()


@dataclasses.dataclass
class CacheEntry:
    """A complete entry: crops as a read-only memory map plus the per-row plan."""

    path: Path
    crops: np.ndarray
    transforms: np.ndarray


class CropCache:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def entry_path(self, template: Template, key: str) -> Path:
        return self.root / f"{template.name}-{key[:24]}"

    def load(self, template: Template, key: str) -> CacheEntry | None:
        path = self.entry_path(template, key)
        if not (path / "meta.json").is_file():
            return None
        try:
            meta = json.loads((path / "meta.json").read_text())
        except (OSError, ValueError):
            meta = None
        if meta is not None and meta.get("key") != key:
            return None
        entry = None
        reason = "meta.json unreadable" if meta is None else integrity.mismatch(
            path / "crops.npy", meta.get("crops"))
        if reason is None:
            try:
                entry = CacheEntry(path, np.load(path / "crops.npy", mmap_mode="r"),
                                   np.load(path / "transforms.npy"))
            except (OSError, ValueError, EOFError) as exc:
                reason = f"unreadable ({exc})"
        if reason is not None:  # never trusted: removed, and the caller aligns again
            integrity.warn_rebuild(path, reason)
            integrity.remove(path)
            return None
        return entry

    def writer(self, template: Template, key: str, n: int) -> CacheWriter:
        return CacheWriter(self.entry_path(template, key), key, template, n)


class CacheWriter:
    """Fill crops batch by batch, then :meth:`commit` the transforms; :meth:`abort` on error."""

    def __init__(self, final: Path, key: str, template: Template, n: int):
        self.final = final
        self.key = key
        final.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(final.parent)  # entries of killed runs
        self.tmp = make_temp_dir(final.parent, final.name)
        h, w = template.size
        try:
            self.crops = np.lib.format.open_memmap(self.tmp / "crops.npy", mode="w+",
                                                   dtype=np.uint8, shape=(n, 3, h, w))
            # a sparse map on a full disk dies of SIGBUS mid-run: reserve the blocks now
            integrity.preallocate(self.tmp / "crops.npy")
        except BaseException:
            self.abort()
            raise

    def write(self, rows: np.ndarray, crops: np.ndarray) -> None:
        self.crops[rows] = crops

    def commit(self, transforms: np.ndarray, meta: dict) -> Path:
        self.crops.flush()
        del self.crops
        np.save(self.tmp / "transforms.npy", transforms)
        dump_json({**meta, "key": self.key, "format": CACHE_FORMAT,
                   "crops": integrity.record(self.tmp / "crops.npy", hash_=False)},
                  self.tmp / "meta.json")
        try:
            os.rename(self.tmp, self.final)
        except OSError:  # another run completed the same entry first: theirs is identical
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.final

    def abort(self) -> None:
        self.__dict__.pop("crops", None)
        shutil.rmtree(self.tmp, ignore_errors=True)
