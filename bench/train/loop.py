"""Identification training (naive and end2end): the model, dropout, a classifier head, SGD.

One step: gather the batch's uint8 crops (resident tensor or streamed), normalise them with
the model's own :class:`~bench.models.Preprocess`, mirror the images the epoch's flip mask
selects, forward (bf16 autocast and channels_last on CUDA), cross-entropy, backward, SGD
with momentum and weight decay, per-step LR schedule. The loss and accuracy accumulate on
the device and are read back every ``log_every`` steps: those read-backs are the only
host synchronisations of the loop.

After every epoch rank 0 writes one checkpoint (atomically) holding the model (a normal
harness checkpoint that ``create_model`` loads) plus ``train_state``: head, optimiser,
scheduler, sampler and RNG states and the history. Resuming from it reproduces the
uninterrupted run's weights exactly on CPU (the sampler and the flips are functions of
(seed, epoch); dropout's RNG state is restored).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..models import FaceModel
from ..models.weights import Checkpoint, load_state, save_checkpoint
from .config import ClassifyConfig, TrainConfig
from .data import EpochSampler, TrainData, stream_batches
from .distributed import DistContext
from .heads import make_head

STATE_FORMAT = "bench-train-state"


class ClassifierNet(nn.Module):
    """``model`` -> dropout -> identification head. The head only exists during training."""

    def __init__(self, model: FaceModel, head: nn.Module, dropout: float):
        super().__init__()
        self.model, self.head = model, head
        self.dropout = nn.Dropout(dropout)
        self.use_yaw = model.dream is not None

    def forward(self, x: torch.Tensor, yaw: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        features = self.model(x, yaw) if self.use_yaw else self.model(x)
        return self.head(self.dropout(features), labels)


def lr_factor(cfg: ClassifyConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """LR multiplier per optimiser step: linear warm-up, then cosine / step / constant."""
    total = cfg.epochs * steps_per_epoch
    warm = int(round(cfg.warmup_epochs * steps_per_epoch))
    bounds = [int(m * total) for m in cfg.milestones]

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if cfg.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
        if cfg.schedule == "step":
            return 0.1 ** sum(step >= b for b in bounds)
        return 1.0

    return factor


@dataclass
class EpochRecord:
    epoch: int                 # 1-based
    loss: float
    accuracy: float            # training-batch top-1 of the head (margin included)
    lr: float                  # at the end of the epoch
    images_per_s: float
    seconds: float


@dataclass
class ClassifyOutcome:
    history: list[EpochRecord] = field(default_factory=list)
    resumed_from_epoch: int = 0

    @property
    def last(self) -> EpochRecord | None:
        return self.history[-1] if self.history else None

    def metrics(self) -> dict[str, Any]:
        last = self.last
        done = self.history
        seconds = sum(r.seconds for r in done)
        return {"epochs": len(done), "final_loss": last.loss if last else None,
                "final_train_accuracy": last.accuracy if last else None,
                "seconds": seconds, "resumed_from_epoch": self.resumed_from_epoch,
                "images_per_s": (sum(r.images_per_s * r.seconds for r in done) / seconds
                                 if seconds else None)}


class Normaliser:
    """:meth:`Preprocess.normalise` on channels-first uint8 crops, its constants put on the
    device once: building them per call from Python lists would be a blocking host-to-device
    copy every step. Same arithmetic, so the result is bit-identical."""

    def __init__(self, preprocess, device: torch.device):
        self.input_size = tuple(preprocess.input_size)
        self.bgr = preprocess.channel_order == "BGR"
        self.mean = torch.tensor(preprocess.mean, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(preprocess.std, device=device).view(1, 3, 1, 1)

    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        if tuple(crops.shape[-2:]) != self.input_size:
            raise ConfigError(f"crops are {tuple(crops.shape[-2:])}, the model expects "
                              f"{self.input_size}")
        x = crops.flip(1) if self.bgr else crops
        return (x.float().div_(255.0) - self.mean) / self.std


class StepRunner:
    """The per-step work shared by the training loop and the training benchmark."""

    def __init__(self, net: nn.Module, optimizer: torch.optim.Optimizer,
                 scheduler: torch.optim.lr_scheduler.LRScheduler, device: torch.device,
                 preprocess, channels_last: bool):
        self.net, self.optimizer, self.scheduler = net, optimizer, scheduler
        self.device, self.normalise = device, Normaliser(preprocess, device)
        self.channels_last = channels_last
        self.autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                         if device.type == "cuda" else contextlib.nullcontext())

    def prepare(self, crops: torch.Tensor, flip: torch.Tensor | None) -> torch.Tensor:
        """uint8 (B, 3, h, w) on the device -> normalised float, mirrored where ``flip``."""
        x = self.normalise(crops)
        if flip is not None:
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def train_batch(self, data: TrainData, idx: torch.Tensor, crops: torch.Tensor,
                    flips: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """One step on the batch ``idx`` (CPU or device) whose uint8 ``crops`` are on the device."""
        idx_dev = idx.to(self.device, non_blocking=True)
        flip = None if flips is None else flips.index_select(0, idx_dev)
        return self.step(self.prepare(crops, flip), data.yaw.index_select(0, idx_dev),
                         data.labels.index_select(0, idx_dev))

    def step(self, x: torch.Tensor, yaw: torch.Tensor, labels: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step; returns (loss, correct count) as device tensors (no sync)."""
        with self.autocast:
            logits = self.net(x, yaw, labels)
        loss = F.cross_entropy(logits.float(), labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        correct = (logits.detach().argmax(1) == labels).sum()
        return loss.detach(), correct


def build_training(model: FaceModel, num_classes: int, cfg: TrainConfig, steps_per_epoch: int,
                   device: torch.device) -> tuple[ClassifierNet, torch.optim.Optimizer,
                                                  torch.optim.lr_scheduler.LambdaLR]:
    """Net (model + head on ``device``), SGD and the per-step schedule. Seed before calling."""
    c = cfg.classify
    head = make_head(c, model.feature_dim, num_classes)
    net = ClassifierNet(model, head, c.dropout).to(device)
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(net.parameters(), lr=c.lr, momentum=c.momentum,
                                weight_decay=c.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(c, steps_per_epoch))
    return net, optimizer, scheduler


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def train_classifier(model: FaceModel, data: TrainData, cfg: TrainConfig, state_path: Path,
                     ctx: DistContext, *, resume: bool = False, desc: str = "train",
                     on_epoch_end: Callable[[EpochRecord], None] | None = None
                     ) -> ClassifyOutcome:
    """Train ``model`` in place for ``cfg.classify.epochs`` epochs (naive or end2end).

    ``state_path``: the per-epoch checkpoint (rank 0 writes it). With ``resume`` and an
    existing ``state_path`` training continues after its last complete epoch.
    ``on_epoch_end`` runs on every rank after each epoch's checkpoint is written.
    """
    from ..progress import progress_bar

    c = cfg.classify
    device = ctx.device
    if model.dream is not None:
        data.require_yaw()
    sampler = EpochSampler(len(data), c.batch_size, cfg.seed, ctx.rank, ctx.world_size)
    torch.manual_seed(cfg.seed + 1)  # the head's init; the model was built by the caller
    net, optimizer, scheduler = build_training(model, data.num_classes, cfg,
                                               sampler.steps_per_epoch, device)
    outcome = ClassifyOutcome()
    start_epoch = 0
    raw_state = _read_state(state_path) if resume else None
    if raw_state is not None:
        start_epoch = _load_state(raw_state, state_path, net, optimizer, scheduler, sampler,
                                  outcome, device)
        outcome.resumed_from_epoch = start_epoch
    if start_epoch == 0:
        torch.manual_seed(cfg.seed + 2)  # dropout's stream; a resumed run restored its state
    trained = net
    if ctx.enabled:
        trained = nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)
    step_net = torch.compile(trained) if cfg.compile else trained
    runner = StepRunner(step_net, optimizer, scheduler, device, model.preprocess,
                        channels_last=device.type == "cuda")
    net.train()
    for epoch in range(start_epoch, c.epochs):
        flips = sampler.flips(epoch).to(device) if c.flip else None
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        seen = 0
        bar = progress_bar(total=sampler.steps_per_epoch, desc=f"{desc} {epoch + 1}/{c.epochs}",
                           enabled=cfg.progress and ctx.is_main, leave=False, unit="step")
        t0 = t_mark = time.perf_counter()
        seen_mark = 0
        for step, (idx, crops) in enumerate(stream_batches(data, sampler, epoch, 0, cfg.workers)):
            loss, hit = runner.train_batch(data, idx, crops, flips)
            loss_sum += loss
            correct += hit
            seen += idx.numel()
            bar.update(1)
            if (step + 1) % cfg.log_every == 0:
                now = time.perf_counter()
                mean_loss = loss_sum.item() / (step + 1)  # the interval's one host sync
                rate = (seen - seen_mark) * ctx.world_size / (now - t_mark)
                bar.set_postfix(loss=f"{mean_loss:.3f}", img_s=f"{rate:.0f}")
                t_mark, seen_mark = now, seen
        bar.close()
        totals = torch.stack([loss_sum.float(), correct.float(),
                              torch.tensor(float(seen), device=device)])
        # tolist() waits for the epoch's last kernels (all_reduce alone returns early on
        # NCCL and is a no-op on one process): the clock stops after it
        loss_total, hits, n_seen = ctx.all_reduce_mean(totals).tolist()
        seconds = time.perf_counter() - t0
        steps = sampler.steps_per_epoch
        record = EpochRecord(epoch + 1, loss_total / steps, hits / n_seen,
                             float(scheduler.get_last_lr()[0]),
                             n_seen * ctx.world_size / seconds, seconds)
        outcome.history.append(record)
        if ctx.is_main:
            _save_state(state_path, model, net, optimizer, scheduler, sampler, outcome,
                        epoch + 1, cfg, device)
        ctx.barrier()
        if on_epoch_end is not None:
            on_epoch_end(record)
    net.eval()
    return outcome


def _save_state(path: Path, model: FaceModel, net: ClassifierNet, optimizer, scheduler,
                sampler: EpochSampler, outcome: ClassifyOutcome, epochs_done: int,
                cfg: TrainConfig, device: torch.device) -> None:
    state = {"format": STATE_FORMAT, "epochs_done": epochs_done,
             "head": net.head.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(), "sampler": sampler.state_dict(),
             "rng": _rng_state(device), "history": [asdict(r) for r in outcome.history],
             "config": cfg.hashed_part("classify")}
    save_checkpoint(model, path, train_state=state)


def _read_state(path: Path) -> dict | None:
    """The resumable state in ``path``; None when there is none, or when it cannot be read
    (a truncated file from a full disk or a kill): then a warning, and the stage restarts."""
    if not Path(path).is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError...
        from .. import integrity

        integrity.warn_rebuild(path, f"unreadable resume state ({type(exc).__name__})",
                               "starting this stage from epoch 0")
        return None


def _load_state(raw, path: Path, net: ClassifierNet, optimizer, scheduler,
                sampler: EpochSampler, outcome: ClassifyOutcome, device: torch.device) -> int:
    state = raw.get("train_state") if isinstance(raw, dict) else None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ConfigError(f"{path} is not a training-state checkpoint: cannot resume from it")
    sampler.check_state(state["sampler"])
    load_state(net.model, Checkpoint(Path(path), raw["state_dict"], raw["config"], "bench"))
    net.head.load_state_dict(state["head"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    _set_rng_state(state["rng"], device)
    outcome.history = [EpochRecord(**r) for r in state["history"]]
    return int(state["epochs_done"])
