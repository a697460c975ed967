"""insightface verification ``.bin`` files (cfp_fp.bin, cfp_ff.bin, lfw.bin, agedb_30.bin).

A pickle of ``(bins, issame_list)``: 2N encoded images (pair i is images 2i and 2i+1, already
aligned, usually 112x112 JPEG) and N booleans. Files written by Python 2 hold ``str``
blobs, readable only with ``encoding="bytes"``, which also reads Python 3 ``bytes``; a
restricted unpickler accepts nothing but those containers (a pickle can run code).

The blobs are written unchanged (no re-encoding) to a cache folder named by the file's
sha256, so every sample has a real image path like any other reader's, decoding stays
lossless, and a second read costs nothing. Folds are contiguous blocks of pairs
(insightface's ``KFold(10, shuffle=False)``); they equal CFP's official splits only if the
file was built split by split, which provenance says.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import integrity
from ..data.cache import cache_root
from ..data.delimited import require_file
from ..data.evalset import EvalSet
from ..data.samples import PRE_ALIGNED, SampleSet, new_comparisons, new_samples
from ..data.skipped import SkippedRows
from ..errors import DataError
from ..fileio import (
    absolute,
    atomic_write,
    clean_stale_temps,
    dump_json,
    make_temp_dir,
    sha256_file,
)

MAGIC = {b"\xff\xd8\xff": ".jpg", b"\x89PNG": ".png"}
#: Globals a verification .bin may reference: numpy arrays (issame saved as an array, blobs
#: as uint8 arrays), the codec call Python 3 uses for bytes at pickle protocol < 3, and
#: bytearray blobs, rebuilt by a call below protocol 5 (spelt ``__builtin__`` by Python 2
#: and by Python 3 at protocol < 3); at protocol 5 (insightface's packing scripts on Python
#: 3.8+) numpy rebuilds arrays from their out-of-band buffer with ``_frombuffer``.
SAFE_GLOBALS = {
    ("_codecs", "encode"), ("builtins", "bytearray"), ("__builtin__", "bytearray"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def load_bin(path: str | Path) -> tuple[list[bytes], np.ndarray]:
    """(2N encoded images as bytes, (N,) bool issame) from a .bin, with shape checks."""
    path = require_file(Path(path), "insightface verification .bin file")
    with open(path, "rb") as f:
        try:
            obj = _SafeUnpickler(f, encoding="bytes").load()
        except Exception as exc:  # any unpickling failure means "not a .bin we can read"
            raise DataError(f"not a readable insightface .bin pickle ({exc})", path) from None
    if not isinstance(obj, (tuple, list)) or len(obj) != 2:
        raise DataError("expected a pickled pair (bins, issame_list)", path)
    bins, issame = obj
    blobs = [_as_bytes(b, i, path) for i, b in enumerate(bins)]
    same = np.asarray(issame)
    if same.ndim != 1 or not (same.dtype == bool or np.isin(same, (0, 1)).all()):
        raise DataError("issame_list must be a flat list of booleans", path)
    if len(blobs) != 2 * len(same):
        raise DataError(f"count mismatch: {len(blobs)} images for {len(same)} pairs "
                        f"(expected {2 * len(same)})", path)
    return blobs, same.astype(bool)


def _as_bytes(blob, index: int, path: Path) -> bytes:
    if isinstance(blob, (bytes, bytearray)):
        return bytes(blob)
    if isinstance(blob, np.ndarray) and blob.dtype == np.uint8:
        return blob.tobytes()
    raise DataError(f"image {index} is a {type(blob).__name__}, not encoded bytes", path)


def write_bin(path: str | Path, images: Sequence[bytes], issame: Sequence[bool],
              protocol: int = 4) -> str:
    """Write a .bin as insightface's tools do (Python 3 bytes); return its sha256."""
    if len(images) != 2 * len(issame):
        raise ValueError(f"{len(images)} images for {len(issame)} pairs")
    with atomic_write(path, "wb") as f:
        pickle.dump(([bytes(b) for b in images], [bool(s) for s in issame]), f,
                    protocol=protocol)
    return sha256_file(path)


def read(path: str | Path, *, folds: int = 10, cache_dir: str | Path | None = None,
         skipped: SkippedRows | None = None) -> EvalSet:
    """Pairs of a .bin as an image-level 1:1 protocol; images land in the cache folder."""
    skipped = skipped if skipped is not None else SkippedRows()
    path = absolute(path)
    digest = sha256_file(require_file(path, "insightface verification .bin file"))
    blobs, issame = load_bin(path)
    suffixes = [_suffix(blob) for blob in blobs]
    bad_pair = np.zeros(len(issame), dtype=bool)
    for i in (i for i, s in enumerate(suffixes) if s is None):
        skipped.reject(DataError(f"image {i} (pair {i // 2 + 1}) is not a JPEG or PNG "
                                 f"({len(blobs[i])} bytes starting {blobs[i][:4]!r})", path))
        bad_pair[i // 2] = True
    image_dir = _cache_images(blobs, [s or ".bin" for s in suffixes], digest, cache_dir)
    names = [f"{i:06d}{s or '.bin'}" for i, s in enumerate(suffixes)]
    n_pairs = len(issame)
    fold = np.empty(n_pairs, dtype=np.int64)
    for k, block in enumerate(np.array_split(np.arange(n_pairs), folds), 1):
        fold[block] = k
    keep = ~bad_pair
    ids = np.arange(2 * n_pairs).astype(str)
    comparisons = new_comparisons(ids[0::2][keep], ids[1::2][keep], issame[keep].astype(int),
                                  fold[keep])
    sizes = _image_sizes(blobs)
    size = next((s for s in sizes if s is not None), None)
    # a crop of another size (160x160) holds the template scaled to its own size
    points = {s: aligned_points(s and list(s)) for s in set(sizes)}
    # a skipped pair's images go too: no comparison uses them and one does not decode
    used = np.flatnonzero(np.repeat(keep, 2))
    frame = new_samples([str(image_dir / names[i]) for i in used], [""] * len(used),
                        template=ids[used], landmarks=[points[sizes[i]] for i in used],
                        landmark_source=[PRE_ALIGNED] * len(used))
    provenance = {
        "format": "insightface_bin",
        "files": {path.name: digest},
        "source": str(path),
        "bytes": path.stat().st_size,
        "pickle_protocol": _pickle_protocol(path),
        "image_cache": str(image_dir),
        "image_size": size and list(size),
        "pre_aligned": True,
        "landmark_scheme": "five",
        "alignment": (f"crops already aligned to {ALIGNED_TEMPLATE}: each carries that "
                      "template's five points, so an arcface112 model takes the pixels as "
                      "they are and another template gets the exact template-to-template "
                      "warp"),
        "folds": (f"{folds} contiguous blocks of pairs in file order (insightface KFold("
                  f"{folds}, shuffle=False)); equal to the dataset's official splits only "
                  f"if the file was built split by split"),
        "notes": ["subjects unknown: a .bin stores only pair labels", *_size_notes(sizes)],
    }
    return EvalSet(samples=SampleSet(root=path.parent, samples=frame, provenance=provenance),
                   comparisons=comparisons)


#: The template insightface's tools align .bin crops to (norm_crop).
ALIGNED_TEMPLATE = "arcface112"
#: (height, width) of the narrow crop older .bin files hold: ArcFace's frame less 8 px a side.
_NARROW = (112, 96)


def aligned_points(image_size: list[int] | None) -> np.ndarray:
    """(5, 2) float32 ``five``-scheme points of the ArcFace template in a crop of
    ``image_size`` (height, width); 112x112 gives the template's points exactly.

    A crop 96 wide for 112 high (at any scale) is the SphereFace/CosFace crop, whose
    template is ArcFace's without its 8 px side margins (insightface adds 8 to x for 112x112):
    its points sit 8 px to the left, not squeezed."""
    from ..align.templates import get_template
    from ..face3d import FIVE_POINT, LANDMARK_NAMES

    template = get_template(ALIGNED_TEMPLATE)
    points = np.array([template.points[LANDMARK_NAMES[i]] for i in FIVE_POINT], np.float64)
    th, tw = template.size
    h, w = image_size or (th, tw)
    if w * _NARROW[0] == h * _NARROW[1]:
        points -= [(tw - _NARROW[1]) / 2, 0.0]
        tw = _NARROW[1]
    # pixel-centre convention: a resize maps x -> (x + 0.5) * s - 0.5
    points = (points + 0.5) * np.array([w / tw, h / th]) - 0.5
    return points.astype(np.float32)


def _suffix(blob: bytes) -> str | None:
    return next((s for magic, s in MAGIC.items() if blob.startswith(magic)), None)


def _pickle_protocol(path: Path) -> int:
    with open(path, "rb") as f:
        head = f.read(2)
    return head[1] if head[:1] == pickle.PROTO else 0  # protocols 0/1 have no PROTO opcode


def _image_sizes(blobs: list[bytes]) -> list[tuple[int, int] | None]:
    """(height, width) of every image from its header (no decoding), None where unreadable."""
    from PIL import Image

    sizes: list[tuple[int, int] | None] = []
    for blob in blobs:
        try:
            with Image.open(io.BytesIO(blob)) as image:
                sizes.append((image.height, image.width))
        except Exception:  # a header PIL cannot parse: the decoder judges the image later
            sizes.append(None)
    return sizes


def _size_notes(sizes: list[tuple[int, int] | None]) -> list[str]:
    counts = Counter(f"{h}x{w}" for h, w in (s for s in sizes if s is not None))
    if len(counts) < 2:
        return []
    listed = ", ".join(f"{n} of {size}" for size, n in counts.most_common())
    return [f"images of several sizes ({listed}): each carries the template's points "
            "scaled to its own size"]


def _cache_images(blobs: list[bytes], suffixes: list[str], digest: str,
                  cache_dir: str | Path | None) -> Path:
    """``CACHE/bin/<sha256>/NNNNNN.jpg``: built in a temporary folder, renamed when complete,
    so a crash never leaves a folder that looks finished."""
    final = cache_root(cache_dir) / "bin" / digest
    if (final / "complete.json").is_file():
        names = [f"{i:06d}{suffix}" for i, suffix in enumerate(suffixes)]
        if all(integrity.intact(final / n, {"size": len(b)}, final)
               for n, b in zip(names, blobs, strict=True)):
            return final  # else reported and removed: built again below
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(final.parent)
    tmp = make_temp_dir(final.parent, digest[:16])  # umask's mode, cleaned if we are killed
    try:
        for i, (blob, suffix) in enumerate(zip(blobs, suffixes, strict=True)):
            with open(tmp / f"{i:06d}{suffix}", "wb") as f:
                f.write(blob)
        dump_json({"sha256": digest, "images": len(blobs)}, tmp / "complete.json")
        if final.exists():  # an older incomplete copy, or a concurrent reader finished first
            if (final / "complete.json").is_file():
                shutil.rmtree(tmp)
                return final
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
