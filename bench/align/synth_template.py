"""The ``synth112`` template, from the synthetic generator's camera constants.

Registered lazily in :data:`bench.align.templates.TEMPLATES`, so the generator is imported
only when the template is used. The generator renders with a pinhole camera 1.2 m away;
the template's projection is orthographic, which differs by about a pixel at the edge of a
profile's 112 px crop, and per-identity head shapes differ from the mean face by a few
pixels more: synthetic crops align by a near-identity warp, not an exact one.
"""

from __future__ import annotations

from ..synth import render
from .templates import Template

SYNTH112 = Template(
    "synth112", (render.IMAGE_SIZE, render.IMAGE_SIZE),
    geometry=(render.SCALE_PX_PER_MM, *render.ANCHOR_PX), posed=True,
    pivot_mm=render.PROFILE_ANCHOR_MM,
    description="synthetic generator crop (bench.synth.render); pose-aware")
