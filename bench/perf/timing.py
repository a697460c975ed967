"""Timing on CPU or CUDA: warm up, then time a stretch with the device synchronised only at
its two ends, so the measured work is queued back to back as it is in real use."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import torch


def resolve(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"``: CUDA when available, else the CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def precision(device: torch.device) -> str:
    """The precision the benchmarks run at: bf16 autocast on CUDA, float32 on the CPU."""
    return "bf16" if device.type == "cuda" else "fp32"


@contextlib.contextmanager
def autocast(device: torch.device) -> Iterator[None]:
    """bf16 autocast on CUDA (as ``bench run`` and training use); nothing on the CPU."""
    if device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.bfloat16):
            yield
    else:
        yield


def timed(fn: Callable[[], object], repeats: int, device: torch.device,
          warmup: int = 1, rounds: int = 1) -> float:
    """Seconds for ``repeats`` back-to-back calls of ``fn`` after ``warmup`` unmeasured ones
    (allocator, cuDNN autotuning, nvJPEG handles, torch.compile all settle in the warm-up).

    With ``rounds`` > 1 the stretch is timed that many times and the fastest kept: other
    processes only ever add time, so the minimum is the least disturbed measurement."""
    if repeats < 1 or rounds < 1:
        raise ValueError(f"repeats and rounds must be >= 1, got {repeats} and {rounds}")
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(rounds):
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def prepare_model(model: torch.nn.Module, device: torch.device, compile: bool = False):
    """``model`` in eval mode on ``device`` (channels_last on CUDA), optionally compiled."""
    model = model.to(device).eval()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return torch.compile(model) if compile else model


def random_batch(batch: int, size: tuple[int, int], device: str | torch.device,
                 seed: int = 0) -> torch.Tensor:
    """A float (batch, 3, h, w) input already normalised, channels_last on CUDA."""
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, *size, generator=gen).to(device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return x
