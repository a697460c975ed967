"""Batched affine warping with ``affine_grid`` / ``grid_sample`` on the images' own device.

One code path for CPU and GPU, used by ``bench align`` and by the feature extractor. The
result matches ``cv2.warpAffine(img, M, (w, h), flags=INTER_LINEAR, borderValue=0)`` (what
insightface's ``norm_crop`` calls) to within one grey level: bilinear sampling at pixel
centres, zeros outside the image.

Images of different sizes are warped together: each is first cut to the region its crop
actually reads (its footprint plus a 2-pixel margin for the bilinear kernel), and those
regions are zero-padded to a common size, so memory follows the face size, not the frame
size (a 112 px crop of a 4000 px frame reads a few hundred pixels). Regions are grouped by
size under a pixel budget so one huge face does not inflate the whole batch.

No low-pass filter is applied before shrinking, as in ``norm_crop``: a face much larger
than the crop aliases exactly as it does in insightface's pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .transform import apply as transform_points
from .transform import compose, invert

__all__ = ["warp_images", "transform_points", "footprints"]

_IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
#: Upper bound on canvas elements (images x channels x height x width) per grid_sample call.
MAX_CANVAS_ELEMENTS = 1 << 26


def footprints(transforms: np.ndarray, size: tuple[int, int],
               image_hw: np.ndarray) -> np.ndarray:
    """(N, 4) integer x0, y0, x1, y1 (exclusive) source regions read by each crop.

    ``transforms`` (N, 2, 3) map image pixels to crop pixels; ``size`` is the crop (h, w);
    ``image_hw`` (N, 2). Regions are clipped to the image and may be empty (x1 <= x0).
    """
    h, w = size
    corners = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [-0.5, h - 0.5], [w - 0.5, h - 0.5]])
    src = transform_points(invert(transforms), np.broadcast_to(corners, (len(transforms), 4, 2)))
    lo = np.floor(src.min(1)) - 1
    hi = np.ceil(src.max(1)) + 2
    limit = np.asarray(image_hw)[:, ::-1]  # (W, H)
    lo = np.clip(lo, 0, limit)
    hi = np.clip(hi, 0, limit)
    return np.concatenate([lo, hi], 1).astype(np.int64)


def _theta(inv: np.ndarray, canvas_hw: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """affine_grid thetas (N, 2, 3): normalised crop coords -> normalised canvas coords.

    With align_corners=False a pixel-centre coordinate x of a width-W image is the
    normalised coordinate (2x + 1) / W - 1.
    """
    h, w = size
    hc, wc = canvas_hw
    from_out = np.array([[w / 2, 0, w / 2 - 0.5], [0, h / 2, h / 2 - 0.5]])
    to_in = np.array([[2 / wc, 0, 1 / wc - 1], [0, 2 / hc, 1 / hc - 1]])
    return compose(to_in, compose(inv, from_out))


def _chunks(areas: np.ndarray, channels: int, budget: int) -> list[np.ndarray]:
    """Index groups in increasing area whose padded canvas stays under the budget."""
    order = np.argsort(areas, kind="stable")
    groups, start = [], 0
    for i in range(len(order)):
        # sorted ascending, so element i would be the largest of the group it joins
        if i > start and (i + 1 - start) * channels * max(int(areas[order[i]]), 1) > budget:
            groups.append(order[start:i])
            start = i
    groups.append(order[start:])
    return groups


def warp_images(images: torch.Tensor | Sequence[torch.Tensor], transforms,
                size: tuple[int, int], *,
                max_canvas_elements: int = MAX_CANVAS_ELEMENTS) -> torch.Tensor:
    """Warp each image by its transform into an (h, w) crop.

    ``images``: a (N, C, H, W) tensor or a sequence of (C, H, W) tensors of any sizes, all
    on one device, uint8 or floating. ``transforms``: (N, 2, 3) image pixels -> crop pixels
    (numpy or tensor). Returns (N, C, h, w) on the same device and of the same dtype
    (uint8 results are rounded).
    """
    n = len(images)
    m = np.asarray(transforms.cpu() if torch.is_tensor(transforms) else transforms,
                   dtype=np.float64).reshape(-1, 2, 3)
    if len(m) != n:
        raise ValueError(f"{n} images but {len(m)} transforms")
    if not np.isfinite(m).all():
        raise ValueError("transforms contain NaN/inf; fill fallbacks before warping")
    h, w = size
    if n == 0:
        return torch.zeros((0, 3, h, w), dtype=torch.uint8)
    first = images[0]
    channels, dtype, device = first.shape[0], first.dtype, first.device
    image_hw = np.array([img.shape[-2:] for img in images])
    identity = (np.abs(m - _IDENTITY).max((1, 2)) < 1e-4) & (image_hw == (h, w)).all(1)
    if identity.any():
        # Pre-aligned crops (an insightface .bin on its own template) are copied, not
        # resampled: the model must see exactly the pixels the file holds.
        out = torch.empty((n, channels, h, w), dtype=dtype, device=device)
        same = np.flatnonzero(identity)
        out[torch.as_tensor(same, device=device)] = torch.stack([images[i] for i in same])
        rest = np.flatnonzero(~identity)
        if len(rest):
            out[torch.as_tensor(rest, device=device)] = warp_images(
                [images[i] for i in rest], m[rest], size,
                max_canvas_elements=max_canvas_elements)
        return out
    if (image_hw == image_hw[0]).all() and n * channels * image_hw[0].prod() <= max_canvas_elements:
        # Same-sized images (pre-cropped faces, video frames): one batched grid_sample on the
        # whole images, no per-image copies (a Python loop of copies would cap GPU throughput).
        batch = images if torch.is_tensor(images) else torch.stack(list(images))
        return _grid_sample(batch.float(), invert(m), size, dtype)
    regions = footprints(m, size, image_hw)
    inv = invert(m)
    inv[:, :, 2] -= regions[:, :2]  # crop -> region coordinates
    rw = np.maximum(regions[:, 2] - regions[:, 0], 0)
    rh = np.maximum(regions[:, 3] - regions[:, 1], 0)
    out = torch.zeros((n, channels, h, w), dtype=dtype, device=device)
    for group in _chunks(rw * rh, channels, max_canvas_elements):
        hc, wc = max(int(rh[group].max()), 1), max(int(rw[group].max()), 1)
        # Channels-last: decoders give HWC rows, which then copy (and convert) row by row;
        # and only the padding is zeroed, zeroing whole canvases cost more than the warp.
        canvas = torch.empty((len(group), hc, wc, channels), dtype=torch.float32, device=device)
        for j, i in enumerate(group):
            x0, y0, x1, y1 = regions[i]
            h_i, w_i = max(y1 - y0, 0), max(x1 - x0, 0)
            canvas[j, :h_i, :w_i] = images[i][:, y0:y1, x0:x1].permute(1, 2, 0)
            canvas[j, h_i:].zero_()
            canvas[j, :h_i, w_i:].zero_()
        canvas = canvas.permute(0, 3, 1, 2)
        out[torch.as_tensor(group, device=device)] = _grid_sample(canvas, inv[group], size,
                                                                   dtype)
    return out


def _grid_sample(canvas: torch.Tensor, inv: np.ndarray, size: tuple[int, int],
                 dtype: torch.dtype) -> torch.Tensor:
    """Crops from float canvases given crop -> canvas pixel maps ``inv`` (N, 2, 3)."""
    h, w = size
    theta = torch.as_tensor(_theta(inv, tuple(canvas.shape[-2:]), size), dtype=torch.float32,
                            device=canvas.device)
    grid = F.affine_grid(theta, [canvas.shape[0], canvas.shape[1], h, w], align_corners=False)
    crops = F.grid_sample(canvas, grid, mode="bilinear", padding_mode="zeros",
                          align_corners=False)
    if dtype == torch.uint8:
        crops = crops.round_().clamp_(0, 255)
    return crops.to(dtype)
