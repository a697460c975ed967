"""Synthetic 3D face dataset in the real on-disk formats (train/, CFP, IJB-A).

Library API (the ``bench synth`` command and the runner call these)::

    from bench.synth import generate, preset
    summary = generate("data/synth", preset("small", seed=0))   # -> the synth.json content

``preset(name, **changes)`` takes top-level fields and ``part.field`` paths, e.g.
``preset("small", **{"train.identities": 50})``; :func:`render_preview` draws a grid of
identities x yaws.
"""

from __future__ import annotations

from .config import (
                     PRESETS,
                     CfpPart,
                     Difficulty,
                     IjbaPart,
                     SynthConfig,
                     TrainPart,
                     config_from_dict,
                     preset,
)

# Imported eagerly: the function ``generate`` shadows its module ``bench.synth.generate`` only
# if bound after the module is loaded (a lazy export would flip back to the module).
from .generate import MANIFEST, generate
from .preview import render_preview

__all__ = ["PRESETS", "CfpPart", "Difficulty", "IjbaPart", "SynthConfig", "TrainPart",
           "config_from_dict", "preset", "MANIFEST", "generate", "render_preview"]
