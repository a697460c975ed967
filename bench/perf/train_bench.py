"""Training throughput: the real per-step pipeline against the bare step on random tensors.

``bare``: forward, loss, backward and SGD on a float batch already on the device (the
ceiling). ``pipeline``: what :func:`bench.train.loop.train_classifier` does per step: the
sampler's indices, the resident uint8 crop cache gathered on the device, normalisation,
the epoch's flips, then the same step. The issue's target is pipeline >= 80 % of bare
(ResNet-18 at 112x112, bf16, H100). Both use the same :class:`StepRunner`; timing syncs the
device only at the start and end of each measured stretch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ..models import create_model
from ..train.config import TrainConfig, preset
from ..train.data import EpochSampler, TrainData, stream_batches
from ..train.distributed import indexed_device
from ..train.loop import StepRunner, build_training


@dataclass(frozen=True)
class TrainBenchConfig:
    model: str = "resnet18"
    input_size: tuple[int, int] = (112, 112)
    batch_size: int = 256
    images: int = 8192        # size of the random resident training set
    classes: int = 1000
    steps: int = 30           # measured steps per mode
    warmup: int = 5           # unmeasured steps first (allocator, cuDNN autotune, compile)
    device: str = "cuda"
    compile: bool = False


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _setup(cfg: TrainBenchConfig):
    device = indexed_device(cfg.device)
    train_cfg: TrainConfig = preset(device=cfg.device, **{
        "classify.batch_size": cfg.batch_size, "input_size": cfg.input_size,
        "compile": cfg.compile, "progress": False})
    torch.manual_seed(0)
    model = create_model(cfg.model, preprocess={"input_size": list(cfg.input_size)})
    model = model.to(device)
    sampler = EpochSampler(cfg.images, cfg.batch_size, seed=0)
    net, optimizer, scheduler = build_training(model, cfg.classes, train_cfg,
                                               sampler.steps_per_epoch, device)
    step_net = torch.compile(net) if cfg.compile else net
    runner = StepRunner(step_net, optimizer, scheduler, device, model.preprocess,
                        channels_last=device.type == "cuda")
    h, w = cfg.input_size
    data = TrainData(
        images=torch.randint(0, 256, (cfg.images, 3, h, w), dtype=torch.uint8, device=device),
        labels=torch.randint(0, cfg.classes, (cfg.images,), device=device),
        yaw=torch.rand(cfg.images, device=device) * 180 - 90,
        subjects=[str(i) for i in range(cfg.classes)], data_hash="random", template="celeba",
        input_size=(h, w), device=device)
    return runner, sampler, data, device


def _timed(fn, steps: int, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    _sync(device)
    return time.perf_counter() - t0


def run(cfg: TrainBenchConfig) -> list[dict]:
    """Records for ``bare`` and ``pipeline`` (images/s and the pipeline/bare ratio)."""
    runner, sampler, data, device = _setup(cfg)
    x = torch.randn(cfg.batch_size, 3, *cfg.input_size, device=device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    yaw, labels = data.yaw[:cfg.batch_size], data.labels[:cfg.batch_size]

    def bare() -> None:
        runner.step(x, yaw, labels)

    flips = sampler.flips(0).to(device)
    batches = iter(())

    def pipeline() -> None:
        nonlocal batches
        item = next(batches, None)
        if item is None:  # a new epoch's permutation, as the loop does
            batches = stream_batches(data, sampler, 0, 0, workers=0)
            item = next(batches)
        runner.train_batch(data, *item, flips)

    records = []
    rates = {}
    for name, fn in (("bare", bare), ("pipeline", pipeline)):
        _timed(fn, cfg.warmup, device)
        seconds = _timed(fn, cfg.steps, device)
        rates[name] = cfg.steps * cfg.batch_size / seconds
        records.append({"what": name, "model": cfg.model,
                        "input": f"{cfg.input_size[0]}x{cfg.input_size[1]}",
                        "batch": cfg.batch_size, "steps": cfg.steps,
                        "images_per_s": rates[name],
                        "precision": "bf16" if device.type == "cuda" else "fp32",
                        "channels_last": device.type == "cuda", "compile": cfg.compile})
    records[1]["ratio_to_bare"] = rates["pipeline"] / rates["bare"]
    return records
