"""SCRFD face detectors of a user's insightface model pack, run by the insightface package.

The harness never downloads models: pass the detector file or its pack folder, e.g.
``--detector-model ~/.insightface/models/buffalo_l/det_10g.onnx`` (or the folder
``.../buffalo_l``, whose ``det_*.onnx`` is taken), or set ``BENCH_INSIGHTFACE_PACK``.
Points are insightface's five (``five`` scheme): pupils, nose tip, mouth corners.

Installing: ``insightface`` declares a dependency on ``opencv-python`` while bench uses
``opencv-python-headless`` (both provide ``cv2``; installed together they overwrite each
other's files), so install it without its dependencies and add the ones it imports::

    pip install --no-deps insightface==2.1
    pip install scikit-image        # plus onnx, onnxruntime, requests, tqdm if missing

``import insightface.model_zoo`` runs ``insightface/__init__``, which imports the whole
package: it needs numpy, onnx, onnxruntime, opencv, requests, tqdm and scikit-image
(``insightface.utils.face_align``), read from insightface 2.1's sources.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..align.schemes import SCHEMES
from ..errors import ConfigError, DataError
from ..fileio import sha256_file
from .backends import FaceDetector
from .faces import Faces

PACK_ENV = "BENCH_INSIGHTFACE_PACK"
INSTALL = "pip install --no-deps insightface==2.1 && pip install scikit-image"
_NO_MODEL = ("the insightface detector needs a model file the harness does not ship (and "
             "never downloads): pass --detector-model "
             "~/.insightface/models/buffalo_l/det_10g.onnx (a det_*.onnx file or its pack "
             f"folder), or set {PACK_ENV}")


def _model_zoo():
    try:
        from insightface import model_zoo
    except ModuleNotFoundError as exc:
        raise ConfigError(f"the insightface detector needs the Python module {exc.name!r}, "
                          f"which is not installed: {INSTALL}") from None
    except ImportError as exc:  # insightface's own message (e.g. a broken onnxruntime)
        raise ConfigError(f"cannot import insightface: {exc}") from None
    return model_zoo


def resolve_detector_file(model: str | os.PathLike | None) -> Path:
    """The SCRFD ``.onnx`` file meant by ``model`` (a file or a pack folder), else by the
    ``BENCH_INSIGHTFACE_PACK`` environment variable; ConfigError/DataError otherwise."""
    given = model if model is not None else os.environ.get(PACK_ENV) or None
    if given is None:
        raise ConfigError(_NO_MODEL)
    path = Path(given).expanduser()
    if path.is_dir():
        found = sorted(path.glob("det_*.onnx"))
        if not found:
            raise DataError("no detector (det_*.onnx) in this insightface model pack folder",
                            path)
        return found[0]
    if not path.is_file():
        raise DataError("insightface detector model not found (pass a det_*.onnx file or its "
                        "pack folder)", path)
    if path.suffix != ".onnx":
        raise DataError("an insightface detector model must be an .onnx file", path)
    return path


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


class InsightFaceDetector(FaceDetector):
    """``det_size``: (width, height) the image is letterboxed into; ``score_threshold``:
    the SCRFD score below which candidates are dropped (insightface's default 0.5)."""

    name = "insightface"
    scheme = "five"

    def __init__(self, model: str | None = None, det_size=(640, 640),
                 score_threshold: float = 0.5):
        self.path = resolve_detector_file(model)
        self.det_size = (int(det_size[0]), int(det_size[1]))
        self.score_threshold = float(score_threshold)
        model_zoo = _model_zoo()
        try:
            net = model_zoo.get_model(str(self.path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnx / onnxruntime errors have no common base class
            raise DataError(f"cannot load as an insightface model ({exc})", self.path) from exc
        if net is None or getattr(net, "taskname", None) != "detection":
            raise DataError("not a face detector (insightface routes it to "
                            f"{type(net).__name__})", self.path)
        if not getattr(net, "use_kps", False):
            raise DataError("this detector gives no five points (a SCRFD model without "
                            "keypoints); use a *_kps model such as det_10g.onnx", self.path)
        net.prepare(ctx_id=-1, input_size=self.det_size, det_thresh=self.score_threshold)
        self.net = net
        self._sha = sha256_file(self.path)

    def identity(self) -> dict:
        # the decoder and NMS are insightface's code, the graph runs in onnxruntime
        return {"backend": self.name, "model_sha256": self._sha,
                "det_size": list(self.det_size), "score_threshold": self.score_threshold,
                "insightface": _version("insightface"), "onnxruntime": _version("onnxruntime")}

    def detect(self, image_bgr: np.ndarray) -> Faces:
        h, w = image_bgr.shape[:2]
        # insightface takes BGR like cv2.imread (its blobFromImage swaps to RGB).
        bboxes, kpss = self.net.detect(np.ascontiguousarray(image_bgr),
                                       input_size=self.det_size)
        if len(bboxes) == 0:
            return Faces.none((w, h), self.scheme)
        bboxes = np.asarray(bboxes, np.float64)
        boxes = np.concatenate([bboxes[:, :2], bboxes[:, 2:4] - bboxes[:, :2]], axis=1)
        points = SCHEMES.get("five").to_canonical(np.asarray(kpss, np.float64))
        return Faces(boxes, bboxes[:, 4], points, (w, h), self.scheme)
