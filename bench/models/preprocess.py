"""Preprocessing that travels with a model, so evaluation reads it instead of re-implementing it."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError


@functools.lru_cache(maxsize=16)
def _channel_stats(mean: tuple, std: tuple, device: torch.device):
    """(1, 3, 1, 1) mean/std tensors, made once per device: building them per batch would
    copy host -> GPU (and wait) on every call."""
    return (torch.tensor(mean, device=device).view(1, 3, 1, 1),
            torch.tensor(std, device=device).view(1, 3, 1, 1))


@dataclass(frozen=True)
class Preprocess:
    """How images must be prepared for a model.

    ``mean``/``std`` apply per channel to ``x / 255`` after the channels are put in
    ``channel_order``; ``template`` names the alignment template the model was trained on;
    ``flip_test`` says whether evaluation should sum the features of an image and its mirror.
    """

    input_size: tuple[int, int] = (112, 112)  # (height, width)
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    channel_order: str = "RGB"
    template: str = "arcface112"  # a name in bench.align.templates.TEMPLATES
    flip_test: bool = False

    def __post_init__(self) -> None:
        # Coerce lists (from JSON checkpoints) to tuples so instances stay hashable and equal.
        for name in ("input_size", "mean", "std"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        h_w = self.input_size
        if len(h_w) != 2 or any(int(v) != v or v < 1 for v in h_w):
            raise ConfigError(f"input_size must be two positive integers (h, w), got {h_w}")
        object.__setattr__(self, "input_size", (int(h_w[0]), int(h_w[1])))
        for name in ("mean", "std"):
            values = getattr(self, name)
            if len(values) != 3 or not all(np.isfinite(values)):
                raise ConfigError(f"{name} must be three finite numbers, got {values}")
            object.__setattr__(self, name, tuple(float(v) for v in values))
        if min(self.std) <= 0:
            raise ConfigError(f"std must be positive, got {self.std}")
        if self.channel_order not in ("RGB", "BGR"):
            raise ConfigError(f"channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}")
        if not isinstance(self.template, str) or not self.template:
            raise ConfigError(f"template must be a non-empty name, got {self.template!r}")
        object.__setattr__(self, "flip_test", bool(self.flip_test))

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocess:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown preprocessing field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    def replace(self, **changes: Any) -> Preprocess:
        return self.from_dict({**self.to_dict(), **changes})

    def describe(self) -> str:
        """One line for listings: ``112x112 RGB mean=.. std=.. template=arcface flip``."""
        h, w = self.input_size
        fmt = ",".join
        return (f"{h}x{w} {self.channel_order} mean=({fmt(f'{m:g}' for m in self.mean)}) "
                f"std=({fmt(f'{s:g}' for s in self.std)}) template={self.template}"
                f"{' flip' if self.flip_test else ''}")

    def normalise(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        """uint8 RGB images ``(N, H, W, 3)`` (already aligned and resized) -> float ``(N, 3, H, W)``.

        Works on the images' device, so the GPU path and the CPU path are the same code.
        """
        x = torch.as_tensor(images)
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ConfigError(f"expected RGB images shaped (N, H, W, 3), got {tuple(x.shape)}")
        if tuple(x.shape[1:3]) != self.input_size:
            raise ConfigError(f"images are {tuple(x.shape[1:3])}, the model expects "
                              f"{self.input_size} (h, w): align/resize them first")
        if self.channel_order == "BGR":
            x = x.flip(-1)
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        mean, std = _channel_stats(self.mean, self.std, x.device)
        return (x - mean) / std


def resize_crops(crops: torch.Tensor, size: tuple[int, int], chunk: int = 512) -> torch.Tensor:
    """uint8 ``(N, 3, h, w)`` -> uint8 ``(N, 3, *size)``: antialiased bilinear, on the
    crops' device, in chunks to bound the float temporaries.

    Training at a reduced input size uses this after alignment; evaluation of such a
    model must do the same (template-sized crops -> ``preprocess.input_size``).
    """
    size = (int(size[0]), int(size[1]))
    if tuple(crops.shape[-2:]) == size:
        return crops
    out = torch.empty((crops.shape[0], crops.shape[1], *size), dtype=torch.uint8,
                      device=crops.device)
    for start in range(0, crops.shape[0], chunk):
        part = crops[start:start + chunk].float()
        small = F.interpolate(part, size=size, mode="bilinear", antialias=True,
                              align_corners=False)
        out[start:start + chunk] = small.round_().clamp_(0, 255).to(torch.uint8)
    return out
