"""Face alignment: crops from landmarks or boxes, batched on the GPU or CPU, optionally cached.

Entry points: :func:`align_batches` (stream, what the feature extractor calls),
:func:`align_samples` (one array), :func:`warp_images` (tensors already decoded),
:data:`TEMPLATES` (registry of alignment templates). Module map:

- ``templates``: templates as data; ``schemes``: dataset point sets -> canonical landmarks
- ``transform``: batched least-squares similarity; ``profile``: pose-aware references
- ``plan``: which transform or fallback each sample gets; ``warp``: affine_grid/grid_sample
- ``decode``: batched JPEG decode (nvJPEG / OpenCV); ``cache``: crops on disk
- ``api``: the above end to end; ``preview``: originals beside crops as one PNG
"""

from .api import (
    AlignedBatch,
    AlignReport,
    AlignResult,
    AlignStream,
    align_batches,
    align_samples,
    plan_samples,
)
from .plan import AlignOptions, AlignPlan
from .templates import TEMPLATES, Template, get_template
from .transform import fit_similarity
from .warp import transform_points, warp_images

__all__ = [
    "TEMPLATES", "AlignOptions", "AlignPlan", "AlignReport", "AlignResult", "AlignStream",
    "AlignedBatch", "Template", "align_batches", "align_samples", "fit_similarity",
    "get_template", "plan_samples", "transform_points", "warp_images",
]
