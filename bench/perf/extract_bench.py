"""Feature extraction from JPEG files, end to end, against its two limits.

``extract``: :func:`bench.runner.features.extract_features`, exactly as ``bench run`` calls it
(read + decode + align + resize + normalise + model; nvJPEG, bf16 autocast and
channels_last on CUDA). ``decode``: :func:`bench.align.decode.read_images` alone over the
same files, in the same batches (batched ``decode_jpeg(list, device="cuda")`` on the GPU).
``bare_forward``: the model on a random batch already on the device. The extraction rate
is reported as a ratio to each; the issue's targets on one H100 are >= 15k images/s for
ResNet-18 at 112x112, >= 60 % of the decode limit, and an IJB-C-sized set (469,375 crops)
in under 60 s.

The files are the synthetic generator's training images (faces with landmarks, so the
template alignment path runs; or the images of ``data``, a manifest), hard-linked under distinct names up to the wanted count:
the extractor reads each path once, and the OS page cache holds them all after the first
pass, so the figures measure the pipeline rather than the disk.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..align.decode import read_images
from ..models import create_model
from ..runner.features import ExtractOptions, extract_features
from . import timing

IJBC_CROPS = 469_375
TARGET_IMAGES_PER_S = 15_000
TARGET_DECODE_RATIO = 0.6


@dataclass(frozen=True)
class ExtractBenchConfig:
    models: tuple[str, ...] = ("resnet18", "resnet50")
    images: int = 65_536        # files extracted per measurement
    base_images: int = 256      # distinct synthetic faces behind the hard links
    batch_size: int = 512
    workers: int = 8            # file-reading (and CPU decoding) threads
    device: str = "auto"
    compile: bool = False       # also measure torch.compile'd models (CUDA)
    data: str | None = None     # a manifest / image folder to use instead of synthetic faces
    seed: int = 0

    def __post_init__(self):
        if self.images < 1 or self.batch_size < 1 or self.base_images < 1:
            raise ValueError("images, batch_size and base_images must be >= 1")


def synth_faces(folder: str | Path, count: int, seed: int = 0) -> pd.DataFrame:
    """A samples frame of ``count`` synthetic training faces (path, yaw, landmarks, box)."""
    from ..readers.manifest import read_samples
    from ..synth import generate, preset

    per_identity = 16
    root = Path(folder) / "synth"
    if not (root / "train" / "metadata.csv").is_file():
        identities = max(1, math.ceil(count / per_identity))
        # the smallest CFP and IJB-A parts the generator accepts: only train/ is read
        config = preset("small", seed=seed, **{
            "train.identities": identities, "train.images_per_identity": per_identity,
            "cfp.identities": 4, "cfp.splits": 2, "cfp.frontal": 2, "cfp.profile": 1,
            "ijba.subjects": 6, "ijba.stills": 2, "ijba.videos": 1, "ijba.frames": 1,
            "ijba.splits": 1})
        generate(root, config, force=True)
    return read_samples(root / "train").samples.head(count).reset_index(drop=True)


def replicate(base: pd.DataFrame, count: int, folder: str | Path) -> pd.DataFrame:
    """``count`` rows cycling through ``base``, each under its own file name (a hard link,
    or a copy where the file system has none)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    source = base["path"].to_numpy()
    rows = np.arange(count) % len(base)
    paths = []
    for i, j in enumerate(rows):
        target = folder / f"{i:07d}.jpg"
        if not target.exists():
            try:
                os.link(source[j], target)
            except OSError:
                shutil.copyfile(source[j], target)
        paths.append(str(target))
    return base.iloc[rows].reset_index(drop=True).assign(path=paths)


def decode_rate(paths: list[str], device: torch.device, batch_size: int, workers: int) -> float:
    """Images/s of reading and decoding ``paths`` in batches (one warm-up batch first)."""
    batches = [paths[i:i + batch_size] for i in range(0, len(paths), batch_size)]

    def decode_all():
        for batch in batches:
            read_images(batch, device, workers)

    read_images(batches[0], device, workers)
    return len(paths) / timing.timed(decode_all, 1, device, warmup=0)


def bare_forward_rate(model, device: torch.device, batch_size: int, images: int) -> float:
    """Images/s of the model alone on a random batch, at the extractor's batch size."""
    x = timing.random_batch(batch_size, model.preprocess.input_size, device)
    steps = max(1, images // batch_size)

    def step():
        with torch.inference_mode(), timing.autocast(device):
            model(x)

    return steps * batch_size / timing.timed(step, steps, device, warmup=2, rounds=3)


def extract_rate(model, samples: pd.DataFrame, opts: ExtractOptions, device: torch.device,
                 ) -> tuple[float, np.ndarray]:
    """Images/s of :func:`extract_features` over ``samples``, after a two-batch warm-up."""
    extract_features(model, samples.head(2 * opts.batch_size), opts)
    feats = None

    def run():
        nonlocal feats
        feats, _ = extract_features(model, samples, opts)

    seconds = timing.timed(run, 1, device, warmup=0)
    return len(samples) / seconds, feats


def run(cfg: ExtractBenchConfig, work_dir: str | Path) -> list[dict]:
    """Records: one ``decode`` row, then per model ``bare_forward`` and ``extract`` rows
    (and compiled ones with ``cfg.compile``). ``work_dir`` holds the JPEG files."""
    device = timing.resolve(cfg.device)
    work_dir = Path(work_dir)
    n_base = min(cfg.base_images, cfg.images)
    if cfg.data is not None:
        from ..readers.manifest import read_samples

        base = read_samples(cfg.data).samples.head(n_base).reset_index(drop=True)
    else:
        base = synth_faces(work_dir, n_base, cfg.seed)
    samples = replicate(base, cfg.images, work_dir / f"links{cfg.images}")
    paths = samples["path"].tolist()
    common = {"input": "", "batch": cfg.batch_size, "images": cfg.images,
              "device": device.type, "precision": timing.precision(device),
              "channels_last": device.type == "cuda"}
    decode = decode_rate(paths, device, cfg.batch_size, cfg.workers)
    records = [{"what": "decode", "model": "", **common, "compile": False,
                "images_per_s": decode}]
    opts = ExtractOptions(device=str(device), batch_size=cfg.batch_size, flip=False,
                          workers=cfg.workers)
    for name in cfg.models:
        torch.manual_seed(cfg.seed)
        plain = create_model(name)
        h, w = plain.preprocess.input_size
        for compiled in (False, True) if cfg.compile else (False,):
            model = timing.prepare_model(plain, device, compile=compiled)
            row = {**common, "model": name, "input": f"{h}x{w}", "compile": compiled}
            bare = bare_forward_rate(model, device, cfg.batch_size, cfg.images)
            rate, feats = extract_rate(model, samples, opts, device)
            if feats.shape != (cfg.images, plain.feature_dim):
                raise RuntimeError(f"extractor returned {feats.shape} features")
            records.append({"what": "bare_forward", **row, "images_per_s": bare})
            extract = {"what": "extract", **row, "images_per_s": rate,
                       "ratio_to_decode": rate / decode, "ratio_to_bare": rate / bare,
                       "ijbc_seconds": IJBC_CROPS / rate}
            if device.type == "cuda" and name == "resnet18":
                extract["meets_target"] = bool(rate >= TARGET_IMAGES_PER_S
                                               and rate / decode >= TARGET_DECODE_RATIO)
            records.append(extract)
    return records
