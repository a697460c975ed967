"""Batched feature extraction with the model's own preprocessing, cached on disk.

Each distinct crop is decoded, aligned to the model's template, resized to its input size,
normalised and embedded once (on the GPU with bf16 autocast and channels_last when there is
one); rows that share an image gather its feature. Features stay on the device until the
end, so the loop never waits for the host. Under torchrun each rank embeds a block of whole
batches and rank 0 gathers them (:mod:`bench.runner.sharding`).
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
from ..align.api import AlignReport, align_batches
from ..data.samples import LISTED_AT, unique_images
from ..errors import ConfigError, DataError
from ..models.gates import gate_values
from ..models.preprocess import resize_crops
from ..progress import progress_bar
from ..train.distributed import DistContext
from .sharding import gather_parts, shard_rows


@dataclass(frozen=True)
class ExtractOptions:
    device: str = "cpu"
    batch_size: int = 256
    flip: bool | None = None  # None: the model's own preprocess.flip_test
    workers: int = 4
    progress: bool = False    # a progress bar (images/s) on a terminal
    #: a DREAM model's images without a yaw: "refuse" them, or run them through the
    #: "stem" alone (gate 0), counted and listed (UNKNOWN_YAW)
    unknown_yaw: str = "refuse"

    def __post_init__(self):
        if self.unknown_yaw not in UNKNOWN_YAW:
            raise ConfigError(f"unknown_yaw must be one of {UNKNOWN_YAW}, got "
                              f"{self.unknown_yaw!r}")


#: What a DREAM model does with an image that has no yaw (a face the detector missed).
UNKNOWN_YAW = ("refuse", "stem")


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


def feature_key(checkpoint_sha: str, preprocess: dict, flip: bool, n_rows: int,
                device_type: str, detection: dict | None = None,
                inputs: str | None = None, unknown_yaw: str = "refuse") -> str:
    """Cache key of a feature matrix: what a feature depends on, and nothing else (a
    reordered pair list or a yaw file copied under another name re-embedded every image).

    ``inputs`` is the samples' alignment key (:func:`bench.align.api.alignment_key`):
    every row's image (path, size, modification time), points, box, yaw and pitch, and the
    template's definition, so an edited fiducial or a new yaw never brings back old
    features. The device type sets the numerics (bf16 autocast and nvJPEG on CUDA, fp32 and
    OpenCV on the CPU): a run must never report one device's features as another's. The
    detector (and its mode) places the crops of samples without dataset landmarks: give
    ``detection`` when the run detected any. ``unknown_yaw`` (a policy other than refusing
    images without yaw) changes a DREAM model's features of those images."""
    parts = {"ckpt": checkpoint_sha, "pre": preprocess, "flip": flip, "n": n_rows,
             "device": device_type, "v": 4, "detect": detection, "inputs": inputs}
    if unknown_yaw != "refuse":
        parts["unknown_yaw"] = unknown_yaw
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _embed(model, x: torch.Tensor, yaw: torch.Tensor | None, device: torch.device,
           condition: torch.Tensor | None = None) -> torch.Tensor:
    gate = {} if condition is None else {"condition": condition}
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return model(x, yaw, **gate).float()
    return model(x, yaw, **gate)


def require_yaw(samples: pd.DataFrame, yaw_file: str | Path | None = None) -> None:
    """A DREAM block gates on yaw: a DataError naming the first image without one, and how
    to get it (or, when ``yaw_file`` was given, that it does not cover every image)."""
    missing = np.isnan(samples["yaw"].to_numpy(np.float64))
    if not missing.any():
        return
    n, first = int(missing.sum()), samples["path"].to_numpy()[missing][0]
    if yaw_file is not None:
        raise DataError(f"{yaw_file} gives no yaw for {n} images the DREAM model needs it for "
                        "(bench yaw found no face in them, or the file was written for other "
                        "images): run `bench yaw` on this dataset, or use the stem alone",
                        first)
    raise DataError(f"{n} images have no yaw and the model has a DREAM block: estimate it "
                    "with `bench yaw DATA --out yaw.csv` and pass --yaw-file yaw.csv", first)


def extract_features(model, samples: pd.DataFrame, opts: ExtractOptions = ExtractOptions(),
                     cache_dir: str | Path | None = None, cache_key: str | None = None,
                     crop_cache: str | Path | None = None,
                     ctx: DistContext = DistContext(),
                     weights: str | None = None) -> tuple[np.ndarray | None, dict]:
    """(N, D) float32 features, one per ``samples`` row, and an info dict.

    ``samples`` needs ``path``, ``yaw`` (required by DREAM models), ``landmarks``, ``box``.
    With ``cache_dir`` and ``cache_key`` the features are stored as ``<key>.npy`` and
    reused when present. Under torchrun (``ctx.enabled``) every rank calls this and embeds
    its block of the batches (:mod:`bench.runner.sharding`); rank 0 gets the features,
    byte-identical to one process's, and alone reads and writes the cache; the other ranks
    get None. ``weights``: the model's checkpoint, named if its features are not finite.
    """
    flip = model.preprocess.flip_test if opts.flip is None else bool(opts.flip)
    cached = Path(cache_dir) / f"{cache_key}.npy" if cache_dir and cache_key else None
    feats = None
    if cached is not None and ctx.is_main:  # a corrupt entry is reported, removed, rebuilt
        feats = integrity.load_array(cached, rows=len(samples))
    if ctx.broadcast(feats is not None):
        if feats is None:
            return None, {"cache_hit": True, "flip": flip}
        # the first run's record (alignment, detection counts, device): a rerun's is whole,
        # its fallbacks named at this run's list lines (another list may share the features)
        meta = _relisted(integrity.array_meta(cached), samples)
        return feats, {**meta, "cache": str(cached), "cache_hit": True, "flip": flip}
    crops, inverse = unique_images(samples)
    no_yaw = np.isnan(crops["yaw"].to_numpy(np.float64)) if model.dream is not None else \
        np.zeros(len(crops), bool)
    if opts.unknown_yaw == "refuse":
        if model.dream is not None:
            require_yaw(crops)
    yaw_all = crops["yaw"].to_numpy(np.float64)
    device = resolve_device(opts.device)
    block = shard_rows(len(crops), opts.batch_size, ctx.rank, ctx.world_size)
    mine = block.stop > block.start or ctx.is_main  # a rank may be left without a batch
    parts = gather_parts(ctx, lambda: _embed_images(model, crops.iloc[block], yaw_all[block],
                                                    flip, device, opts, crop_cache)
                         if mine else None)
    if parts is None:
        return None, {"cache_hit": False, "flip": flip}
    parts = [p for p in parts if p is not None]
    feats = np.concatenate([f for f, _ in parts])
    bad = ~np.isfinite(feats).all(axis=1)
    if bad.any():
        n = int(bad.sum())
        why = ("every image: the model or its weights are broken (a checkpoint with NaN "
               "weights?)" if n == len(crops) else "those images or their crops")
        raise DataError(f"the model {model_name(model, weights)} produced NaN/inf features for {n} of "
                        f"{len(crops)} images, this one first; {why}",
                        str(crops["path"].iat[int(np.flatnonzero(bad)[0])]))
    feats = feats[inverse]
    info = {"cache_hit": False, "flip": flip, "n_images": int(len(crops)),
            "alignment": AlignReport.join([r for _, r in parts]).to_dict(),
            "device": str(device), "processes": ctx.world_size}
    if no_yaw.any():  # --unknown-yaw stem: which images the block did not touch
        info["unknown_yaw"] = {"policy": "stem (gate 0)", "n_images": int(no_yaw.sum()),
                               "images": crops["path"].to_numpy()[no_yaw][:50].tolist()}
    if cached is not None:
        info["cache"] = str(cached)
        integrity.save_array(cached, feats, meta=info)
    return feats, info


def _relisted(meta: dict, samples: pd.DataFrame) -> dict:
    """``meta`` with its alignment fallbacks' list lines taken from ``samples``."""
    fallbacks = (meta.get("alignment") or {}).get("fallbacks")
    if not fallbacks or LISTED_AT not in samples:
        return meta
    where = samples.drop_duplicates("path").set_index("path")[LISTED_AT]
    relisted = [{**f, LISTED_AT: where.get(f.get("path"), f.get(LISTED_AT))} for f in fallbacks]
    return {**meta, "alignment": {**meta["alignment"], "fallbacks": relisted}}


def model_name(model, weights: str | None = None) -> str:
    """The model as a message names it, with its weights file where it has one."""
    config = getattr(model, "config", {}) or {}
    name = str(config.get("name") or config.get("family") or type(model).__name__)
    weights = weights or config.get("weights_path") or config.get("onnx_path")
    return f"{name} ({weights})" if weights else name


def _embed_images(model, crops: pd.DataFrame, yaw: np.ndarray, flip: bool,
                  device: torch.device, opts: ExtractOptions, crop_cache: str | Path | None
                  ) -> tuple[np.ndarray, AlignReport]:
    """Align and embed ``crops`` (distinct images) batch by batch: (n, D) float32 features
    on the host and the alignment report."""
    model = model.to(device).eval()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    needs_yaw = model.dream is not None
    out = torch.empty((len(crops), model.feature_dim), dtype=torch.float32, device=device)
    yaw_t = torch.as_tensor(np.nan_to_num(yaw), dtype=torch.float32, device=device)
    # an image without a yaw (allowed by --unknown-yaw stem) gets gate 0: the stem's feature
    gate_t = None
    if needs_yaw and np.isnan(yaw).any():
        known = torch.as_tensor(np.isfinite(yaw), device=device)
        gate_t = torch.where(known, gate_values(yaw_t, model.dream.gate), 0.0)
    stream = align_batches(crops, model.preprocess.template, device, opts.batch_size,
                           cache_dir=crop_cache, workers=opts.workers, warn=False)
    bar = progress_bar(total=len(crops), enabled=opts.progress,
                       desc=f"align+embed ({model.preprocess.template})")
    with torch.inference_mode(), bar:
        for batch in stream:
            bar.update(len(batch.rows))
            rows = torch.as_tensor(batch.rows, device=device)
            x = to_model_input(batch.crops, model.preprocess)
            if gate_t is not None:  # the gate of |yaw| is the mirror's too
                f = _embed(model, x, None, device, gate_t[rows])
                if flip:
                    f = f + _embed(model, x.flip(-1), None, device, gate_t[rows])
            else:
                yaw_b = yaw_t[rows] if needs_yaw else None
                f = _embed(model, x, yaw_b, device)
                if flip:  # a mirrored face has the negated yaw; the gate reads |yaw|
                    f = f + _embed(model, x.flip(-1), None if yaw_b is None else -yaw_b,
                                   device)
            out[rows] = f
    return out.cpu().numpy(), stream.report
