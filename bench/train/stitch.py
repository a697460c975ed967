"""Stitching: train the DREAM block alone on cached stem features (stitch and retrain).

As in the authors' ``stitching`` code: the stem is frozen, so its features are extracted
once; every profile image (|yaw| >= ``profile_min_yaw``) of an identity that also has
frontal images (|yaw| <= ``frontal_max_yaw``) is one sample, its target the mean of that
identity's frontal features; the loss is the MSE between ``mid + Y(yaw) * R(mid)`` and the
target; SGD trains only ``R``. Thousands of iterations on a (P, 256) tensor take seconds.

SGD's step depends on the features' scale, which differs by orders of magnitude between
stems (dlib's descriptors have norms of about 0.5, SFace's 14, an untrained ONNX export's
1e8): one recipe barely moves the block on some and diverges on others. So the block
trains on features divided by ``s`` (their RMS over ``stitch.feature_rms``) and is folded
back: ``R`` is two fc+ReLU layers, positively homogeneous in its input and biases, so
``s * R(x / s)`` is ``R`` with both biases multiplied by ``s``, exactly. The saved block is
an ordinary one for the stem's own features.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ConfigError, DataError
from ..models import DreamBlock, FaceModel
from ..threads import cpu_threads
from .config import StitchConfig
from .data import TRAIN_YAW_FIX, TrainData, mix_seed


@dataclass
class StitchPairs:
    """``mids`` (P, D) profile features, ``yaw`` (P,) their yaw, ``targets`` (P, D) the mean
    frontal feature of each one's identity, ``owner`` (P,) int64 that identity's index in
    0..identities-1 (None: every sample its own)."""

    mids: torch.Tensor
    yaw: torch.Tensor
    targets: torch.Tensor
    identities: int
    frontal: int
    owner: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.mids.shape[0])


@dataclass
class StitchOutcome:
    pairs: int
    identities: int
    frontal: int
    iterations: int
    distance_unmapped: float   # mean ||mid(profile) - target||^2: what the block must close
    distance_before: float     # the same through the block before training
    distance_after: float      # ... and after
    seconds: float

    def metrics(self) -> dict:
        return dict(self.__dict__)


@torch.no_grad()
def extract_features(model: FaceModel, data: TrainData, batch_size: int = 256,
                     progress: bool = False) -> torch.Tensor:
    """(N, D) float32 stem features of every training image, in eval mode, no flip."""
    from ..progress import progress_bar

    was_training = model.training
    model.eval()
    device = data.device
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    out = torch.empty((len(data), model.feature_dim), dtype=torch.float32, device=device)
    # minutes for a pretrained stem on the CPU (SFace: 3,600 images), so it shows a bar
    bar = progress_bar(total=len(data), enabled=progress, desc="stem features", leave=False)
    for start in range(0, len(data), batch_size):
        crops = data.images[start:start + batch_size]
        crops = torch.as_tensor(crops).to(device, non_blocking=True)
        x = model.preprocess.normalise(crops.permute(0, 2, 3, 1))
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast:
            out[start:start + batch_size] = model.stem(x).float()
        bar.update(len(crops))
    bar.close()
    model.train(was_training)
    return out


def stitch_pairs(features: torch.Tensor, labels: torch.Tensor, yaw: torch.Tensor,
                 cfg: StitchConfig, where: str | None = None) -> StitchPairs:
    """Profile samples with their identity's mean frontal feature as target."""
    if torch.isnan(yaw).any():
        raise DataError(f"{int(torch.isnan(yaw).sum())} training images have no yaw: stitching "
                        f"needs it: {TRAIN_YAW_FIX}", where)
    absyaw = yaw.abs()
    frontal = absyaw <= cfg.frontal_max_yaw
    profile = absyaw >= cfg.profile_min_yaw
    classes = int(labels.max()) + 1
    sums = torch.zeros((classes, features.shape[1]), dtype=features.dtype, device=features.device)
    sums.index_add_(0, labels[frontal], features[frontal])
    counts = torch.bincount(labels[frontal], minlength=classes)
    usable = profile & (counts[labels] > 0)
    if not bool(usable.any()):
        raise DataError(f"no identity has both a frontal (|yaw| <= {cfg.frontal_max_yaw:g}) and "
                        f"a profile (|yaw| >= {cfg.profile_min_yaw:g}) image: nothing to stitch "
                        "(set other thresholds with `bench train --set stitch.frontal_max_yaw="
                        "... --set stitch.profile_min_yaw=...`, then evaluate that checkpoint "
                        "with `bench run --weights`)", where)
    means = sums / counts.clamp(min=1).unsqueeze(1).to(sums.dtype)
    lab = labels[usable]
    kept, owner = torch.unique(lab, return_inverse=True)
    return StitchPairs(features[usable], yaw[usable], means[lab], identities=int(kept.numel()),
                       frontal=int(frontal.sum()), owner=owner)


def batch_indices(pairs: StitchPairs, batch: int, iterations: int, sampling: str,
                  generator: torch.Generator) -> Iterator[torch.Tensor]:
    """``iterations`` index batches into ``pairs`` (on the CPU, drawn by ``generator``).

    ``image``: passes over a shuffled order, every sample alike. ``identity``: ``batch``
    identities drawn uniformly with replacement, then one profile of each uniformly, as
    the authors' gen_batch draws them."""
    if sampling == "image" or pairs.owner is None:
        per_pass = len(pairs) // batch
        order = None
        for it in range(iterations):
            k = it % per_pass
            if k == 0:
                order = torch.randperm(len(pairs), generator=generator)
            yield order[k * batch:(k + 1) * batch]
        return
    owner = pairs.owner.cpu()
    by_owner = torch.argsort(owner, stable=True)
    counts = torch.bincount(owner, minlength=pairs.identities)
    starts = torch.cumsum(counts, 0) - counts
    for _ in range(iterations):
        who = torch.randint(pairs.identities, (batch,), generator=generator)
        pick = (torch.rand(batch, generator=generator, dtype=torch.float64)
                * counts[who]).long()
        yield by_owner[starts[who] + pick]


def mean_distance(block: DreamBlock | None, pairs: StitchPairs, chunk: int = 8192) -> float:
    """Mean squared Euclidean distance between (mapped) profile features and targets."""
    total = torch.zeros((), dtype=torch.float64, device=pairs.mids.device)
    with torch.no_grad():
        for s in range(0, len(pairs), chunk):
            mids = pairs.mids[s:s + chunk]
            mapped = mids if block is None else block(mids, pairs.yaw[s:s + chunk])
            total += (mapped - pairs.targets[s:s + chunk]).pow(2).sum(1).double().sum()
    return float(total) / len(pairs)


def train_block(block: DreamBlock, pairs: StitchPairs, cfg: StitchConfig, seed: int, *,
                trained: bool = False) -> StitchOutcome:
    """SGD on the block's residual branch alone (``cfg.iterations`` steps of MSE).

    ``trained``: the block holds trained weights for the stem's own features (retrain
    continues end2end's block), so it starts as that very mapping at the training scale;
    a fresh block's random start is taken as it is."""
    device = pairs.mids.device
    # (B, 256) matrices are too small to share: on a busy CPU, OpenMP threads spend more
    # time waiting for each other than computing (2.4 ms vs 56 ms a step measured on 2 cores)
    with cpu_threads(1 if device.type == "cpu" else None):
        return _train_block(block, pairs, cfg, seed, device, trained)


def feature_scale(pairs: StitchPairs, cfg: StitchConfig) -> float:
    """``s``: the stitch trains on ``mids / s``, whose RMS is ``cfg.feature_rms``."""
    if cfg.feature_rms is None:
        return 1.0
    rms = float(pairs.mids.double().pow(2).mean().sqrt())
    if not math.isfinite(rms) or rms == 0:
        raise DataError(f"the stem's profile features have RMS {rms:g}: nothing to stitch")
    return rms / cfg.feature_rms


def scale_block(block: DreamBlock, factor: float) -> None:
    """In place, ``R`` becomes ``x -> factor * R(x / factor)`` (see the module doc)."""
    layers = list(block.residual)
    if not all(isinstance(m, (torch.nn.Linear, torch.nn.ReLU)) for m in layers):
        raise TypeError("only fc+ReLU residual branches are positively homogeneous")
    with torch.no_grad():
        for layer in layers:
            if isinstance(layer, torch.nn.Linear) and layer.bias is not None:
                layer.bias.mul_(factor)


def _train_block(block: DreamBlock, pairs: StitchPairs, cfg: StitchConfig, seed: int,
                 device: torch.device, trained: bool) -> StitchOutcome:
    block.to(device).train()
    scale = feature_scale(pairs, cfg)
    if trained:  # s R(x / s) = R at the training scale: the fold below gives R back
        scale_block(block, 1.0 / scale)
    raw, pairs = pairs, StitchPairs(pairs.mids / scale, pairs.yaw, pairs.targets / scale,
                                    pairs.identities, pairs.frontal, pairs.owner)
    before = mean_distance(block, pairs) * scale ** 2
    optimizer = torch.optim.SGD(block.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay)
    batch = min(cfg.batch_size, len(pairs))
    generator = torch.Generator().manual_seed(mix_seed(seed, 2))
    t0 = time.perf_counter()
    for idx in batch_indices(pairs, batch, cfg.iterations, cfg.sampling, generator):
        idx = idx.to(device, non_blocking=True)
        loss = F.mse_loss(block(pairs.mids[idx], pairs.yaw[idx]), pairs.targets[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    after = mean_distance(block, pairs)  # waits for the last step
    if not math.isfinite(after):
        # SGD's step grows with the square of the scale it trains at
        norm = float(raw.mids.norm(dim=1).mean())
        at = f", trained at RMS {cfg.feature_rms:g}" if cfg.feature_rms is not None else ""
        raise ConfigError(f"stitching diverged after {cfg.iterations} steps at lr {cfg.lr:g}: "
                          f"the stem's features have a mean norm of {norm:.3g}{at}. Train the "
                          "block with a smaller step, e.g. `bench train --model MODEL --mode "
                          f"stitch --data TRAIN --set stitch.lr={cfg.lr / 100:g}`, and run "
                          "the checkpoint it writes with --weights")
    scale_block(block, scale)
    block.eval()
    return StitchOutcome(len(raw), raw.identities, raw.frontal, cfg.iterations,
                         mean_distance(None, raw), before, mean_distance(block, raw),
                         time.perf_counter() - t0)


def stitch_model(model: FaceModel, data: TrainData, cfg: StitchConfig, seed: int,
                 progress: bool = False, trained: bool = False) -> StitchOutcome:
    """Freeze ``model.stem`` and train ``model.dream`` on its cached features, in place
    (``trained``: the block continues trained weights, see :func:`train_block`)."""
    if model.dream is None:
        raise DataError(f"model {model.config.get('name', '?')!r} has no DREAM block to stitch")
    for p in model.stem.parameters():
        p.requires_grad_(False)
    features = extract_features(model, data, progress=progress)
    pairs = stitch_pairs(features, data.labels, data.yaw, cfg, data.source or None)
    outcome = train_block(model.dream, pairs, cfg, seed, trained=trained)
    for p in model.stem.parameters():
        p.requires_grad_(True)
    return outcome
