"""Sharded evaluation under torchrun: which images each rank works on, and the gather to rank 0.

``torchrun --nproc-per-node N -m bench run ...`` starts N copies of the same run
(:class:`~bench.train.distributed.DistContext` says which one a process is). They share the
image work and nothing else:

- detection: each rank detects its share of the distinct images into the detection cache
  (one atomically written file per image), then every rank completes the whole table
  from that cache, so all ranks align from the very same points;
- extraction: the distinct images, in their single-process order, are cut into the
  extraction's batches and each rank aligns and embeds a contiguous block of whole
  batches; rank 0 gathers the blocks in rank order, which is the single-process matrix.

Whole batches are what make N processes' features byte-identical to one process's: a CPU
or GPU kernel's summation order depends on the batch it runs on (a ResNet-18 feature moves
by ~1e-7 between one batch of 64 and two of 32), never on which rank runs it. Rank 0 alone
then scores and writes; the other ranks return.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import pandas as pd

from ..detect import complete_landmarks
from ..detect.stage import DetectionReport
from ..errors import BenchError
from ..train.distributed import DistContext

T = TypeVar("T")


def shard_rows(n: int, batch_size: int, rank: int, world_size: int) -> slice:
    """The rows ``[start, stop)`` of ``n`` that ``rank`` of ``world_size`` embeds: a
    contiguous block of whole batches of ``batch_size``. Blocks differ by at most one batch
    (the first ranks take the extra ones); a rank gets an empty block when there are fewer
    batches than ranks. The blocks of ranks 0..N-1, in order, tile ``range(n)``."""
    if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"bad shard: rank {rank} of {world_size}, batch size {batch_size}")
    per, extra = divmod(math.ceil(n / batch_size), world_size)
    first = rank * per + min(rank, extra)
    count = per + (rank < extra)
    return slice(min(first * batch_size, n), min((first + count) * batch_size, n))


def image_share(paths, rank: int, world_size: int) -> np.ndarray:
    """(N,) bool: the rows whose image ``rank`` detects. Shares are by distinct path (in
    sorted order, dealt round-robin), so no image is detected twice."""
    unique, inverse = np.unique(np.asarray(paths, dtype=str), return_inverse=True)
    owner = np.arange(len(unique)) % world_size
    return owner[inverse.reshape(-1)] == rank


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (to travel to rank 0), else a RuntimeError naming it."""
    try:
        return pickle.loads(pickle.dumps(exc))
    except Exception:  # an exception whose constructor does not take its own args
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def gather_parts(ctx: DistContext, compute: Callable[[], T]) -> list[T] | None:
    """``compute()`` on every rank; the results in rank order on rank 0, None on the others.

    An exception on any rank is raised on every rank (rank 0 raises the first failing
    rank's, so the user reads it where the run reports), instead of leaving the others
    waiting for a part that never comes. Interrupts are not caught: torchrun ends every
    rank when one exits.
    """
    try:
        part, error = compute(), None
    except Exception as exc:
        part, error = None, exc
    if not ctx.enabled:
        if error is not None:
            raise error
        return [part]
    try:
        gathered = ctx.gather((part, None if error is None else _portable(error)))
        failure = None
        if ctx.is_main:
            failure = next((e for _, e in gathered if e is not None), None)
        failure = ctx.broadcast(failure)
    except RuntimeError as exc:  # the backend's "connection closed by peer", a timeout
        raise BenchError(f"rank {ctx.rank}: another rank stopped (its own output says why): "
                         f"{str(exc).splitlines()[0]}") from None
    if error is not None:
        raise error
    if failure is not None:
        raise failure
    return None if gathered is None else [p for p, _ in gathered]


def complete_landmarks_on_ranks(ctx: DistContext, frame: pd.DataFrame, **options
                                ) -> tuple[pd.DataFrame, DetectionReport]:
    """:func:`bench.detect.complete_landmarks` with the detection shared between ranks
    (see the module doc); the same table and report as one process's."""
    if not ctx.enabled:
        return complete_landmarks(frame, **options)
    mine = frame[image_share(frame["path"], ctx.rank, ctx.world_size)]
    progress = options.pop("progress", False) and ctx.is_main

    def detect_mine() -> int:
        if mine.empty:
            return 0
        return complete_landmarks(mine, progress=progress, **options)[1].cache_hits

    hits = gather_parts(ctx, detect_mine)  # returns when every rank's share is in the cache
    frame, report = complete_landmarks(frame, **options)
    # what was cached before this run, as one process counts it (this pass hit every image)
    report.cache_hits = ctx.broadcast(None if hits is None else sum(hits))
    return frame, report
