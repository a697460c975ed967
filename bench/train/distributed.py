"""torch.distributed set-up from the environment ``torchrun`` provides; a no-op otherwise.

The same command runs on one process or many::

    bench train --model resnet18-dream --mode end2end --data TRAIN
    torchrun --nproc-per-node 8 -m bench train --model resnet18-dream --mode end2end --data TRAIN
    torchrun --nnodes 2 --node-rank R --master-addr HOST --nproc-per-node 8 -m bench train ...
    torchrun --nproc-per-node 8 -m bench run -p cfp-fp -m resnet18-dream   # sharded extraction

NCCL on CUDA (one GPU per local rank), gloo on CPU. Rank 0 alone writes checkpoints, logs
and caches; the others wait at barriers and read them (multi-node runs need ``--out`` and
``$BENCH_CACHE`` on a shared file system).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: ``rank`` of ``world_size``, its ``device``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # this context initialised the process group (and ends it)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (picklable objects)."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` (picklable), in rank order, on rank 0; None on the others."""
        if not self.enabled:
            return [obj]
        box = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, box, dst=0)
        return box

    def all_reduce_mean(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
            tensor /= self.world_size
        return tensor


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device: str = "cpu") -> DistContext:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``MASTER_ADDR``/``PORT``); a single-process context when it describes none."""
    kind = torch.device(device).type
    if dist.is_available() and dist.is_initialized():
        return _context(kind, owns=False)
    if env_world_size() <= 1:
        return DistContext(device=indexed_device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if kind == "cuda":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if kind == "cuda" else "gloo",
                            timeout=dt.timedelta(minutes=30))
    return _context(kind, owns=True)


def indexed_device(device: str | torch.device) -> torch.device:
    """``cuda`` as ``cuda:<current>``: tensors report an indexed device, and
    ``torch.device("cuda:0") != torch.device("cuda")``, so a bare one breaks equality tests."""
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return dev


def _context(kind: str, owns: bool) -> DistContext:
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if kind == "cuda" else torch.device("cpu")
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, device, owns)


def shutdown(ctx: DistContext) -> None:
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def distributed(device: str = "cpu") -> Iterator[DistContext]:
    """``with distributed(device) as ctx:`` init from the environment, shut down after.

    Among several ranks, SIGTERM raises KeyboardInterrupt meanwhile: torchrun stops every
    rank with it when one fails or on Ctrl-C, and each rank then removes its temporary
    files on the way out as after a Ctrl-C, instead of dying where it stands."""
    ctx = init_distributed(device)
    try:
        with _sigterm_interrupts(ctx.enabled):
            yield ctx
    finally:
        shutdown(ctx)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def _sigterm_interrupts(enabled: bool) -> Iterator[None]:
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def main_first(ctx: DistContext) -> Iterator[bool]:
    """Rank 0 runs the body first (e.g. builds a cache), the others after it finished."""
    if not ctx.is_main:
        ctx.barrier()
    try:
        yield ctx.is_main
    finally:
        if ctx.is_main:
            ctx.barrier()
