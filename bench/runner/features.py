"""Batched feature extraction with the model's own preprocessing, cached on disk.

Each distinct crop is decoded, aligned to the model's template, resized to its input size,
normalised and embedded once (on the GPU with bf16 autocast and channels_last when there is
one); rows that share an image gather its feature. Features stay on the device until the
end, so the loop never waits for the host.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import integrity
from ..align.api import align_batches
from ..data.samples import unique_images
from ..errors import DataError
from ..models.preprocess import resize_crops
from ..progress import progress_bar


@dataclass(frozen=True)
class ExtractOptions:
    device: str = "cpu"
    batch_size: int = 256
    flip: bool | None = None  # None: the model's own preprocess.flip_test
    workers: int = 4
    progress: bool = False    # a progress bar (images/s) on a terminal


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DataError("--device cuda was asked for but CUDA is not available")
    return dev


def to_model_input(crops: torch.Tensor, preprocess) -> torch.Tensor:
    """uint8 (B, 3, h, w) aligned crops -> normalised float (B, 3, H, W) model input,
    resized exactly as training resized them (a model trained at a reduced size)."""
    x = resize_crops(crops, preprocess.input_size)
    return preprocess.normalise(x.permute(0, 2, 3, 1))


def feature_key(checkpoint_sha: str, data_hash: str, preprocess: dict, flip: bool,
                n_rows: int, device_type: str, detection: dict | None = None) -> str:
    """Cache key of a feature matrix. The device type is in it because it sets the numerics
    (bf16 autocast and nvJPEG on CUDA, fp32 and OpenCV on the CPU): a run must never report
    one device's features as another's; the detector (and its mode) because it places the
    crops of samples without dataset landmarks."""
    blob = json.dumps({"ckpt": checkpoint_sha, "data": data_hash, "pre": preprocess,
                       "flip": flip, "n": n_rows, "device": device_type, "v": 2,
                       "detect": detection}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _embed(model, x: torch.Tensor, yaw: torch.Tensor | None, device: torch.device) -> torch.Tensor:
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return model(x, yaw).float()
    return model(x, yaw)


def extract_features(model, samples: pd.DataFrame, opts: ExtractOptions = ExtractOptions(),
                     cache_dir: str | Path | None = None, cache_key: str | None = None,
                     crop_cache: str | Path | None = None) -> tuple[np.ndarray, dict]:
    """(N, D) float32 features, one per ``samples`` row, and an info dict.

    ``samples`` needs ``path``, ``yaw`` (required by DREAM models), ``landmarks``, ``box``.
    With ``cache_dir`` and ``cache_key`` the features are stored as ``<key>.npy`` and
    reused when present.
    """
    flip = model.preprocess.flip_test if opts.flip is None else bool(opts.flip)
    cached = Path(cache_dir) / f"{cache_key}.npy" if cache_dir and cache_key else None
    feats = None if cached is None else integrity.load_array(cached, rows=len(samples))
    if feats is not None:  # a corrupt entry was reported, removed and is rebuilt below
        # the first run's record (alignment, detection counts, device): a rerun's is whole
        return feats, {**integrity.array_meta(cached), "cache": str(cached), "cache_hit": True,
                       "flip": flip}
    crops, inverse = unique_images(samples)
    needs_yaw = model.dream is not None
    yaw_all = crops["yaw"].to_numpy(np.float64)
    if needs_yaw and np.isnan(yaw_all).any():
        first = crops["path"].to_numpy()[np.isnan(yaw_all)][0]
        raise DataError(f"{int(np.isnan(yaw_all).sum())} images have no yaw and the model has a "
                        "DREAM block: estimate it with `bench yaw DATA --out yaw.csv` and pass "
                        "--yaw-file yaw.csv", first)
    device = resolve_device(opts.device)
    model = model.to(device).eval()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    out = torch.empty((len(crops), model.feature_dim), dtype=torch.float32, device=device)
    yaw_t = torch.as_tensor(np.nan_to_num(yaw_all), dtype=torch.float32, device=device)
    stream = align_batches(crops, model.preprocess.template, device, opts.batch_size,
                           cache_dir=crop_cache, workers=opts.workers, warn=False)
    bar = progress_bar(total=len(crops), enabled=opts.progress,
                       desc=f"align+embed ({model.preprocess.template})")
    with torch.inference_mode(), bar:
        for batch in stream:
            bar.update(len(batch.rows))
            rows = torch.as_tensor(batch.rows, device=device)
            x = to_model_input(batch.crops, model.preprocess)
            yaw = yaw_t[rows] if needs_yaw else None
            f = _embed(model, x, yaw, device)
            if flip:  # a mirrored face has the negated yaw; the gate reads |yaw|
                f = f + _embed(model, x.flip(-1), None if yaw is None else -yaw, device)
            out[rows] = f
    feats = out.cpu().numpy()[inverse]
    if not np.all(np.isfinite(feats)):
        raise DataError("the model produced NaN/inf features")
    info = {"cache_hit": False, "flip": flip, "n_images": int(len(crops)),
            "alignment": stream.report.to_dict(), "device": str(device)}
    if cached is not None:
        info["cache"] = str(cached)
        integrity.save_array(cached, feats, meta=info)
    return feats, info

