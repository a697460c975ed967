"""torch's CPU thread count set for a block of work and restored after it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from .errors import ConfigError


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """torch's CPU threads set to ``n`` for the block (None: left alone), then restored.

    On a CPU that other jobs share, fewer threads than cores can be several times faster
    (OpenMP threads spin waiting for each other); ONNX stems created in the block take the
    same number (:mod:`bench.models.onnx_stem`).
    """
    if n is None:
        yield
        return
    if n < 1:
        raise ConfigError(f"threads must be >= 1, got {n}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
