"""What the DREAM block adds to a stem: latency and FLOPs, relative to the stem alone.

Per model (``resnet18-dream`` ...) on one random batch: ``stem`` (the stem's forward),
``dream_block`` (the block alone on the stem's features, with yaws over the whole range so
the gate is open for most rows) and ``model`` (stem + block, as inference runs it). FLOPs
are counted by :class:`torch.utils.flop_counter.FlopCounterMode`, which counts matrix
multiplications and convolutions (the gate's element-wise work is not counted, and is
negligible beside them). The issue's target: the block costs < 1 % of the stem's time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..models import create_model
from . import timing

TARGET_OVERHEAD = 0.01


@dataclass(frozen=True)
class DreamBenchConfig:
    models: tuple[str, ...] = ("resnet18-dream", "resnet50-dream")
    batch_size: int = 512
    steps: int = 50             # timed forwards per part and round
    warmup: int = 5
    rounds: int = 3             # the fastest round counts
    device: str = "auto"
    compile: bool = False       # also time compiled stem / block / model
    seed: int = 0

    def __post_init__(self):
        if min(self.batch_size, self.steps, self.rounds) < 1 or self.warmup < 0:
            raise ValueError("batch_size, steps and rounds must be >= 1, warmup >= 0")


def count_flops(fn) -> int:
    """Matmul/convolution FLOPs of one call of ``fn`` (multiply and add counted apart)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _parts(model, x: torch.Tensor, mid: torch.Tensor, yaw: torch.Tensor, compile: bool):
    """The three callables to time, compiled each on its own when asked."""
    stem, block = model.stem, model.dream
    if compile:
        stem, block, model = torch.compile(stem), torch.compile(block), torch.compile(model)
    return {"stem": lambda: stem(x), "dream_block": lambda: block(mid, yaw),
            "model": lambda: model(x, yaw)}


def _timed_part(fn, cfg: DreamBenchConfig, device: torch.device) -> float:
    """Seconds per call of ``fn`` under inference mode (and bf16 autocast on CUDA)."""
    def call():
        with torch.inference_mode(), timing.autocast(device):
            fn()
    return timing.timed(call, cfg.steps, device, cfg.warmup, cfg.rounds) / cfg.steps


def model_records(name: str, cfg: DreamBenchConfig, device: torch.device) -> list[dict]:
    torch.manual_seed(cfg.seed)
    model = create_model(name)
    if model.dream is None:
        raise ValueError(f"{name} has no DREAM block: pick a '-dream' model")
    model = timing.prepare_model(model, device)
    x = timing.random_batch(cfg.batch_size, model.preprocess.input_size, device, cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    yaw = (torch.rand(cfg.batch_size, generator=gen) * 180 - 90).to(device)
    with torch.inference_mode(), timing.autocast(device):
        mid = model.stem(x)
        flops = {"stem": count_flops(lambda: model.stem(x)),
                 "dream_block": count_flops(lambda: model.dream(mid, yaw)),
                 "model": count_flops(lambda: model(x, yaw))}
    records = []
    for compiled in (False, True) if cfg.compile else (False,):
        seconds = {part: _timed_part(fn, cfg, device)
                   for part, fn in _parts(model, x, mid, yaw, compiled).items()}
        for part, sec in seconds.items():
            row = {"model": name, "part": part, "batch": cfg.batch_size,
                   "device": device.type, "precision": timing.precision(device),
                   "compile": compiled, "ms_per_batch": sec * 1e3,
                   "images_per_s": cfg.batch_size / sec,
                   "time_vs_stem": sec / seconds["stem"],
                   "gflops_per_image": flops[part] / cfg.batch_size / 1e9,
                   "flops_vs_stem": flops[part] / flops["stem"]}
            if part == "dream_block":
                row["meets_target"] = bool(sec / seconds["stem"] < TARGET_OVERHEAD)
            records.append(row)
    return records


def run(cfg: DreamBenchConfig) -> list[dict]:
    """Records per model and part: ms per batch, images/s, GFLOPs per image, and time and
    FLOPs relative to the stem (``time_vs_stem``, ``flops_vs_stem``)."""
    device = timing.resolve(cfg.device)
    return [r for name in cfg.models for r in model_records(name, cfg, device)]
