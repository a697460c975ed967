"""The four training modes and the one entry point the CLI and the runner call: :func:`train`.

==========  ====================================================================
naive       the stem alone (``resnet18``), identification loss
stitch      a naive stem, frozen; the DREAM block trained on its features (a pretrained
            stem, packaged or an ONNX file, is its own naive stage: the only mode it has)
end2end     stem + DREAM block (``resnet18-dream``) with the identification loss
retrain     end2end, then its block trained further as in stitch
==========  ====================================================================

Every run lives in ``OUT/<model>-<mode>-<key12>/`` (``OUT`` defaults to
``$BENCH_CACHE/train``): ``model.pt`` (a harness checkpoint: ``create_model(name,
weights=...)`` rebuilds the model with its preprocessing), ``log.json`` (config, data,
per-epoch history, metrics) and, while training, ``last.pt`` (the resumable state). The
key hashes the model, the mode, the configuration fields that change the weights, the
content of the training set and, for stitch and retrain, the key of the stage below; a
finished run with the same key is reused instead of retrained, and stitch/retrain reuse
(or first train) their naive/end2end stage.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import integrity
from ..align.templates import get_template
from ..data.cache import cache_root
from ..data.samples import SampleSet
from ..detect.stage import DetectOptions
from ..errors import ConfigError
from ..fileio import dump_json, sha256_file
from ..models import MODELS, FaceModel, create_model, factory_options, frozen_stem, model_file
from ..models.weights import checkpoint_training, save_checkpoint
from ..modes import MODES, dream_name, stem_name
from ..threads import cpu_threads
from .config import TrainConfig, digest, preset
from .data import TrainData, load_samples, load_train_data, training_digest
from .distributed import DistContext, distributed, main_first
from .loop import EpochRecord, train_classifier
from .stitch import stitch_model

log = logging.getLogger(__name__)

#: The stage each stitching mode starts from.
UPSTREAM = {"stitch": "naive", "retrain": "end2end"}
LOG_FORMAT = "bench-train-log"
CHECKPOINT_NAME, STATE_NAME, LOG_NAME = "model.pt", "last.pt", "log.json"


@dataclass
class TrainResult:
    """A finished run: rebuild its model with ``create_model(model_name, weights=checkpoint)``
    or :meth:`load`. ``key`` names the run (config + data + upstream); ``reused`` says that
    a finished run was found and nothing was trained."""

    model_name: str
    mode: str
    checkpoint: Path
    log: Path
    metrics: dict[str, Any]
    key: str
    data_hash: str
    reused: bool = False
    upstream: TrainResult | None = None

    def load(self, device: str | torch.device = "cpu") -> FaceModel:
        return create_model(self.model_name, weights=self.checkpoint).to(device).eval()

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model_name, "mode": self.mode, "checkpoint": str(self.checkpoint),
                "checkpoint_sha256": sha256_file(self.checkpoint), "log": str(self.log),
                "key": self.key, "data_hash": self.data_hash, "reused": self.reused,
                "metrics": self.metrics,
                "upstream": None if self.upstream is None else self.upstream.to_dict()}


def trained_as(checkpoint: str | Path, sha256: str) -> dict[str, Any] | None:
    """What ``bench train`` recorded about ``checkpoint`` (a file given to ``bench run
    --weights``): its mode and run key, which the checkpoint itself carries, and the metrics
    and data of its training when the log beside it is that very file's (same sha256).
    None for a checkpoint no training of ours wrote."""
    record = checkpoint_training(checkpoint)
    if record is None or record.get("mode") not in MODES:
        return None
    log = Path(checkpoint).parent / LOG_NAME
    try:
        entry = json.loads(log.read_text())
    except (OSError, ValueError):
        entry = {}
    if not (isinstance(entry, dict) and entry.get("finished")
            and entry.get("checkpoint_sha256") == sha256):
        return {"mode": record["mode"], "key": record.get("key"), "log": None}
    return {"mode": record["mode"], "key": entry.get("key"), "log": str(log),
            "data_hash": entry.get("data_hash"), "metrics": entry.get("metrics"),
            "upstream": entry.get("upstream")}


def model_names(model_name: str) -> tuple[str, str]:
    """(stem model, DREAM model) for a registered name given either way:
    ``resnet18`` and ``resnet18-dream`` both give ``("resnet18", "resnet18-dream")``."""
    MODELS.get(model_name)  # unknown names fail here, with did-you-mean
    stem, dream = stem_name(model_name), dream_name(model_name)
    if stem not in MODELS or dream not in MODELS:
        have = stem if stem in MODELS else dream
        raise ConfigError(f"model {model_name!r}: training needs both {stem!r} and {dream!r} "
                          f"registered; only {have!r} is")
    return stem, dream


def stage_model(model_name: str, mode: str) -> str:
    """The registered model a mode trains: the stem for naive, the DREAM model otherwise."""
    if mode not in MODES:
        raise ConfigError(f"unknown training mode {mode!r}; modes: {', '.join(MODES)}")
    stem, dream = model_names(model_name)
    return stem if mode == "naive" else dream


def check_trainable(model_name: str, mode: str) -> None:
    """A stem trained elsewhere (packaged, a user's ONNX file) has no weights to train here:
    of the four modes only stitch, which trains the DREAM block on its features, applies."""
    stage_model(model_name, mode)
    if frozen_stem(model_name) and mode != "stitch":
        stem = stem_name(model_name)
        raise ConfigError(f"{stem!r} is a pretrained model whose weights are not trained here, "
                          f"so --mode {mode} cannot run on it: stitch a DREAM block onto it "
                          f"(model {dream_name(stem)!r}, --mode stitch), or evaluate it as it "
                          f"is with `bench run -m {stem}`")


def frozen_stem_identity(model_name: str, config: TrainConfig) -> dict[str, Any]:
    """The frozen stem a stitch run starts from: its name and model file with the file's
    sha256 (what a trained naive stage's key is for a stem trained here)."""
    stem = stem_name(model_name)
    options = _options(stem, config)
    path, sha = model_file(_built(stem, options))
    return {"model": stem, "file": str(path), "sha256": sha,
            "template": _model_template(stem, options)}


def _options(model_name: str, config: TrainConfig) -> tuple:
    return tuple(sorted((k, v) for k, v in config.model_options.items()
                        if k in factory_options(model_name)))


@functools.lru_cache(maxsize=8)
def _built(model_name: str, options: tuple) -> FaceModel:
    # building a packaged stem resolves its file and hashes it (an ONNX session, ~1 s)
    return create_model(model_name, **dict(options))


@functools.lru_cache(maxsize=8)
def _model_template(model_name: str, options: tuple) -> str:
    """The definition of the template a model's crops are cut to: a stage trained or
    stitched on crops follows that definition, not the template's name alone (dlib150's
    fit changed direction, and a block stitched on the old crops was found again)."""
    return repr(get_template(_built(model_name, options).preprocess.template))


def run_key(model_name: str, mode: str, config: TrainConfig, data_digest: str) -> str:
    """The cache key of a run (recursively includes the upstream stage's key)."""
    name = stage_model(model_name, mode)
    if mode in UPSTREAM:
        below = (digest({"frozen_stem": frozen_stem_identity(model_name, config),
                         "data": data_digest}) if frozen_stem(model_name)
                 else run_key(model_name, UPSTREAM[mode], config, data_digest))
        # retrain checkpoints made before its block started as end2end left it (it began
        # with biases times the feature scale) must not be found again under this key
        start = {"start": "upstream block as trained"} if mode == "retrain" else {}
        return digest({"mode": mode, "model": name, **config.hashed_part("stitch"),
                       "upstream": below, **start})
    return digest({"mode": mode, "model": name, **config.hashed_part("classify"),
                   "data": data_digest,
                   "template": _model_template(name, _options(name, config))})


def run_dir(out_dir: str | Path, model_name: str, mode: str, key: str) -> Path:
    return Path(out_dir) / f"{stage_model(model_name, mode)}-{mode}-{key[:12]}"


def find_finished(model_name: str, mode: str, config: TrainConfig, data_digest: str,
                  out_dir: str | Path | None = None) -> TrainResult | None:
    """The finished run with this key, if any (the runner may call this to avoid training)."""
    out_dir = _out_dir(out_dir)
    key = run_key(model_name, mode, config, data_digest)
    folder = run_dir(out_dir, model_name, mode, key)
    ckpt, log_path = folder / CHECKPOINT_NAME, folder / LOG_NAME
    if not (ckpt.is_file() and log_path.is_file()):
        return None
    import json

    try:
        entry = json.loads(log_path.read_text())
    except (OSError, ValueError):
        return None
    if not entry.get("finished") or entry.get("key") != key:
        return None
    reason = integrity.mismatch(ckpt, {"sha256": entry["checkpoint_sha256"]}
                                if entry.get("checkpoint_sha256") else None)
    if reason is not None:  # e.g. a truncated copy: never reused, trained again
        integrity.warn_rebuild(ckpt, reason, "training this run again")
        return None
    upstream = None
    if mode in UPSTREAM and not frozen_stem(model_name):
        upstream = find_finished(model_name, UPSTREAM[mode], config, data_digest, out_dir)
    return TrainResult(stage_model(model_name, mode), mode, ckpt, log_path,
                       entry.get("metrics", {}), key, data_digest, True, upstream)


def _out_dir(out_dir: str | Path | None, cache_dir: str | Path | None = None) -> Path:
    return Path(out_dir) if out_dir is not None else cache_root(cache_dir) / "train"


@dataclass
class _Run:
    """What one call of :func:`train` shares between its stages."""

    model_name: str
    samples: SampleSet
    data_digest: str
    config: TrainConfig
    out_dir: Path
    ctx: DistContext
    resume: bool
    on_epoch_end: Callable[[str, EpochRecord], None] | None
    cache_dir: Path | None
    detect: DetectOptions | None = None
    data: dict[tuple, TrainData] = field(default_factory=dict)

    def train_data(self, model: FaceModel, collective: bool = True) -> TrainData:
        """Aligned crops for ``model``'s template and input size (built once per call).

        ``collective``: every rank calls this (rank 0 fills the alignment cache first, the
        others then read it); otherwise only the calling rank loads.
        """
        template, size = model.preprocess.template, model.preprocess.input_size
        if (template, size) not in self.data:
            with main_first(self.ctx) if collective else contextlib.nullcontext():
                self.data[(template, size)] = load_train_data(
                    self.samples, template, size, self.ctx.device, cache_dir=self.cache_dir,
                    workers=self.config.workers, digest=self.data_digest,
                    detect=self.detect)
        return self.data[(template, size)]


def train(model_name: str, mode: str, data: str | Path | SampleSet,
          out_dir: str | Path | None = None, config: TrainConfig | None = None, *,
          resume: bool = True, cache_dir: str | Path | None = None,
          on_epoch_end: Callable[[str, EpochRecord], None] | None = None,
          yaw_file: str | Path | None = None,
          detect: DetectOptions | None = None) -> TrainResult:
    """Train ``model_name`` (stem or ``-dream`` name) in ``mode`` on ``data`` (manifest
    CSV, folder, or SampleSet), or reuse the finished run with the same key.

    ``config`` defaults to the preset for the available device. ``resume`` continues an
    interrupted run from its last epoch checkpoint (False: start that stage again).
    Under ``torchrun`` every rank calls this; rank 0 writes the files.
    ``on_epoch_end(mode, record)`` is called after each classification epoch.
    ``yaw_file``: a ``path,yaw,...`` CSV (``bench yaw``) whose head pose replaces the
    training images' own for the images it lists (it enters the data hash).
    ``detect``: the detection stage for samples without landmarks of a known scheme
    (default: YuNet, or crops cut from boxes when it is not installed); it enters the key
    when it detects any sample.
    """
    config = config or preset()
    check_trainable(model_name, mode)  # validate before any work
    # under torchrun, SIGTERM unwinds every rank as Ctrl-C would (see distributed())
    with cpu_threads(config.threads), distributed(config.device) as ctx:
        samples = load_samples(data, yaw_file)
        digest_ = ctx.broadcast(training_digest(samples, detect, config.workers)
                                if ctx.is_main else None)
        run = _Run(model_name, samples, digest_, config, _out_dir(out_dir, cache_dir), ctx,
                   resume, on_epoch_end, None if cache_dir is None else Path(cache_dir),
                   detect)
        return _train_stage(run, mode)


def _train_stage(run: _Run, mode: str) -> TrainResult:
    found = find_finished(run.model_name, mode, run.config, run.data_digest, run.out_dir)
    if found is not None:
        log.info("reusing finished %s run %s", mode, found.checkpoint)
        return found
    frozen = frozen_stem(run.model_name)
    upstream = _train_stage(run, UPSTREAM[mode]) if mode in UPSTREAM and not frozen else None
    key = run_key(run.model_name, mode, run.config, run.data_digest)
    name = stage_model(run.model_name, mode)
    folder = run_dir(run.out_dir, run.model_name, mode, key)
    entry = _log_entry(run, mode, name, key, upstream)
    if mode in UPSTREAM:
        metrics = _stitch(run, mode, name, folder, entry, upstream)
    else:
        metrics = _classify(run, mode, name, folder, entry)
    ckpt = folder / CHECKPOINT_NAME
    run.ctx.barrier()
    return TrainResult(name, mode, ckpt, folder / LOG_NAME, metrics, key, run.data_digest,
                       False, upstream)


def _build(run: _Run, name: str, weights: Path | None = None) -> FaceModel:
    allowed = set().union(*(factory_options(n) for n in model_names(run.model_name)))
    unknown = sorted(set(run.config.model_options) - allowed)
    if unknown:
        raise ConfigError(f"unknown model option(s) {unknown}; options: {sorted(allowed)}")
    options = factory_options(name)
    cfg = {k: v for k, v in run.config.model_options.items() if k in options}
    # a frozen stem runs at the size its file was trained for, whatever the preset trains at
    changes = ({"input_size": list(run.config.input_size)}
               if run.config.input_size is not None and not frozen_stem(name) else None)
    torch.manual_seed(run.config.seed)  # identical initial weights on every rank and run
    model = create_model(name, weights=weights, preprocess=changes, **cfg)
    for key in ("weights", "weights_not_loaded"):  # about the starting point, not the result
        model.config.pop(key, None)
    return model.to(run.ctx.device)


def _classify(run: _Run, mode: str, name: str, folder: Path, entry: dict) -> dict[str, Any]:
    model = _build(run, name)
    data = run.train_data(model)
    entry["data"] = data.describe()
    state_path = folder / STATE_NAME
    if state_path.is_file() and not run.resume and run.ctx.is_main:
        log.info("restarting %s: ignoring the interrupted run in %s", mode, folder)
        state_path.unlink()
    run.ctx.barrier()

    def after_epoch(record: EpochRecord) -> None:
        if run.ctx.is_main:
            entry["history"].append(record.__dict__)
            entry["updated"] = _now()
            dump_json(entry, folder / LOG_NAME)
        if run.on_epoch_end is not None:
            run.on_epoch_end(mode, record)

    outcome = train_classifier(model, data, run.config, state_path, run.ctx, resume=run.resume,
                               desc=f"{name} {mode}", on_epoch_end=after_epoch)
    metrics = outcome.metrics()
    if run.ctx.is_main:
        entry["history"] = [r.__dict__ for r in outcome.history]
        _finish(model.cpu(), folder, entry, metrics, mode)
        state_path.unlink(missing_ok=True)
    return metrics


def _stitch(run: _Run, mode: str, name: str, folder: Path, entry: dict,
            upstream: TrainResult | None) -> dict[str, Any]:
    """``upstream`` None: the stem is frozen (packaged, a model file) and is its own start."""
    metrics: dict[str, Any] = {}
    if run.ctx.is_main:  # seconds of work on cached features: one rank does it
        # retrain continues from the end2end block; stitch starts a fresh block on the
        # naive stem (create_model loads a stem-only checkpoint into a -dream model)
        model = _build(run, name, weights=None if upstream is None else upstream.checkpoint)
        data = run.train_data(model, collective=False)
        entry["data"] = data.describe()
        outcome = stitch_model(model, data, run.config.stitch, run.config.seed,
                               progress=run.config.progress, trained=mode == "retrain")
        metrics = {**outcome.metrics(),
                   "upstream": None if upstream is None else upstream.metrics}
        _finish(model.cpu(), folder, entry, metrics, mode)
    return run.ctx.broadcast(metrics)


def _log_entry(run: _Run, mode: str, name: str, key: str, upstream: TrainResult | None
               ) -> dict[str, Any]:
    return {"format": LOG_FORMAT, "version": 1, "key": key, "finished": False,
            "model": name, "mode": mode, "config": run.config.to_dict(),
            "data_hash": run.data_digest, "data": None,
            "frozen_stem": (frozen_stem_identity(run.model_name, run.config)
                            if frozen_stem(run.model_name) else None),
            "upstream": None if upstream is None else {
                "mode": upstream.mode, "key": upstream.key,
                "checkpoint": str(upstream.checkpoint),
                "checkpoint_sha256": sha256_file(upstream.checkpoint)},
            "environment": _environment(run.ctx), "started": _now(), "updated": _now(),
            "history": [], "metrics": None, "checkpoint": None}


def _finish(model: FaceModel, folder: Path, entry: dict, metrics: dict, mode: str) -> None:
    """Checkpoint first, then the log that marks the run finished (both atomic)."""
    ckpt = save_checkpoint(model, folder / CHECKPOINT_NAME,
                           training={"mode": mode, "key": entry["key"]})
    entry.update(finished=True, metrics=metrics, updated=_now(), checkpoint=CHECKPOINT_NAME,
                 checkpoint_sha256=sha256_file(ckpt))
    dump_json(entry, folder / LOG_NAME)


def _environment(ctx: DistContext) -> dict[str, Any]:
    device = ctx.device
    return {"torch": torch.__version__, "python": platform.python_version(),
            "device": str(device), "world_size": ctx.world_size,
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else "",
            "threads": torch.get_num_threads()}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
