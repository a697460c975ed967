"""A PNG grid of originals beside their crops, to check an alignment by eye.

Each cell shows the original (letterboxed) with its landmarks (green), its box (blue) and
the outline of the region the crop was taken from (yellow), then the crop with the
five reference points it was aligned to (red: the template's, or for a posed fit the
turned mean face's) and the sample's landmarks mapped into it (green), and a caption:
method, yaw and, for a fallback, the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ..face3d import FIVE_POINT
from ..fileio import atomic_write
from .decode import decode_cv2, read_bytes
from .plan import AlignPlan
from .transform import apply, invert

TILE = 192
CAPTION = 18
GREEN, BLUE, YELLOW, RED = (40, 220, 40), (60, 120, 255), (255, 220, 0), (255, 40, 40)


def preview_rows(plan: AlignPlan, yaw: np.ndarray, n: int = 12) -> np.ndarray:
    """Up to ``n`` rows worth looking at: a few fallbacks, then samples spread over |yaw|
    (profiles included), in row order."""
    fallback = np.flatnonzero(plan.fallback_mask())[: max(1, n // 4)]
    rest = np.setdiff1d(np.arange(len(plan.method)), fallback)
    order = rest[np.argsort(np.nan_to_num(np.abs(yaw[rest]), nan=-1.0), kind="stable")]
    k = min(n - len(fallback), len(order))
    spread = order[np.unique(np.linspace(0, len(order) - 1, k).round().astype(int))] if k else []
    return np.sort(np.concatenate([fallback, spread]).astype(int))


def _dots(img: np.ndarray, pts: np.ndarray | None, colour, radius: int = 2) -> None:
    if pts is None:
        return
    for x, y in np.asarray(pts, dtype=np.float64).reshape(-1, 2):
        if np.isfinite(x) and np.isfinite(y):
            cv2.circle(img, (int(round(x)), int(round(y))), radius, colour, -1, cv2.LINE_AA)


def _original_tile(image: np.ndarray, points, box, transform, crop_size) -> np.ndarray:
    h, w = image.shape[:2]
    s = TILE / max(h, w)
    tile = np.zeros((TILE, TILE, 3), np.uint8)
    small = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))),
                       interpolation=cv2.INTER_AREA)
    tile[: small.shape[0], : small.shape[1]] = small
    if box is not None and np.isfinite(box).all():
        x, y, bw, bh = np.asarray(box) * s
        cv2.rectangle(tile, (round(x), round(y)), (round(x + bw), round(y + bh)), BLUE, 1)
    ch, cw = crop_size
    corners = np.array([[-0.5, -0.5], [cw - 0.5, -0.5], [cw - 0.5, ch - 0.5], [-0.5, ch - 0.5]])
    outline = (apply(invert(transform), corners) + 0.5) * s - 0.5
    cv2.polylines(tile, [np.round(outline).astype(np.int32)], True, YELLOW, 1, cv2.LINE_AA)
    if points is not None:
        _dots(tile, (np.asarray(points, dtype=np.float64) + 0.5) * s - 0.5, GREEN)
    return tile


def _crop_tile(crop: np.ndarray, reference, mapped) -> np.ndarray:
    h, w = crop.shape[:2]
    s = TILE / max(h, w)
    tile = np.zeros((TILE, TILE, 3), np.uint8)
    big = cv2.resize(crop, (round(w * s), round(h * s)), interpolation=cv2.INTER_LINEAR)
    tile[: big.shape[0], : big.shape[1]] = big
    if reference is not None:
        _dots(tile, (reference + 0.5) * s - 0.5, RED, 3)
    if mapped is not None:
        _dots(tile, (mapped + 0.5) * s - 0.5, GREEN)
    return tile


def render_preview(images: Sequence[np.ndarray], crops: np.ndarray, transforms: np.ndarray,
                   captions: Sequence[str], points: Sequence | None = None,
                   boxes: Sequence | None = None, references: Sequence | None = None,
                   columns: int = 3) -> np.ndarray:
    """Grid image (H, W, 3) uint8 RGB. ``images``: originals (h, w, 3) RGB; ``crops``
    (N, 3, h, w) uint8; ``transforms`` (N, 2, 3); per sample: ``points`` (K, 2) or None in
    original pixels, ``boxes`` (4,) or None, ``references`` (K, 2) crop points or None."""
    n = len(images)
    points = list(points) if points is not None else [None] * n
    boxes = list(boxes) if boxes is not None else [None] * n
    references = list(references) if references is not None else [None] * n
    crop_size = crops.shape[2:]
    cells = []
    for i in range(n):
        pts = None if points[i] is None else np.asarray(points[i], dtype=np.float64)
        left = _original_tile(images[i], pts, boxes[i], transforms[i], crop_size)
        mapped = None if pts is None else apply(transforms[i], pts)
        right = _crop_tile(np.ascontiguousarray(crops[i].transpose(1, 2, 0)), references[i],
                           mapped)
        caption = np.zeros((CAPTION, 2 * TILE + 4, 3), np.uint8)
        cv2.putText(caption, captions[i][:48], (4, CAPTION - 5), cv2.FONT_HERSHEY_SIMPLEX,
                    0.42, (235, 235, 235), 1, cv2.LINE_AA)
        gap = np.full((TILE, 4, 3), 255, np.uint8)
        cells.append(np.vstack([np.hstack([left, gap, right]), caption]))
    blank = np.zeros_like(cells[0]) if cells else np.zeros((TILE + CAPTION, 2 * TILE + 4, 3),
                                                              np.uint8)
    rows = []
    for start in range(0, max(n, 1), columns):
        row = cells[start:start + columns]
        row += [blank] * (columns - len(row))
        rows.append(np.hstack([np.pad(c, ((4, 4), (4, 4), (0, 0)), constant_values=255)
                               for c in row]))
    return np.vstack(rows)


def load_originals(paths: Sequence[str]) -> list[np.ndarray]:
    """Originals as (h, w, 3) RGB arrays, decoded on the CPU as the aligner does."""
    return [decode_cv2(read_bytes(p), p).permute(1, 2, 0).numpy() for p in paths]


def write_png(grid: np.ndarray, path: str | Path) -> Path:
    ok, data = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 array
        raise RuntimeError("PNG encoding failed")
    with atomic_write(path, "wb") as f:
        f.write(data.tobytes())
    return Path(path)


def write_preview(stream, path: str | Path, n: int = 12, columns: int = 3) -> Path:
    """Preview of an :class:`~bench.align.api.AlignStream`'s samples (see
    :func:`preview_rows`), warped again on the CPU by the same code path."""
    import torch

    from .warp import warp_images

    frame, plan, template = stream.frame, stream.plan, stream.template
    given = frame["yaw"].to_numpy(np.float64) if "yaw" in frame else np.full(len(frame), np.nan)
    yaw = np.where(np.isfinite(given), given, plan.yaw)
    rows = preview_rows(plan, yaw, n)
    originals = load_originals(frame["path"].to_numpy()[rows])
    plan.fill_full_image(rows, np.array([o.shape[:2] for o in originals]))
    transforms = plan.transforms[rows]
    crops = warp_images([torch.from_numpy(o).permute(2, 0, 1) for o in originals], transforms,
                        template.size).numpy()
    captions = []
    for i in rows:
        angle = "yaw ?" if not np.isfinite(yaw[i]) else f"yaw {yaw[i]:+.0f}"
        angle += "" if np.isfinite(given[i]) or not np.isfinite(yaw[i]) else " (estimated)"
        captions.append(f"{plan.method[i]}, {angle}"
                        + (f": {plan.reason[i]}" if plan.reason[i] else ""))
    def cells(column: str):
        return [frame[column].iat[i] for i in rows] if column in frame else None

    five = list(FIVE_POINT)
    references = [template.posed_reference(plan.yaw[i])[five] if plan.method[i] == "posed"
                  else template.reference[five] if plan.method[i] == "template" else None
                  for i in rows]
    grid = render_preview(originals, crops, transforms, captions, points=cells("landmarks"),
                          boxes=cells("box"), references=references, columns=columns)
    return write_png(grid, path)
