"""Metric names parsed once: a protocol's ``[metrics]`` as typed specs.

A name as a protocol writes it (``accuracy``, ``eer``, ``auc``, ``tar@far=.01`` for 1:1;
``rank20``, ``tpir@fpir=0.1`` for 1:N) becomes a :class:`MetricSpec` when the protocol is
loaded, so a name no stage can compute is an error then, not a silent fallback after a run.
Every consumer (evaluation, identification, the main score, leaderboard order and compare's
verdict) reads the spec instead of parsing the string again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

TASKS = ("verify", "search")
_RATE = r"(0?\.\d+|1e-\d+|1(?:\.0*)?)"
#: (task, pattern): group 1 is the kind of metric, group 2 its target (a rate or a rank).
_PATTERNS = (
    ("verify", re.compile(r"^(accuracy|eer|auc)()$")),
    ("verify", re.compile(rf"^(tar@far=){_RATE}$")),
    ("search", re.compile(r"^(rank)(\d+)$")),
    ("search", re.compile(rf"^(tpir@fpir=){_RATE}$")),
)
#: What the name patterns accept, for error messages.
ACCEPTED = {"verify": "accuracy, eer, auc, tar@far=X (0 < X <= 1)",
            "search": "rankK (K >= 1), tpir@fpir=X (0 < X <= 1)"}


@dataclass(frozen=True)
class MetricSpec:
    """One metric: ``name`` as written, ``key`` its canonical spelling (the key of
    results, bootstrap CIs and leaderboard columns), whether a higher value is better,
    ``kind`` (accuracy, eer, auc, tar, rank, tpir) and ``target`` (the FAR or FPIR of a
    rate, the rank of a CMC point)."""

    name: str
    key: str
    task: str
    kind: str
    higher_is_better: bool
    target: float | int | None = None

    def compute(self, metrics: dict, identification: dict | None = None) -> float | None:
        """The value from an :func:`bench.evaluation.evaluate_scores` result or one of its
        per-bin or per-cell blocks (1:1), or an identification summary (1:N); None when
        the run did not produce it."""
        if self.task == "search":
            summary = (identification or {}).get("summary", {})
            return summary[self.key]["mean"] if self.key in summary else None
        if self.kind == "tar":
            return (metrics.get("tar_at_far") or {}).get(far_key(self.target))
        value = metrics.get(self.key)
        return value["mean"] if isinstance(value, dict) else value  # overall accuracy

    def ci_block(self, metrics: dict, identification: dict | None = None) -> dict:
        """The bootstrap CI block that holds this metric ({} without one): a 1:1 metric's
        is the metrics' (over pairs' subjects), a 1:N metric's the identification
        result's (over probe subjects); both have one shape, keyed by ``key``."""
        source = identification if self.task == "search" else metrics
        return (source or {}).get("ci") or {}

    def ci(self, metrics: dict, identification: dict | None = None
           ) -> tuple[float | None, float | None]:
        """(low, high) of the bootstrap CI, (None, None) without one (a 1:N result
        written before 1:N CIs existed has none)."""
        block = (self.ci_block(metrics, identification).get("metrics") or {}).get(self.key)
        return (block or {}).get("low"), (block or {}).get("high")


def far_key(rate: float) -> str:
    """The one spelling of a rate in keys: ``0.01``, ``0.001``, ``1e-05``."""
    return f"{float(rate):g}"


def rank_key(rank: int) -> str:
    """The key of a CMC point in results, CIs and columns: ``rank1``."""
    return f"rank{int(rank)}"


def tpir_key(rate: float) -> str:
    """The key of a TPIR@FPIR point: ``tpir@fpir=0.01``."""
    return f"tpir@fpir={far_key(rate)}"


def parse_metric(name: str, task: str | None = None) -> MetricSpec:
    """The spec of a metric name; ``task`` None accepts either task's names (they differ)."""
    if task is not None and task not in TASKS:
        raise ConfigError(f"task must be one of {TASKS}, got {task!r}")
    for t, pattern in _PATTERNS:
        m = pattern.match(name) if isinstance(name, str) and task in (None, t) else None
        if m:
            return _spec(name, t, m.group(1), m.group(2) or None)
    tasks = TASKS if task is None else (task,)
    raise ConfigError(f"unknown metric {name!r}; " + "; ".join(
        f"{t} metrics: {ACCEPTED[t]}" for t in tasks))


def _spec(name: str, task: str, kind: str, arg: str | None) -> MetricSpec:
    if kind in ("accuracy", "eer", "auc"):
        return MetricSpec(name, kind, task, kind, kind != "eer")
    if kind == "rank":
        rank = int(arg)
        if rank < 1:
            raise ConfigError(f"metric {name!r}: a rank counts from 1")
        return MetricSpec(name, rank_key(rank), task, "rank", True, rank)
    rate = float(arg)
    if not 0 < rate <= 1:
        raise ConfigError(f"metric {name!r}: the rate must be in (0, 1]")
    key = f"{kind}{far_key(rate)}"
    return MetricSpec(name, key, task, kind.split("@")[0], True, rate)


def parse_metrics(names: Any, task: str) -> tuple[MetricSpec, ...]:
    """Specs of a protocol's reported metrics, in order; two spellings of one metric are
    an error (they would report it twice)."""
    specs = tuple(parse_metric(n, task) for n in names)
    keys = [s.key for s in specs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ConfigError(f"metrics {twice} are listed more than once")
    return specs
