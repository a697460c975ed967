"""Detections cached per image content and detector, so no image is detected twice.

An entry is ``<root>/detect/<backend>-<detector digest>/<sha[:2]>/<sha256 of the image
bytes>.json``: all faces the detector found (not only the chosen one), so another box hint
or landmark rule reuses it. Keyed by content, not path: a moved dataset hits the cache, an
edited image misses it. Entries are written atomically; one that does not parse is
reported, ignored and rewritten.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..data.cache import cache_root
from ..fileio import dump_json
from .faces import Faces

log = logging.getLogger(__name__)
#: 2: coordinates from resized images follow the pixel-centre convention
CACHE_FORMAT = 2


class DetectionCache:
    def __init__(self, root: str | Path | None, backend: str, digest: str, policy: str = ""):
        self.dir = cache_root(root) / "detect" / f"{backend}-{digest}" / (policy or "as-is")

    def _path(self, sha: str) -> Path:
        return self.dir / sha[:2] / f"{sha}.json"

    def get(self, sha: str) -> Faces | None:
        path = self._path(sha)
        try:
            data = json.loads(path.read_text())
            if data.get("format") != CACHE_FORMAT:
                return None  # written by another version: detected again and replaced
            if data.get("sha256") != sha:
                raise ValueError("entry of another image")
            return Faces.from_dict(data["faces"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring a damaged detection cache entry %s (%s); detecting again",
                        path, exc)
            return None

    def put(self, sha: str, faces: Faces) -> None:
        dump_json({"format": CACHE_FORMAT, "sha256": sha, "faces": faces.to_dict()},
                  self._path(sha), indent=None, durable=False)
