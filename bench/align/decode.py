"""Read and decode image files in batches: nvJPEG on the GPU, OpenCV on the CPU.

Images come back as (3, H, W) uint8 RGB tensors on the requested device, in their stored
pixel grid: EXIF orientation is ignored on both paths, because datasets give landmarks and
boxes in the stored grid (and the two decoders would otherwise disagree).

On CUDA, JPEGs are decoded together with ``torchvision.io.decode_jpeg(list, device="cuda")``;
other formats (IJB-A's PNG frames), and any JPEG nvJPEG refuses, go through OpenCV and are
moved to the device. A file neither decoder reads raises :class:`DataError` naming it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch
from torchvision.io import ImageReadMode, decode_jpeg

from ..errors import DataError

_JPEG_MAGIC = b"\xff\xd8"
_CV2_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


def read_bytes(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read image: {exc.strerror or exc}", path) from None


def decode_bgr(data: bytes, path: str | Path) -> np.ndarray:
    """One image through OpenCV as it stores it: (H, W, 3) uint8 BGR (what its detectors
    take); a DataError naming the file and the fix when it does not decode."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), _CV2_FLAGS) if data else None
    if img is None:
        raise DataError("cannot decode image (corrupt or unsupported format): replace the "
                        "file or drop it from the dataset's lists, or leave it out with "
                        "--lenient (bench run, compare, protocols validate, detect, yaw, "
                        "align: listed with what it took along)", path)
    return img


def decode_cv2(data: bytes, path: str | Path) -> torch.Tensor:
    """One image through OpenCV: (3, H, W) uint8 RGB on the CPU."""
    img = decode_bgr(data, path)
    return torch.from_numpy(cv2.cvtColor(img, cv2.COLOR_BGR2RGB)).permute(2, 0, 1)


def decode_jpegs_torchvision(datas: list[bytes], paths: list, device: torch.device):
    """Batch decode with torchvision (nvJPEG on CUDA); on failure retry one by one so a bad
    file is named, and let OpenCV try what nvJPEG refuses (e.g. CMYK or arithmetic-coded
    JPEGs). The CUDA path of :func:`read_images`; works on the CPU too (tests)."""
    tensors = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
    with warnings.catch_warnings():
        # torchvision 0.29 deprecates its decoders for TorchCodec, which is not a dependency
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torchvision")
        try:
            return decode_jpeg(tensors, mode=ImageReadMode.RGB, device=device)
        except RuntimeError:
            out = []
            for t, d, p in zip(tensors, datas, paths, strict=True):
                try:
                    out.append(decode_jpeg(t, mode=ImageReadMode.RGB, device=device))
                except RuntimeError:
                    out.append(decode_cv2(d, p).to(device))
            return out


def read_images(paths: Sequence[str | Path], device: str | torch.device = "cpu",
                workers: int = 4) -> list[torch.Tensor]:
    """Decode ``paths`` into (3, H, W) uint8 RGB tensors on ``device``, in order.

    File reads (and CPU decodes) run on ``workers`` threads; OpenCV and file IO release
    the GIL.
    """
    device = torch.device(device)
    paths = list(paths)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        datas = list(pool.map(read_bytes, paths))
        if device.type != "cuda":
            return list(pool.map(decode_cv2, datas, paths))
        jpeg = [i for i, d in enumerate(datas) if d[:2] == _JPEG_MAGIC]
        other = [i for i, d in enumerate(datas) if d[:2] != _JPEG_MAGIC]
        out: list[torch.Tensor | None] = [None] * len(paths)
        decoded = pool.map(decode_cv2, [datas[i] for i in other], [paths[i] for i in other])
        for i, img in zip(other, decoded, strict=True):
            out[i] = img.to(device, non_blocking=True)
    if jpeg:
        gpu = decode_jpegs_torchvision([datas[i] for i in jpeg], [paths[i] for i in jpeg], device)
        for i, img in zip(jpeg, gpu, strict=True):
            out[i] = img
    return out  # type: ignore[return-value]
