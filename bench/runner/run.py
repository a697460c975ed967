"""``bench run``: one (protocol, model, mode) evaluated end to end into a run directory.

    outcome = run_benchmark(RunConfig(protocol="cfp-fp", model="resnet18-dream"))

Stages: resolve the protocol and its data (the embedded synthetic set by default), get the
model (given weights, or train/reuse it in the requested mode), extract and cache features,
pool templates, score the comparisons, compute metrics overall, per fold and per yaw bin
with bootstrap CIs, then write ``<out>/runs/<run-id>/`` atomically and update the
leaderboards. Every stage that can be reused (data, training, features) is cached.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import __version__
from .. import metrics as M
from ..align.api import alignment_key
from ..align.templates import get_template
from ..data.cache import cache_root, reader_cache
from ..detect import DetectOptions
from ..errors import ConfigError, DataError
from ..evaluation import EvalPlan, evaluate_scores
from ..fileio import dump_json, prepare_output_dir, safe_name, sha256_file, staged_dir
from ..models import MODELS, create_model, factory_options, frozen_stem, model_file
from ..modes import MODES, PRETRAINED, RUN_MODES, default_mode, is_dream
from ..protocols import DATA_ENV, load_eval_set, load_protocol
from ..report import plots
from ..scores import write_scores
from ..threads import cpu_threads
from ..train.distributed import DistContext, distributed, main_first
from . import leaderboard
from .data_source import synth_summary, synthetic_root, uses_default_data
from .features import (
    ExtractOptions,
    extract_features,
    feature_key,
    require_yaw,
    resolve_device,
)
from .pooling import PoolingConfig, pool_templates, template_table
from .result_schema import SCHEMA_VERSION, RunResult, validate_result
from .scoring import (
    identification,
    score_comparisons,
    search_score_table,
    split_probe_scores,
    split_scores,
)
from .sharding import complete_landmarks_on_ranks


@dataclass(frozen=True)
class RunConfig:
    """One benchmark run. ``mode`` None: ``retrain`` for a ``-dream`` model, ``naive``
    for a stem, ``pretrained`` when ``weights`` are given."""

    protocol: str
    model: str
    mode: str | None = None
    weights: str | None = None
    data: str | None = None
    train_data: str | None = None
    yaw_file: str | None = None      # ``bench yaw`` output for data without a yaw of its own
    train_yaw_file: str | None = None  # the same for the training data (DREAM modes need yaw)
    device: str | None = None
    out: str = "results"
    flip: bool | None = None
    n_boot: int = 1000
    seed: int = 0
    train_preset: str | None = None
    train_changes: dict = field(default_factory=dict)
    synth_preset: str = "small"
    lenient: bool = False
    batch_size: int | None = None    # extraction batch; None: 256 on CUDA, 64 on the CPU
    cache_dir: str | None = None
    update_leaderboard: bool = True
    detector: str = "yunet"          # face detector for samples without usable landmarks
    detector_model: str | None = None
    detect: str = "auto"             # auto | always | never (bench.detect.stage)
    progress: bool = True            # progress bars on a terminal (quiet elsewhere)
    threads: int | None = None       # CPU threads of torch and ONNX Runtime (None: theirs)
    unknown_yaw: str = "refuse"      # a DREAM model's images without yaw: refuse | stem

    def resolved_mode(self) -> str:
        if self.mode is not None:
            if self.mode not in RUN_MODES:
                raise ConfigError(f"unknown mode {self.mode!r}; modes: {', '.join(MODES)}")
            return self.mode
        if stitched_onto_frozen(self.model):
            # its block is trained here (stitched, cached) unless a stitched checkpoint is given
            return PRETRAINED if self.weights and not _is_onnx(self.weights) else "stitch"
        if self.weights or frozen_stem(self.model):
            return PRETRAINED
        return default_mode(self.model)


@dataclass
class RunOutcome:
    run_dir: Path
    record: RunResult
    scores: pd.DataFrame
    #: a 1:N run's per-gallery searches (bench.metrics.ProbeScores), for paired 1:N
    #: comparisons; None for 1:1
    searches: list[M.ProbeScores] | None = None

    @property
    def result(self) -> dict:
        """The record as ``result.json`` holds it."""
        return self.record.to_dict()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: torch.device) -> dict:
    env = {"python": platform.python_version(), "torch": torch.__version__,
           "numpy": np.__version__, "platform": platform.platform(),
           "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
           "device": str(device), "cuda": torch.version.cuda}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def evalset_digest(eval_set, skipped: Sequence = ()) -> str:
    """Content hash of the evaluation data a reader read (the file sha256s its provenance
    records); ``data.sha256`` of a result. Training data has its own,
    :func:`bench.train.data.data_hash`.

    ``skipped``: the rows a lenient read left out. Then the same files gave other data
    (fewer images, templates, pairs), so the hash covers what was kept too: a lenient run
    on a damaged copy must never take the name, or the place, of the complete run."""
    prov = eval_set.samples.provenance
    files = prov.get("files")
    samples = eval_set.samples.samples
    base = _digest(files) if files else _digest(sorted(samples["path"].tolist()))
    if not len(skipped):
        return base
    # each kept image as it lies under the dataset (a .bin's, under the cache folder its
    # reader unpacked it to), so the hash does not follow where the data or the cache is
    root = Path(prov.get("image_cache") or eval_set.samples.root)
    kept = sorted(os.path.relpath(p, root) for p in samples["path"].astype(str))
    table = eval_set.comparisons if eval_set.comparisons is not None else eval_set.search
    rows = int(pd.util.hash_pandas_object(table.astype(str), index=False).sum())
    return _digest({"files": base, "kept_images": kept, "kept_rows": rows})


class _Timer:
    def __init__(self):
        self.t0 = time.perf_counter()
        self.marks: dict[str, float] = {}
        self._last = self.t0

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.marks[name] = round(now - self._last, 3)
        self._last = now

    def done(self) -> dict:
        return {**self.marks, "total": round(time.perf_counter() - self.t0, 3)}


def stitched_onto_frozen(model: str) -> bool:
    """A DREAM model whose stem is not trained here (``sface-dream``, ``onnx-dream``): its
    block is stitched onto the stem as it is, the one mode such a model has."""
    return is_dream(model) and frozen_stem(model)


def _is_onnx(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".onnx"


def _pretrained_model(cfg: RunConfig, mode: str) -> tuple[torch.nn.Module, dict] | None:
    """A model that needs no training: a checkpoint or model file given with --weights,
    or weights a package ships. None when the model must be trained."""
    if stitched_onto_frozen(cfg.model):
        return _frozen_stem_dream(cfg, mode)
    source = MODELS.meta(cfg.model).get("weights", "trained")
    takes_file = "path" in factory_options(cfg.model)
    if (cfg.weights or source != "trained") and mode != "pretrained":
        # said before the model is built (an ONNX load and a hash of its file)
        raise ConfigError(f"--mode {mode} trains a model, but {cfg.model!r} "
                          + ("was given --weights" if cfg.weights else
                             "ships its weights" if source == "packaged" else
                             "runs its own model file")
                          + ": drop --mode (it runs as 'pretrained'"
                          + (", or as the mode `bench train` recorded in the checkpoint)"
                             if cfg.weights else ")"))
    if cfg.weights:
        path = Path(cfg.weights)
        if not path.is_file():
            raise DataError("weights file not found", path)
        if path.suffix.lower() == ".onnx" and not takes_file:
            raise ConfigError(f"{path} is an ONNX model and {cfg.model!r} loads harness or "
                              f"torch checkpoints: run `bench run -m onnx --weights {path}`")
        if source == "file" and path.suffix.lower() != ".onnx":
            raise ConfigError(f"model {cfg.model!r} runs an ONNX file, {path.name} is not one: "
                              f"`bench run -m {cfg.model} --weights FILE.onnx` (a harness "
                              "checkpoint runs with its own model name, e.g. -m resnet18)")
        model = create_model(cfg.model, path=str(path)) if takes_file else \
            create_model(cfg.model, weights=path)
        return model, _model_info(cfg, path, model)
    if source == "file":
        raise ConfigError(f"model {cfg.model!r} needs its model file: "
                          f"`bench run -m {cfg.model} --weights FILE.onnx`")
    if source == "packaged":
        model = create_model(cfg.model)
        return model, _model_info(cfg, model_file(model)[0], model)
    return None


def _frozen_stem_dream(cfg: RunConfig, mode: str) -> tuple[torch.nn.Module, dict] | None:
    """``sface-dream`` / ``onnx-dream``: None to stitch its block (``--weights``, if given,
    is the stem's model file), or the stitched checkpoint given with ``--weights``."""
    from ..train.modes import check_trainable

    check_trainable(cfg.model, "stitch" if mode == PRETRAINED else mode)
    path = None if cfg.weights is None else Path(cfg.weights)
    if path is not None and not path.is_file():
        raise DataError("weights file not found", path)
    if mode == "stitch":
        if MODELS.meta(cfg.model).get("weights") == "file" and path is None:
            raise ConfigError(f"model {cfg.model!r} stitches its block onto a model file: "
                              f"`bench run -m {cfg.model} --weights FILE.onnx`")
        if path is not None and not _is_onnx(path):
            raise ConfigError(f"--mode stitch trains the block of {cfg.model!r} on an ONNX "
                              f"stem, and {path.name} is not one (a stitched checkpoint runs "
                              "without --mode)")
        return None
    if path is None or _is_onnx(path):
        raise ConfigError(f"{cfg.model!r} runs as 'pretrained' from a stitched checkpoint "
                          "only (--weights CKPT.pt): drop --mode to stitch its block here")
    model = create_model(cfg.model, weights=path)
    return model, _model_info(cfg, path, model)


def _model_info(cfg: RunConfig, path: Path, model) -> dict:
    # the file's hash names the model: the one the factory took when it runs ``path`` itself
    # (an ONNX file), else ``path``'s own (a checkpoint: e.g. a block stitched onto SFace,
    # whose config records the SFace file too)
    from ..train.modes import trained_as

    own = model_file(model)
    sha = own[1] if own is not None and own[0] == Path(path) else sha256_file(path)
    # a checkpoint `bench train` wrote runs as what it was trained as: its rows in the
    # leaderboard must tell naive, end2end, retrain and stitch apart
    training = None if _is_onnx(path) else trained_as(path, sha)
    return {"name": cfg.model, "mode": training["mode"] if training else PRETRAINED,
            "checkpoint": str(path), "checkpoint_sha256": sha, "training": training}


def get_model(cfg: RunConfig, mode: str, device: torch.device, train_root: Path | None,
              echo) -> tuple[torch.nn.Module, dict]:
    """The model to evaluate and what describes it (checkpoint, training log)."""
    MODELS.get(cfg.model)  # an unknown name fails here, with did-you-mean
    given = _pretrained_model(cfg, mode)
    if given is not None:
        unused = [flag for flag, value in (("--train-data", cfg.train_data),
                                           ("--train-yaw-file", cfg.train_yaw_file),
                                           ("--preset", cfg.train_preset),
                                           ("--epochs", cfg.train_changes)) if value]
        if unused:  # silently ignored, they would stand in the record's command as if used
            raise ConfigError(f"{cfg.model!r} runs as '{given[1]['mode']}' here and trains "
                              f"nothing: drop {', '.join(unused)}")
        return given
    from ..train.config import preset
    from ..train.modes import train

    if train_root is None:
        raise ConfigError("no weights given and no training data: pass --weights FILE, or "
                          "--train-data MANIFEST, or use the embedded synthetic default")
    changes = cfg.train_changes if cfg.threads is None else {"threads": cfg.threads,
                                                             **cfg.train_changes}
    if cfg.weights is not None:  # the frozen stem's model file (_frozen_stem_dream)
        changes = {**changes, "model_options": {**changes.get("model_options", {}),
                                                "path": str(Path(cfg.weights).absolute())}}
    tcfg = preset(cfg.train_preset, device=device.type, seed=cfg.seed, **changes)
    echo(f"training {cfg.model} ({mode}, {tcfg.preset or 'custom'} preset on {device.type}) "
         f"on {train_root} (reused when already trained)")
    result = train(cfg.model, mode, train_root, config=tcfg, cache_dir=cfg.cache_dir,
                   yaw_file=cfg.train_yaw_file, detect=detect_options(cfg))
    model = result.load("cpu")
    info = result.to_dict()
    return model, {"name": cfg.model, "mode": mode, "checkpoint": info["checkpoint"],
                   "checkpoint_sha256": info["checkpoint_sha256"], "training": info,
                   "train_preset": tcfg.preset}


def detect_options(cfg: RunConfig) -> DetectOptions:
    """The run's detection stage, for its training set as for its evaluation set: a model
    must train on faces cut as the ones it is tested on."""
    return DetectOptions(detector=cfg.detector, model=cfg.detector_model, mode=cfg.detect)


def _default_train(root) -> Path | None:
    """A data root laid out like the synthetic one carries its training part."""
    if root is None:
        return None
    cand = Path(root) / "train" / "metadata.csv"
    return cand if cand.is_file() else None


def extract_batch(cfg: RunConfig, device: torch.device) -> int:
    """The CPU gains nothing from big batches, while decoded frames and warp canvases of a
    batch grow with it (256 CFP photos: hundreds of MB): small ones keep a run's memory low."""
    if cfg.batch_size is not None:
        return cfg.batch_size
    return 256 if device.type == "cuda" else 64


def run_id_for(protocol_name: str, cfg: RunConfig, mode: str, protocol_hash: str,
               data_digest: str, ckpt_sha: str, flip: bool,
               detection: dict | None = None, unknown_yaw: str = "refuse") -> str:
    """``<protocol>__<model>__<mode>__<hash>``, named by the resolved protocol's name (never
    by what ``-p`` said: a path's folders have no place in a folder name).

    ``detection`` (detector identity and mode) is given when the run detected faces: runs
    with another detector or detection mode placed other crops, and must not replace each
    other. Runs that detected nothing keep the key they always had. ``unknown_yaw``: the
    policy that gave a DREAM model's images without yaw the stem's features, when it did."""
    parts = {"p": protocol_hash, "d": data_digest, "c": ckpt_sha, "f": flip,
             "b": cfg.n_boot, "s": cfg.seed}
    if detection:
        parts["det"] = detection
    if unknown_yaw != "refuse":
        parts["unknown_yaw"] = unknown_yaw
    key = _digest(parts)[:10]
    return safe_name(f"{protocol_name}__{cfg.model}__{mode}__{key}", "run id")


def run_benchmark(cfg: RunConfig, echo=print) -> RunOutcome | None:
    """Run one benchmark end to end; see the module docstring.

    Under torchrun every rank calls this with the same arguments: the ranks share the
    training and the detection, alignment and embedding of the images
    (:mod:`bench.runner.sharding`); rank 0 alone scores, writes the run and the leaderboard
    and returns the outcome, the others return None.
    """
    with distributed(resolve_device(cfg.device).type) as ctx, cpu_threads(cfg.threads):
        if not ctx.is_main:  # one voice: rank 0 speaks for the run
            echo = _silent
            cfg = dataclasses.replace(cfg, progress=False)
        return _run_benchmark(cfg, echo, ctx)


def _silent(*_args, **_kwargs) -> None:
    pass


def _run_benchmark(cfg: RunConfig, echo, ctx: DistContext) -> RunOutcome | None:
    timer = _Timer()
    # before any work: an --out that is a file, read-only or an input fails now, not at the end
    prepare_output_dir(cfg.out, inputs=(cfg.data, cfg.train_data, cfg.yaw_file,
                                        cfg.train_yaw_file, cfg.weights),
                       owned=leaderboard.OWNED)
    MODELS.get(cfg.model)  # an unknown name fails now, not after reading the data
    mode = cfg.resolved_mode()
    protocol = load_protocol(cfg.protocol)
    plan = EvalPlan.from_protocol(protocol, n_boot=cfg.n_boot, seed=cfg.seed)
    device = resolve_device(cfg.device)
    synthetic = uses_default_data(cfg.data, protocol)
    default_root = None
    with main_first(ctx):  # rank 0 generates and caches the data, the others then read it
        if synthetic:
            default_root = synthetic_root(cfg.synth_preset, 0, cfg.cache_dir, echo)
            echo(f"using the embedded synthetic dataset at {default_root} "
                 "(pass --data DIR or set $BENCH_DATA for a real one)")
        if cfg.lenient:
            echo("--lenient: decoding every image first, to leave out any that cannot be "
                 "decoded with what uses it")
        # strict runs do not decode twice: the first image that fails stops them at its
        # list line, before anything is written
        eval_set, report = load_eval_set(protocol, cfg.data, lenient=cfg.lenient,
                                         default=default_root,
                                         cache_dir=reader_cache(cfg.cache_dir),
                                         yaw_file=cfg.yaw_file, decode=cfg.lenient)
    echo(report.format().splitlines()[0])
    if (notes := report.notes_line()) is not None:
        echo(notes)
    digest = evalset_digest(eval_set, report.skipped)
    if is_dream(cfg.model) and cfg.unknown_yaw == "refuse":  # said before any training
        require_yaw(eval_set.samples.samples, cfg.yaw_file)
    timer.mark("data")

    train_root = Path(cfg.train_data) if cfg.train_data else _default_train(
        cfg.data or default_root or os.environ.get(DATA_ENV))
    model, model_info = get_model(cfg, mode, device, train_root, echo)
    mode = model_info["mode"]  # a trained checkpoint's own mode
    timer.mark("train")

    flip = cfg.flip
    if flip is None:
        flip = (model.preprocess.flip_test if protocol.pooling.flip == "model"
                else bool(protocol.pooling.flip))
    cache = cache_root(cfg.cache_dir)
    samples, detection = complete_landmarks_on_ranks(
        ctx, eval_set.samples.samples,
        uses_landmarks=get_template(model.preprocess.template).uses_landmarks,
        options=detect_options(cfg),
        cache_dir=cache, progress=cfg.progress)
    echo(detection.summary())
    timer.mark("detect")
    detected_by = {"detector": detection.detector, "mode": detection.mode}
    # the policy names features and runs only where it changed some: a DREAM model, and
    # images without a yaw
    applied = cfg.unknown_yaw if (model.dream is not None
                                  and samples["yaw"].isna().any()) else "refuse"
    fkey = feature_key(model_info["checkpoint_sha256"], model.preprocess.to_dict(), flip,
                       len(samples), device.type,
                       detection=detected_by if detection.n_samples else None,
                       inputs=alignment_key(samples, model.preprocess.template),
                       unknown_yaw=applied)
    feats, finfo = extract_features(
        model, samples, ExtractOptions(device=str(device), batch_size=extract_batch(cfg, device),
                                       flip=flip, progress=cfg.progress,
                                       unknown_yaw=cfg.unknown_yaw),
        cache_dir=cache / "features", cache_key=fkey, crop_cache=cache / "crops", ctx=ctx,
        weights=model_info.get("checkpoint"))
    if not ctx.is_main:  # rank 0 alone scores and writes
        return None
    echo(f"features: {feats.shape[0]} x {feats.shape[1]}"
         + (" (cached)" if finfo.get("cache_hit") else f" on {finfo.get('device')}"))
    if unknown := finfo.get("unknown_yaw"):
        n = unknown["n_images"]
        echo(f"unknown yaw: {n} image{'s' * (n != 1)} without a yaw ran through the stem "
             f"alone (gate 0; --unknown-yaw stem), first: {unknown['images'][0]}")
    timer.mark("extract")

    pool_cfg = PoolingConfig.of(protocol.pooling)
    t_ids, pooled = pool_templates(feats, samples, pool_cfg)
    templates = template_table(samples, protocol.yaw)
    ident = searches = None
    if eval_set.task == "verify":
        scores = score_comparisons(eval_set.comparisons, t_ids, pooled, templates)
    else:
        splits = split_scores(eval_set, t_ids, pooled)
        searches = split_probe_scores(splits)
        ident = identification(splits, plan.ranks, plan.fpir, plan.bootstrap_spec(), searches)
        scores = search_score_table(splits, templates)
    timer.mark("score")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = evaluate_scores(scores, plan)
    for w in caught:
        echo(f"warning: {w.message}")
    timer.mark("metrics")

    protocol_def = protocol.to_dict()
    # the file's location is not part of the definition: same protocol, same hash anywhere
    protocol_hash = _digest({k: v for k, v in protocol_def.items() if k != "source"})
    run_id = run_id_for(protocol.name, cfg, mode, protocol_hash, digest,
                        model_info["checkpoint_sha256"], flip,
                        detection=detected_by if detection.n_samples else None,
                        unknown_yaw=applied)
    result = RunResult(
        schema_version=SCHEMA_VERSION,
        run_id=run_id,
        created=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        bench_version=__version__,
        git_commit=_git_commit(),
        command=" ".join(["bench", *sys.argv[1:]]) if sys.argv else "bench run",
        environment={**environment(device), "processes": ctx.world_size},
        seeds={"bootstrap": cfg.seed, "training": cfg.seed, "synthetic_data": 0},
        protocol={"name": protocol.name, "version": protocol.version,
                  "sha256": protocol_hash, "definition": protocol_def},
        data={"root": str(eval_set.samples.root), "synthetic": synthetic,
              # the file read when it is one (a .bin), not the folder that holds it
              "source": eval_set.samples.provenance.get("source",
                                                        str(eval_set.samples.root)),
              "synth": synth_summary(default_root) if default_root else None,
              "sha256": digest,
              "files": eval_set.samples.provenance.get("files", {}),
              "notes": eval_set.samples.provenance.get("notes", []),
              "validation": report.to_dict()},
        model={**model_info, "gate": model.config.get("gate"),
               "feature_dim": model.feature_dim, "config": model.config},
        preprocessing={**model.preprocess.to_dict(), "flip_test": flip,
                       "alignment": finfo.get("alignment"),
                       "detection": detection.to_dict(),
                       "unknown_yaw": finfo.get("unknown_yaw")},
        pooling=pool_cfg.to_dict(),
        main_score=plan.main_score(metrics, ident),
        metrics=metrics,
        identification=ident,
        timings={},
        files={"scores": "scores.csv.gz", "roc": "roc_by_yaw.png", "cells": "yaw_cells.png"},
    )
    run_dir = _write_run(Path(cfg.out), result, scores, plan, protocol, timer)
    if cfg.update_leaderboard:
        leaderboard.update(cfg.out)
    return RunOutcome(run_dir, result, scores, searches)


def _write_run(out: Path, result: RunResult, scores: pd.DataFrame, plan: EvalPlan,
               protocol, timer: _Timer) -> Path:
    """Build the run folder beside its final place, then swap it in with one rename."""
    final = out / "runs" / result.run_id
    with staged_dir(final, marker="result.json") as tmp:
        write_scores(scores, tmp / "scores.csv.gz")
        title = f"{result.model['name']} ({result.model['mode']}) on {protocol.name}"
        plots.roc_by_yaw(scores, plan.yaw, tmp / "roc_by_yaw.png", title)
        by = result.metrics.get("by_yaw")
        if by and by["cells"]:
            # fold accuracy where there are folds, else the TAR at the plan's second FAR
            specs = plan.computed
            metric = (specs["accuracy"] if result.metrics.get("accuracy")
                      else [s for s in specs.values() if s.kind == "tar"][1])
            plots.cell_heatmap(by, metric, tmp / "yaw_cells.png", f"{title}: {metric.key} (%)")
        else:
            result.files.pop("cells")
        timer.mark("report")
        result.timings = timer.done()
        problems = validate_result(json.loads(dump_json(result.to_dict())))
        if problems:
            raise RuntimeError(f"result.json does not follow its schema: {problems}")
        dump_json(result.to_dict(), tmp / "result.json")
    return final
