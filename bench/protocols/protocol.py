"""The typed form of a protocol file: plain data, validated once when it is loaded.

Fields of a protocol file (``protocols/cfp-fp.toml`` is a commented example)::

    name, version, description      name = the file name
    extends                         a shipped protocol (or .toml path) to start from
    task                            "verify" (1:1 pairs) | "search" (1:N gallery/probes)
    format                          reader: cfp | insightface_bin | ijba | manifest | yaw_split
    data, data_env                  dataset path under the data root; env var naming the dataset
    strict_counts                   a count mismatch is an error (else only reported)
    [reader]                        keyword options of the format's reader
    [counts]                        expected on the real data: images, samples, subjects,
                                    templates, folds, pairs, genuine, impostor, gallery,
                                    probes, mated, non_mated
    [folds]   kind, count, description     official | contiguous | identity-disjoint | given
    [yaw]     bins, pair_rule, template_yaw  |yaw| edges; max | min | probe; median | mean | max
    [pooling] normalise_images, media_average, flip (true | false | "model"),
              faceness_weight (images weighed by their detector score)
    [metrics] report, main          accuracy, eer, auc, tar@far=X (verify); rankK,
                                    tpir@fpir=X (search); main is one of report
                                    (parsed into bench.metric_specs.MetricSpec at load)
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..metric_specs import ACCEPTED, MetricSpec, parse_metrics
from ..yawbins import YawBinning

TASKS = ("verify", "search")
FOLD_KINDS = ("official", "contiguous", "identity-disjoint", "given")
#: Counts a protocol may expect; :mod:`bench.data.report` finds each of them.
COUNT_NAMES = ("images", "samples", "subjects", "templates", "folds", "pairs", "genuine",
               "impostor", "gallery", "probes", "mated", "non_mated")
FLIP = (True, False, "model")


def suggest(unknown: Iterable[str], allowed: Iterable[str]) -> str:
    """``"; did you mean 'count' for 'cuont'?"`` for each unknown name close to an allowed one
    (a typo is the usual cause), or ``""``."""
    allowed = list(allowed)
    close = [f"{match[0]!r} for {name!r}" for name in unknown
             if (match := difflib.get_close_matches(name, allowed, n=1))]
    return f"; did you mean {', '.join(close)}?" if close else ""


def check_keys(given: Iterable[str], allowed: Iterable[str], what: str) -> None:
    """Refuse names not in ``allowed``, listing every allowed one and the closest."""
    allowed = sorted(allowed)
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown {what}: {', '.join(map(repr, unknown))} "
                          f"(allowed: {', '.join(allowed)}){suggest(unknown, allowed)}")


@dataclass(frozen=True)
class Folds:
    """How the protocol's folds (1:1) or splits (1:N) are defined, and how many."""

    kind: str = "official"
    count: int = 10
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in FOLD_KINDS:
            raise ConfigError(f"folds.kind must be one of {FOLD_KINDS}, got {self.kind!r}")
        if not isinstance(self.count, int) or isinstance(self.count, bool) or self.count < 1:
            raise ConfigError(f"folds.count must be a positive integer, got {self.count!r}")


@dataclass(frozen=True)
class Pooling:
    """How image features become one template feature (recorded with every result).

    ``normalise_images``: L2-normalise each image feature before averaging;
    ``media_average``: average the images (frames) of one media first, then the media;
    ``flip``: add the mirrored image's feature (``"model"``: as the model's preprocess says).
    """

    normalise_images: bool = True
    media_average: bool = True
    flip: bool | str = "model"
    faceness_weight: bool = False

    def __post_init__(self) -> None:
        for name in ("normalise_images", "media_average", "faceness_weight"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"pooling.{name} must be true or false")
        if self.flip not in FLIP:
            raise ConfigError(f"pooling.flip must be true, false or \"model\", got {self.flip!r}")


@dataclass(frozen=True)
class Protocol:
    """A benchmark protocol: which data, read how, split how, scored by which metrics.

    ``data`` is the dataset's path relative to the data root; ``data_env`` names an
    environment variable that, when set, gives the dataset's own path (beating
    ``BENCH_DATA``). ``counts`` are those of the real dataset: checked unless the data
    root declares its own (a synthetic ``synth.json``), and fatal on mismatch only when
    ``strict_counts``. ``reader`` holds keyword options for the format's reader.
    """

    name: str
    format: str
    data: str
    task: str = "verify"
    version: str = "1"
    description: str = ""
    data_env: str | None = None
    reader: Mapping[str, Any] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)
    strict_counts: bool = True
    folds: Folds = Folds()
    yaw: YawBinning = YawBinning()
    pooling: Pooling = Pooling()
    metrics: tuple[str, ...] = ("accuracy",)
    main_score: str = "accuracy"
    extends: str | None = None
    source: str = ""
    #: ``metrics`` parsed, in order; set from ``metrics`` when built (never from a file),
    #: and left out of the definition so its hash is that of the file's plain data
    metric_specs: tuple[MetricSpec, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        # one place names where the protocol came from: its file when loaded from one
        try:
            specs = self._checked_specs()
        except ConfigError as exc:
            raise ConfigError(f"{self.source or self.name}: {exc}") from None
        object.__setattr__(self, "metrics", tuple(self.metrics))
        object.__setattr__(self, "metric_specs", specs)
        object.__setattr__(self, "reader", dict(self.reader))
        object.__setattr__(self, "counts", dict(self.counts))

    def _checked_specs(self) -> tuple[MetricSpec, ...]:
        """Validate every field; the parsed metrics."""
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", self.name or ""):
            raise ConfigError(f"protocol name must be lower-case letters, digits, '.', '_', "
                              f"'-', got {self.name!r}")
        if self.task not in TASKS:
            raise ConfigError(f"task must be one of {TASKS}, got {self.task!r}")
        for name in ("format", "data", "version"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(f"{name} must be a non-empty string")
        check_keys(self.counts, COUNT_NAMES, "counts")
        if any(not isinstance(v, int) or v < 0 for v in self.counts.values()):
            raise ConfigError("counts must be non-negative integers")
        metrics = tuple(self.metrics)
        try:
            specs = parse_metrics(metrics, self.task)
        except ConfigError as exc:
            raise ConfigError(f"{exc} (this is a {self.task} protocol)") from None
        if not specs:
            raise ConfigError(f"[metrics] report lists no metric; {self.task} metrics: "
                              f"{ACCEPTED[self.task]}")
        if self.main_score not in metrics:
            raise ConfigError(f"main_score {self.main_score!r} is not one of the reported "
                              f"metrics {list(metrics)}")
        return specs

    @property
    def main_metric(self) -> MetricSpec:
        return self.metric_specs[self.metrics.index(self.main_score)]

    def to_dict(self) -> dict[str, Any]:
        """The resolved definition as plain data (what ``show`` prints, results record)."""
        out = dataclasses.asdict(self)
        out.pop("metric_specs")
        out["yaw"]["bins"] = list(self.yaw.bins)
        out["metrics"] = list(self.metrics)
        return out

    def to_file_dict(self) -> dict[str, Any]:
        """The resolved definition laid out as a protocol file (no ``extends``): saved as
        TOML it loads back to an equal Protocol."""
        out = self.to_dict()
        for key in ("source", "extends", "main_score"):
            out.pop(key)
        out["metrics"] = {"report": list(self.metrics), "main": self.main_score}
        return out


def _section(cls: type) -> Callable[[Mapping[str, Any]], Any]:
    """A builder of ``cls`` from its table: an unknown key is named (with the allowed ones)
    here, not left to a Python ``__init__() got an unexpected keyword`` message."""
    def build(table: Mapping[str, Any]) -> Any:
        check_keys(table, [f.name for f in dataclasses.fields(cls)], "keys")
        return cls(**table)
    return build


def _metrics(table: Mapping[str, Any]) -> dict[str, Any]:
    """``[metrics] report, main`` as the Protocol's ``metrics`` and ``main_score``."""
    check_keys(table, ("report", "main"), "keys")
    out: dict[str, Any] = {}
    if "report" in table:
        if not isinstance(table["report"], list):
            raise ConfigError(f"report must be a list of metrics, got {table['report']!r}")
        out["metrics"] = tuple(table["report"])
    if "main" in table:
        out["main_score"] = table["main"]
    return out


#: The tables of a protocol file and how each becomes Protocol data.
TABLES: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "folds": _section(Folds), "yaw": _section(YawBinning), "pooling": _section(Pooling),
    "metrics": _metrics, "reader": dict, "counts": dict}
#: The keys a protocol file may hold at its top level.
FILE_KEYS = ({f.name for f in dataclasses.fields(Protocol)}
             - {"source", "main_score", "metric_specs"})


def protocol_from_dict(data: Mapping[str, Any], source: str = "") -> Protocol:
    """Build a Protocol from a resolved (``extends`` applied) file's tables; any mistake is
    reported as ``SOURCE: [table] message``."""
    try:
        kwargs = _protocol_fields(data)
    except ConfigError as exc:
        # the one place a mistake found while reading the file's tables gets its path;
        # Protocol's own checks name it through ``source``
        raise ConfigError(f"{source}: {exc}") from None
    try:
        return Protocol(**kwargs, source=source)
    except TypeError as exc:  # a value of the wrong type that no check above caught
        raise ConfigError(f"{source}: {exc}") from None


def _protocol_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    check_keys(data, FILE_KEYS, "protocol keys")
    missing = [k for k in ("name", "format", "data") if k not in data]
    if missing:
        raise ConfigError(f"missing required protocol keys {missing}")
    kwargs = {key: _table(key, value) if key in TABLES else value
              for key, value in data.items()}
    kwargs.update(kwargs.pop("metrics", {}))  # [metrics] sets metrics and main_score
    return kwargs


def _table(key: str, value: Any) -> Any:
    """Table ``key`` built, its errors prefixed with ``[key]`` (the dataclasses validate
    themselves and know nothing of files or tables)."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"[{key}] must be a table (a [{key}] section), got {value!r}")
    try:
        return TABLES[key](value)
    except ConfigError as exc:
        raise ConfigError(f"[{key}] {exc}") from None
