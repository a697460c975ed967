"""Synthetic data generation speed: images/s written, on one worker and on several.

The generator renders each identity in a worker process, so its limit is linear scaling:
``workers x`` the one-worker rate. ``ratio_to_linear`` says how close the pool comes (on
a shared machine other processes take cores too, which lowers it).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..synth import generate, preset
from ..synth.generate import default_workers


@dataclass(frozen=True)
class SynthBenchConfig:
    preset: str = "small"
    changes: dict = field(default_factory=dict)  # preset changes, e.g. {"train.identities": 20}
    workers: tuple[int, ...] = ()                # () = 1 and the generator's default
    seed: int = 0


def run(cfg: SynthBenchConfig, work_dir: str | Path) -> list[dict]:
    """One record per worker count: images, seconds, images/s and the ratio to linear."""
    config = preset(cfg.preset, seed=cfg.seed, **cfg.changes)
    counts = cfg.workers or tuple(sorted({1, default_workers()}))
    records = []
    for workers in counts:
        out = Path(work_dir) / f"synth-w{workers}"
        summary = generate(out, config, force=True, workers=workers)
        shutil.rmtree(out, ignore_errors=True)
        images = summary["counts"]["images"]
        records.append({"preset": cfg.preset, "workers": workers, "images": images,
                        "seconds": summary["seconds"],
                        "images_per_s": images / summary["seconds"],
                        "bytes_per_image": summary["bytes"] / images})
    single = next((r["images_per_s"] for r in records if r["workers"] == 1), None)
    for r in records:
        if single is not None:
            r["ratio_to_linear"] = r["images_per_s"] / (single * r["workers"])
    return records
