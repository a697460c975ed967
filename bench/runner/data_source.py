"""Where a run's data comes from: the user's data root, or the embedded synthetic set.

The synthetic default is generated once per (preset, seed, generator version) into the
cache folder, under a file lock so that two runs started together generate it once.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from ..data.cache import cache_root
from ..errors import ConfigError
from ..fileio import file_lock
from ..protocols import locate_data


def synthetic_root(preset: str = "small", seed: int = 0, cache_dir: str | Path | None = None,
                   echo=print) -> Path:
    """The embedded synthetic dataset (generated on first use), in the real formats."""
    from ..synth import MANIFEST, generate
    from ..synth import preset as synth_preset
    from ..synth.config import GENERATOR_VERSION

    config = synth_preset(preset, seed=seed)
    # Keyed by the generator version and the full config: a retuned generator gets a new
    # folder instead of silently reusing data made by the old one.
    key = hashlib.sha256(json.dumps([GENERATOR_VERSION, config.to_dict()], sort_keys=True,
                                    default=str).encode()).hexdigest()[:10]
    root = cache_root(cache_dir) / "synthetic" / f"{preset}-seed{seed}-{key}"
    with file_lock(root.parent / f".{root.name}.lock"):
        if (root / MANIFEST).is_file() and not _intact(root, MANIFEST):
            shutil.rmtree(root, ignore_errors=True)  # reported; generated again below
        if not (root / MANIFEST).is_file():
            echo(f"generating the embedded synthetic dataset ({preset} preset) into {root} "
                 "(once; later runs reuse it)")
            generate(root, config, force=root.exists(), progress=True,
                     preset_name=preset)
    return root


def _intact(root: Path, manifest: str) -> bool:
    """The dataset still holds the bytes its manifest recorded (a lost or truncated image
    would otherwise fail every run, or worse, change the counts)."""
    from .. import integrity

    recorded = synth_summary(root).get("bytes")
    if recorded is None:
        return True
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and p.name != manifest)
    if size == recorded:
        return True
    integrity.warn_rebuild(root, f"{size} bytes where {manifest} records {recorded} "
                                 "(files lost or truncated)", "generating it again")
    return False


def uses_default_data(data: str | None, protocol) -> bool:
    """True when neither --data nor an environment variable points at a dataset: the
    protocol's own resolution order decides (a bad --data still fails there, loudly)."""
    try:
        locate_data(protocol, data)
    except ConfigError:  # nothing given anywhere
        return True
    return False


def synth_summary(root: Path) -> dict:
    from ..synth import MANIFEST

    try:
        return json.loads((root / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
