"""Align a sample set: plan every sample's transform, decode and warp in batches, report.

The feature extractor streams::

    stream = align_batches(sample_set, model.preprocess.template, device="cuda")
    log.info(stream.report.summary())
    for batch in stream:          # AlignedBatch: rows, crops (B, 3, h, w) uint8 on device
        feats[batch.rows] = model(normalise(batch.crops))

and :func:`align_samples` collects everything into one (N, 3, h, w) uint8 array (a memory
map when a cache folder is given). Rows keep the sample table's order; nothing is dropped:
samples whose points are missing or unusable fall back to their box or the whole image and
are listed in the report.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data.samples import LISTED_AT, at_listing
from ..detect.stage import DETECTION, PRE_ALIGNED, landmark_sources
from ..errors import DataError
from .cache import CacheEntry, CropCache, cache_key
from .decode import read_images
from .plan import AlignOptions, AlignPlan, plan_alignment
from .schemes import canonical_landmarks
from .templates import Template, get_template
from .warp import warp_images

log = logging.getLogger(__name__)
#: Landmark sources whose points get the plain similarity fit (bench.align.plan).
TRUSTED_SOURCES = (DETECTION, PRE_ALIGNED)


@dataclass
class AlignedBatch:
    """``rows``: positions in the sample table; ``crops``: (B, 3, h, w) uint8 RGB on the
    device; ``transforms``: (B, 2, 3) image pixels -> crop pixels."""

    rows: np.ndarray
    crops: torch.Tensor
    transforms: np.ndarray


@dataclass
class AlignReport:
    """How every sample was aligned. ``methods``: (N,) per-row method (``template``,
    ``posed``, ``box``, ``points_box``, ``full_image``); ``fallbacks``: the rows whose
    points could not be used, with path, method and reason."""

    template: str
    methods: np.ndarray
    fallbacks: pd.DataFrame
    cache: str | None = None
    sources: np.ndarray | None = None  # (N,) landmark_source per row (bench.detect.stage)

    @property
    def counts(self) -> dict[str, int]:
        values, counts = np.unique(self.methods.astype(str), return_counts=True)
        return {str(v): int(c) for v, c in zip(values, counts, strict=True)}

    @property
    def by_source(self) -> dict[str, int]:
        """How many samples were aligned from dataset points, from a detection, as
        pre-aligned crops, and how many fell back (whatever their points' source)."""
        sources = (np.full(len(self.methods), "dataset", dtype=object) if self.sources is None
                   else self.sources.astype(object).copy())
        fell = np.zeros(len(self.methods), bool)
        if len(self.fallbacks):
            fell[self.fallbacks["row"].to_numpy()] = True
        sources[fell] = "fallback"
        values, counts = np.unique(sources.astype(str), return_counts=True)
        return {str(v): int(c) for v, c in zip(values, counts, strict=True)}

    def summary(self, max_paths: int = 5) -> str:
        parts = ", ".join(f"{c} {m}" for m, c in self.counts.items())
        text = f"aligned {len(self.methods)} samples to {self.template}: {parts}"
        if self.sources is not None:
            text += " (" + ", ".join(f"{c} {'from ' + s if s != 'fallback' else 'fell back'}"
                                     for s, c in self.by_source.items()) + ")"
        if len(self.fallbacks):
            first = "; ".join(f"{r.path} ({r.method}: {r.reason})"
                              for r in self.fallbacks.head(max_paths).itertuples())
            more = len(self.fallbacks) - max_paths
            text += (f". {len(self.fallbacks)} fell back: {first}"
                     + (f"; and {more} more" if more > 0 else ""))
        return text

    @classmethod
    def join(cls, parts: Sequence[AlignReport]) -> AlignReport:
        """One report for consecutive blocks of a sample table aligned separately (one per
        rank of a sharded extraction), as if the table had been aligned in one call."""
        if len(parts) == 1:
            return parts[0]
        offsets = np.cumsum([0] + [len(p.methods) for p in parts[:-1]])
        shifted = [p.fallbacks.assign(row=p.fallbacks["row"] + int(offset))
                   for p, offset in zip(parts, offsets, strict=True) if len(p.fallbacks)]
        fallbacks = (pd.concat(shifted, ignore_index=True) if shifted
                     else parts[0].fallbacks.iloc[:0])
        sources = (None if any(p.sources is None for p in parts)
                   else np.concatenate([p.sources for p in parts]))
        caches = [p.cache for p in parts if p.cache is not None]
        return cls(parts[0].template, np.concatenate([p.methods for p in parts]), fallbacks,
                   "; ".join(caches) if caches else None, sources)

    def to_dict(self, max_paths: int = 20) -> dict:
        return {"template": self.template, "n": len(self.methods), "counts": self.counts,
                "by_source": self.by_source,
                "n_fallbacks": len(self.fallbacks), "cache": self.cache,
                "fallbacks": self.fallbacks.head(max_paths).to_dict("records")}


def _frame(samples) -> pd.DataFrame:
    frame = getattr(samples, "samples", samples)
    if not isinstance(frame, pd.DataFrame) or "path" not in frame:
        raise DataError("alignment needs a SampleSet or a DataFrame with a 'path' column")
    return frame.reset_index(drop=True)


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class SampleInputs:
    """What alignment reads from a sample table, as arrays: canonical ``points``
    (N, 22, 2), raw-point ``extents`` (N, 4), ``boxes`` (N, 4), ``yaw``, ``pitch`` (N,);
    NaN wherever absent; ``sources`` (N,) where the points came from
    (:func:`bench.detect.stage.landmark_sources`)."""

    points: np.ndarray
    extents: np.ndarray
    boxes: np.ndarray
    yaw: np.ndarray
    pitch: np.ndarray
    sources: np.ndarray

    @property
    def trusted(self) -> np.ndarray:
        return np.isin(self.sources, TRUSTED_SOURCES)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> SampleInputs:
        n = len(frame)
        column = frame["landmarks"] if "landmarks" in frame else [None] * n
        points, extents = canonical_landmarks([None if _is_missing(v) else v for v in column])
        boxes = np.full((n, 4), np.nan)
        for i, box in enumerate(frame["box"] if "box" in frame else ()):
            if not _is_missing(box):
                boxes[i] = np.asarray(box, dtype=np.float64).reshape(4)
        return cls(points, extents, boxes, _numeric(frame, "yaw"), _numeric(frame, "pitch"),
                   landmark_sources(frame, points))

    def key(self, paths: list[str], template: Template, options: AlignOptions) -> str:
        """Digest of everything the crops of these samples depend on (see
        :func:`bench.align.cache.cache_key`)."""
        # 1 for a detector's points, 2 for a pre-aligned crop's (placed apart, see plan)
        trust = np.where(self.pre_aligned, 2.0, self.trusted.astype(np.float64))
        return cache_key(paths, template, options, self.points, self.extents, self.boxes,
                         self.yaw, self.pitch, trust)

    @property
    def pre_aligned(self) -> np.ndarray:
        return self.sources == PRE_ALIGNED

    def plan(self, template: str | Template, options: AlignOptions) -> AlignPlan:
        return plan_alignment(self.points, self.boxes, self.extents, self.yaw, self.pitch,
                              get_template(template), options, self.trusted,
                              self.pre_aligned)


def _numeric(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(np.float64)


def alignment_key(samples, template: str | Template,
                  options: AlignOptions = AlignOptions()) -> str:
    """Digest of the alignment inputs of ``samples``: each image's path, size and
    modification time, its points, box, yaw and pitch, and the template and options; what
    keys the crop cache, and what any cache of results computed from the crops must cover
    too (no image is read)."""
    frame = _frame(samples)
    return SampleInputs.from_frame(frame).key(frame["path"].tolist(), get_template(template),
                                              options)


def plan_samples(samples, template: str | Template,
                 options: AlignOptions = AlignOptions()) -> AlignPlan:
    """The per-sample alignment plan of a SampleSet / DataFrame (no image is read)."""
    return SampleInputs.from_frame(_frame(samples)).plan(template, options)


def _report(plan: AlignPlan, frame: pd.DataFrame, cache: Path | None,
            sources: np.ndarray) -> AlignReport:
    rows = np.flatnonzero(plan.fallback_mask())
    fallbacks = pd.DataFrame({"row": rows, "path": frame["path"].to_numpy()[rows],
                              "method": plan.method[rows], "reason": plan.reason[rows]})
    if LISTED_AT in frame:  # the list line to fix; ``row`` is only a position in the table
        fallbacks[LISTED_AT] = frame[LISTED_AT].to_numpy()[rows]
    return AlignReport(plan.template.name, plan.method.copy(), fallbacks,
                       None if cache is None else str(cache), sources)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class AlignStream:
    """Iterate for :class:`AlignedBatch` es in row order. ``report`` is known before the
    first image is decoded; with a cache the crops come from (or go to) disk."""

    frame: pd.DataFrame
    plan: AlignPlan
    report: AlignReport
    device: torch.device
    batch_size: int
    workers: int = 4
    cached: CacheEntry | None = None
    cache: CropCache | None = None
    key: str | None = None

    @property
    def template(self) -> Template:
        return self.plan.template

    def __len__(self) -> int:
        return math.ceil(len(self.frame) / self.batch_size)

    def __iter__(self) -> Iterator[AlignedBatch]:
        if self.cached is not None:
            yield from self._from_cache(self.cached)
            return
        writer = None
        if self.cache is not None:
            writer = self.cache.writer(self.template, self.key, len(self.frame))
        try:
            for batch in self._compute():
                if writer is not None:
                    writer.write(batch.rows, batch.crops.cpu().numpy())
                yield batch
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if writer is not None:
            path = writer.commit(self.plan.transforms,
                                 {"template": self.template.name, "n": len(self.frame),
                                  "report": self.report.to_dict()})
            self.cached = self.cache.load(self.template, self.key)
            self.report.cache = str(path)

    def _compute(self) -> Iterator[AlignedBatch]:
        paths = self.frame["path"].tolist()
        for start in range(0, len(paths), self.batch_size):
            rows = np.arange(start, min(start + self.batch_size, len(paths)))
            try:
                images = read_images([paths[i] for i in rows], self.device, self.workers)
            except DataError as exc:
                raise at_listing(exc, self.frame) from None
            self.plan.fill_full_image(rows, np.array([img.shape[-2:] for img in images]))
            m = self.plan.transforms[rows]
            yield AlignedBatch(rows, warp_images(images, m, self.template.size), m)

    def _from_cache(self, entry: CacheEntry) -> Iterator[AlignedBatch]:
        for start in range(0, len(entry.crops), self.batch_size):
            rows = np.arange(start, min(start + self.batch_size, len(entry.crops)))
            crops = torch.from_numpy(np.array(entry.crops[rows[0]:rows[-1] + 1]))
            yield AlignedBatch(rows, crops.to(self.device), entry.transforms[rows])


def align_batches(samples, template: str | Template = "arcface112",
                  device: str | torch.device | None = None, batch_size: int = 64, *,
                  options: AlignOptions = AlignOptions(), cache_dir: str | Path | None = None,
                  workers: int = 4, warn: bool = True) -> AlignStream:
    """Plan the alignment of ``samples`` (SampleSet or DataFrame) and return a stream of
    batches. ``device`` None = CUDA when available. Fallbacks are logged as a warning
    (``warn=False`` leaves reporting ``stream.report`` to the caller)."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    frame = _frame(samples)
    inputs = SampleInputs.from_frame(frame)
    plan = inputs.plan(template, options)
    cache = key = cached = None
    if cache_dir is not None:
        cache = CropCache(cache_dir)
        key = inputs.key(frame["path"].tolist(), plan.template, options)
        cached = cache.load(plan.template, key)
        if cached is not None:
            plan.transforms[:] = cached.transforms
    report = _report(plan, frame, None if cached is None else cached.path,
                     inputs.sources)
    if warn and len(report.fallbacks):
        log.warning(report.summary())
    return AlignStream(frame, plan, report, torch.device(device or default_device()),
                       batch_size, workers, cached, cache, key)


@dataclass
class AlignResult:
    """``crops`` (N, 3, h, w) uint8 RGB (a read-only memory map when cached);
    ``transforms`` (N, 2, 3) image -> crop pixels; ``report``."""

    crops: np.ndarray
    transforms: np.ndarray
    report: AlignReport


def align_samples(samples, template: str | Template = "arcface112",
                  device: str | torch.device | None = None, batch_size: int = 64, *,
                  options: AlignOptions = AlignOptions(), cache_dir: str | Path | None = None,
                  workers: int = 4) -> AlignResult:
    """Align every sample into one array, in row order (see :func:`align_batches`)."""
    stream = align_batches(samples, template, device, batch_size, options=options,
                           cache_dir=cache_dir, workers=workers)
    if stream.cached is None:
        h, w = stream.template.size
        crops = np.zeros((len(stream.frame), 3, h, w), np.uint8)
        for batch in stream:
            crops[batch.rows] = batch.crops.cpu().numpy()
        if stream.cached is not None:  # written to the cache on the way: serve the map
            crops = stream.cached.crops
    else:
        crops = stream.cached.crops
    return AlignResult(crops, stream.plan.transforms, stream.report)
