"""The training set as tensors: aligned uint8 crops, identity labels and yaw, plus the sampler.

Images are read through the same readers and the same alignment as evaluation (so a model
sees training and test faces framed alike): :func:`bench.readers.manifest.read_samples`
gives the rows, :func:`bench.align.align_samples` decodes (nvJPEG on CUDA, OpenCV threads
on CPU) and warps every image once to the model's template, and caches the crops on disk.
The crops are then resized to the training input size (when it differs from the
template's) and kept resident as one uint8 tensor, on the GPU when they fit, so a training
step gathers its batch with one ``index_select`` and no worker processes. A set too large
for memory is served from the memory-mapped crop cache by DataLoader workers instead.

:class:`EpochSampler` is a pure function of (seed, epoch, step): its checkpoint is those
three numbers, and a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.cache import cache_root
from ..data.samples import SampleSet
from ..detect.backends import DEFAULT_DETECTOR, create_detector
from ..detect.stage import DetectOptions, needs_detection
from ..errors import ConfigError, DataError
from ..fileio import sha256_file
from ..models.preprocess import resize_crops

log = logging.getLogger(__name__)

#: Resident crops may use at most this share of physical RAM (CPU) or free GPU memory.
RESIDENT_SHARE = 0.4


#: How a training set gets its yaw, in every command's own words (a folder of identities
#: has no yaw column: the yaw file is its only way).
TRAIN_YAW_FIX = ("estimate it with `bench yaw TRAIN_DATA --out yaw.csv` and pass that file "
                 "(bench run / compare: --train-yaw-file yaw.csv; bench train: --yaw-file "
                 "yaw.csv), or add a yaw column to the manifest")


def load_samples(data: str | Path | SampleSet,
                 yaw_file: str | Path | None = None) -> SampleSet:
    """A SampleSet as is, or a manifest CSV / folder with ``metadata.csv`` / identity folders;
    with ``yaw_file`` (``bench yaw``'s CSV) the head pose of the images it lists replaced,
    in a copy."""
    if isinstance(data, SampleSet):
        samples = data
    else:
        from ..readers.manifest import read_samples

        samples = read_samples(data)
    if yaw_file is None:
        return samples
    from ..data.skipped import SkippedRows
    from ..data.yaw_file import apply_listed_yaw_file

    samples = dataclasses.replace(samples, samples=samples.samples.copy(),
                                  provenance=copy.deepcopy(samples.provenance))
    apply_listed_yaw_file(samples, yaw_file, SkippedRows(), samples.root)
    return samples


def data_hash(samples: SampleSet, workers: int = 8) -> str:
    """Content hash of a training set: every image's bytes and its subject, yaw and points.

    Paths enter relative to the set's root, so a moved or regenerated identical set keeps
    its hash (and its cached checkpoints).
    """
    frame = samples.samples
    paths = frame["path"].tolist()
    with ThreadPoolExecutor(max(1, workers)) as pool:
        contents = list(pool.map(sha256_file, paths))
    h = hashlib.sha256()
    root = Path(samples.root)
    for path, subject, yaw, points, digest in zip(paths, frame["subject"], frame["yaw"],
                                                  frame["landmarks"], contents, strict=True):
        rel = os.path.relpath(path, root)
        pts = "" if points is None else np.asarray(points, np.float32).tobytes().hex()
        h.update(f"{rel}\0{subject}\0{float(yaw)!r}\0{pts}\0{digest}\n".encode())
    return h.hexdigest()


def training_digest(samples: SampleSet, detect: DetectOptions | None = None,
                    workers: int = 8) -> str:
    """The training key's data part: :func:`data_hash`, and the detection stage's identity
    when it detects any sample (crops cut from another detector's points are other data).
    A set whose samples all carry landmarks of a known scheme keeps the bare hash whatever
    the detector, so its cached checkpoints stay valid."""
    bare = data_hash(samples, workers)
    stage = _detection_identity(samples, detect)
    if stage is None:
        return bare
    blob = json.dumps({"data": bare, "detection": stage}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _detection_identity(samples: SampleSet, detect: DetectOptions | None) -> dict | None:
    options = detect or DetectOptions()
    # conservative: a template without landmarks detects nothing, yet is keyed as if it did
    if not needs_detection(samples.samples, True, options.mode).any():
        return None
    try:
        detector = create_detector(options.detector, options.model).identity()
    except ConfigError:
        if not _may_fall_back(detect):
            raise
        detector = None  # not installed: the set is cut from boxes (load_train_data)
    return {"mode": options.mode, "sides": [options.min_side, options.max_side],
            "detector": detector}


def _may_fall_back(detect: DetectOptions | None) -> bool:
    """Only the default detector may be missing: training then cuts its photos from boxes,
    as before training sets were detected; a detector the user chose must work."""
    return detect is None or (detect.detector == DEFAULT_DETECTOR and detect.model is None)


@dataclass
class TrainData:
    """``images``: uint8 ``(N, 3, h, w)`` tensor (resident, on ``device`` or pinned CPU) or
    numpy memory map (streamed); ``labels``: ``(N,)`` int64 subject index into
    ``subjects``; ``yaw``: ``(N,)`` float32 degrees (NaN unknown), both on ``device``."""

    images: torch.Tensor | np.ndarray
    labels: torch.Tensor
    yaw: torch.Tensor
    subjects: list[str]
    data_hash: str
    template: str
    input_size: tuple[int, int]
    device: torch.device
    source: str = ""
    notes: list[str] = field(default_factory=list)
    #: the detection stage's report (bench.detect.DetectionReport.to_dict), None if none ran
    detection: dict[str, Any] | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.subjects)

    @property
    def resident(self) -> bool:
        return isinstance(self.images, torch.Tensor)

    def require_yaw(self) -> None:
        missing = int(torch.isnan(self.yaw).sum())
        if missing:
            raise DataError(f"{missing} of {len(self)} training images have no yaw; DREAM "
                            f"modes need it: {TRAIN_YAW_FIX}", self.source or None)

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "images": len(self), "identities": self.num_classes,
                "data_hash": self.data_hash, "template": self.template,
                "input_size": list(self.input_size), "resident": self.resident,
                "notes": list(self.notes), "detection": self.detection}


def load_train_data(data: str | Path | SampleSet, template: str, input_size: tuple[int, int],
                    device: str | torch.device = "cpu", *, cache_dir: str | Path | None = None,
                    workers: int = 4, digest: str | None = None,
                    detect: DetectOptions | None = None) -> TrainData:
    """Read, align (cached on disk under ``cache_dir``/``$BENCH_CACHE``) and resize a
    training set; labels are subjects in sorted order. Samples without usable landmarks
    are detected first, as an evaluation set's are (``detect``: the detector, default
    YuNet; its detections are cached too)."""
    from ..align import align_samples
    from ..align.templates import get_template
    from ..detect import complete_landmarks

    device = torch.device(device)
    samples = load_samples(data)
    if len(samples) == 0:
        raise DataError("the training set has no images", samples.root)
    frame = samples.samples
    subjects = sorted(frame["subject"].unique().tolist())
    if len(subjects) < 2:
        raise DataError(f"training needs at least 2 identities, found {len(subjects)}",
                        samples.root)
    labels = np.searchsorted(np.asarray(subjects, dtype=object), frame["subject"].to_numpy())
    notes = []
    # the crops a model trains on must be cut as the ones it is evaluated on
    try:
        frame, detection = complete_landmarks(
            frame, uses_landmarks=get_template(template).uses_landmarks,
            options=detect or DetectOptions(), cache_dir=cache_root(cache_dir))
    except ConfigError as exc:  # the default detector's package is not installed
        if not _may_fall_back(detect):
            raise
        # training sets were cut from boxes/whole images before they were detected, and
        # a base install has no detector: keep training, say what is lost and the fix
        log.warning("training set not detected: %s", exc)
        notes.append(f"samples without landmarks cut from their box or the whole image, "
                     f"not detected: {exc}")
        detection = None
    align_cache = Path(cache_root(cache_dir)) / "align"
    aligned = align_samples(frame, template, device, cache_dir=align_cache, workers=workers)
    notes += [aligned.report.summary()] if len(aligned.report.fallbacks) else []
    images = _place(aligned.crops, tuple(input_size), device)
    source = str(samples.provenance.get("source", samples.root))
    return TrainData(
        images=images,
        labels=torch.as_tensor(labels, dtype=torch.int64).to(device),
        yaw=torch.as_tensor(frame["yaw"].to_numpy(np.float32)).to(device),
        subjects=subjects, data_hash=digest or training_digest(samples, detect, workers),
        template=template,
        input_size=(int(input_size[0]), int(input_size[1])), device=device, source=source,
        notes=notes,
        detection=detection.to_dict() if detection is not None and detection.n_samples else None)


def _budget(device: torch.device) -> int:
    if device.type == "cuda":
        torch.cuda.empty_cache()  # alignment just ran there: its cached blocks are free too
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * RESIDENT_SHARE)
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * RESIDENT_SHARE)


def _place(crops: np.ndarray, size: tuple[int, int], device: torch.device
           ) -> torch.Tensor | np.ndarray:
    """Crops resident on ``device`` (resized there) when they fit, else left memory-mapped."""
    n = crops.shape[0]
    nbytes = n * 3 * size[0] * size[1]
    if nbytes > _budget(device):
        if tuple(crops.shape[-2:]) != size:
            raise ConfigError(f"{n} crops at {size} do not fit in memory and streaming needs "
                              "crops at the input size: train at the template's size")
        log.info("training crops (%.1f GB) stream from the memory-mapped cache", nbytes / 1e9)
        return crops
    out = torch.empty((n, 3, *size), dtype=torch.uint8, device=device)
    for start in range(0, n, 4096):  # bounded host copies out of the memory map
        part = torch.from_numpy(np.array(crops[start:start + 4096])).to(device)
        out[start:start + 4096] = resize_crops(part, size)
    return out


class EpochSampler:
    """Global batches from a per-epoch permutation seeded by ``(seed, epoch)``.

    Every step takes the next ``global_batch`` indices of the permutation (the last partial
    batch is dropped, so all ranks run the same number of steps) and rank ``r`` of
    ``world_size`` gets the ``r``-th equal slice: the union over ranks is exactly the batch
    one process would use with the same global batch.
    """

    def __init__(self, n: int, global_batch: int, seed: int, rank: int = 0, world_size: int = 1):
        if global_batch % world_size:
            raise ConfigError(f"global batch {global_batch} is not divisible by the "
                              f"{world_size} ranks")
        if n < global_batch:
            raise ConfigError(f"the training set has {n} images, fewer than one batch of "
                              f"{global_batch}: lower classify.batch_size")
        self.n, self.global_batch, self.seed = int(n), int(global_batch), int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.local_batch = self.global_batch // self.world_size

    @property
    def steps_per_epoch(self) -> int:
        return self.n // self.global_batch

    def permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(mix_seed(self.seed, epoch, 0))
        return torch.randperm(self.n, generator=g)

    def flips(self, epoch: int) -> torch.Tensor:
        """(N,) bool: which images are mirrored this epoch (per image, not per rank)."""
        g = torch.Generator().manual_seed(mix_seed(self.seed, epoch, 1))
        return torch.rand(self.n, generator=g) < 0.5

    def batches(self, epoch: int, start_step: int = 0, device: torch.device | None = None
                ) -> Iterator[torch.Tensor]:
        """This rank's index batches of ``epoch`` from ``start_step`` on (int64, on ``device``:
        the permutation is copied once per epoch, not a pageable copy per step)."""
        order = self.permutation(epoch)
        if device is not None:
            order = order.to(device)
        lo = self.rank * self.local_batch
        for step in range(start_step, self.steps_per_epoch):
            base = step * self.global_batch + lo
            yield order[base:base + self.local_batch]

    def state_dict(self) -> dict[str, int]:
        return {"n": self.n, "global_batch": self.global_batch, "seed": self.seed,
                "world_size": self.world_size}

    def check_state(self, state: dict[str, int]) -> None:
        """A checkpoint resumes only with the same sampling (same data size, batch, seed)."""
        mine = self.state_dict()
        diff = {k: (state.get(k), v) for k, v in mine.items() if state.get(k) != v}
        if diff:
            raise ConfigError(f"cannot resume: sampler differs from the checkpoint's "
                              f"(checkpoint, now): {diff}")


def mix_seed(*values: int) -> int:
    """A 63-bit seed from several integers (independent streams per epoch and purpose)."""
    h = hashlib.sha256(",".join(str(int(v)) for v in values).encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


class _CropBatches(torch.utils.data.Dataset):
    """Batches gathered from memory-mapped crops, for DataLoader workers (streaming)."""

    def __init__(self, crops: np.ndarray):
        self.crops = crops

    def __len__(self) -> int:
        return self.crops.shape[0]

    def __getitem__(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        order = np.sort(index.numpy())  # sequential reads from the memory map
        crops = torch.from_numpy(np.ascontiguousarray(self.crops[order]))
        return torch.from_numpy(order), crops


def stream_batches(data: TrainData, sampler: EpochSampler, epoch: int, start_step: int,
                   workers: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(indices, uint8 crops on the device) per step; workers read while the GPU trains.
    Indices are on the device when the crops are resident there, else on the CPU."""
    if data.resident:  # _place put them on the training device
        for idx in sampler.batches(epoch, start_step, device=data.device):
            yield idx, data.images.index_select(0, idx)
        return
    loader = torch.utils.data.DataLoader(
        _CropBatches(data.images), batch_size=None,
        sampler=list(sampler.batches(epoch, start_step)), num_workers=workers,
        pin_memory=data.device.type == "cuda", persistent_workers=False,
        prefetch_factor=4 if workers else None)
    for idx, crops in loader:
        yield idx, crops.to(data.device, non_blocking=True)
