"""Face alignment: crops from landmarks or boxes, batched on the GPU or CPU, optionally cached.

Entry points: :func:`align_batches` (stream, what the feature extractor calls),
:func:`align_samples` (one array), :func:`warp_images` (tensors already decoded),
:data:`TEMPLATES` (registry of alignment templates). Module map:

- ``templates``: templates as data; ``schemes``: dataset point sets -> canonical landmarks
- ``transform``: batched least-squares similarity; ``profile``: pose-aware references
- ``plan``: which transform or fallback each sample gets; ``warp``: affine_grid/grid_sample
- ``decode``: batched JPEG decode (nvJPEG / OpenCV); ``cache``: crops on disk
- ``api``: the above end to end; ``preview``: originals beside crops as one PNG;
  ``export``: ``bench align``'s files

Names load on first use, so importing a light module (``bench.align.plan``, as the CLI
does for its option choices) does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "AlignedBatch": "api", "AlignReport": "api", "AlignResult": "api", "AlignStream": "api",
    "align_batches": "api", "align_samples": "api", "plan_samples": "api",
    "AlignOptions": "plan", "AlignPlan": "plan",
    "TEMPLATES": "templates", "Template": "templates", "get_template": "templates",
    "fit_similarity": "transform", "transform_points": "warp", "warp_images": "warp",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
