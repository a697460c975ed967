"""Every number and list the command line takes, validated in one place.

Each command declares its options with these types, so a bad value is a click usage error
(``Error: Invalid value for '--bins': ...``, exit 2) before any work, and the same option
means the same thing in every command (``--n-boot -5`` is refused by ``score`` as by
``run``). The checks on yaw edges are the library's own (:func:`bench.yawbins.check_edges`).
"""

from __future__ import annotations

import math

import click

from ..errors import ConfigError

#: Bootstrap resamples, counts: 0 allowed.
COUNT = click.IntRange(min=0)
#: Batch sizes, epochs, workers, threads: at least 1.
POSITIVE = click.IntRange(min=1)
#: Seeds: what numpy's and torch's generators accept.
SEED = click.IntRange(0, 2**32 - 1)


class PositiveFloat(click.ParamType):
    """A finite number above 0 (click's FloatRange lets NaN through)."""

    name = "number"

    def convert(self, value, param, ctx):
        try:
            v = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not (math.isfinite(v) and v > 0):
            self.fail(f"{value!r} must be a finite number > 0", param, ctx)
        return v


#: Scales and factors: finite and above 0.
POSITIVE_FLOAT = PositiveFloat()


class FloatList(click.ParamType):
    """Comma-separated finite numbers, returned as the strings written (they become JSON
    keys) or as floats, with range and order checks."""

    name = "numbers"

    def __init__(self, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, min_items: int = 1, as_text: bool = False,
                 edges: bool = False, distinct: bool = False):
        self.low, self.high, self.low_open = low, high, low_open
        self.min_items, self.as_text, self.edges = min_items, as_text, edges
        self.distinct = distinct

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        items = [t.strip() for t in str(value).split(",") if t.strip()]
        if len(items) < self.min_items:
            self.fail(f"{value!r}: give at least {self.min_items} comma-separated "
                      f"number{'s' if self.min_items > 1 else ''}", param, ctx)
        numbers = []
        for t in items:
            try:
                v = float(t)
            except ValueError:
                self.fail(f"{t!r} is not a number", param, ctx)
            if not math.isfinite(v):
                self.fail(f"{t!r} is not a finite number", param, ctx)
            if self.low is not None and (v < self.low or (self.low_open and v == self.low)):
                self.fail(f"{t} is out of range {self._range()}", param, ctx)
            if self.high is not None and v > self.high:
                self.fail(f"{t} is out of range {self._range()}", param, ctx)
            if self.distinct and v in numbers:
                same = items[numbers.index(v)]
                self.fail(f"{same} and {t} are the same number: give each once"
                          if same != t else f"{t} is given twice: give each once", param, ctx)
            numbers.append(v)
        if self.edges:
            from ..yawbins import check_edges

            try:
                check_edges(numbers)
            except ConfigError as exc:
                self.fail(str(exc), param, ctx)
        return tuple(items) if self.as_text else tuple(numbers)

    def _range(self) -> str:
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        return f"{'(' if self.low_open else '['}{lo}, {hi}]"


#: |yaw| bin edges: from 0, strictly increasing, at most 180 degrees.
YAW_EDGES = FloatList(low=0.0, high=180.0, min_items=2, edges=True)
#: FAR targets: probabilities in (0, 1], kept as written.
FAR_TARGETS = FloatList(low=0.0, high=1.0, low_open=True, as_text=True, distinct=True)


class NameList(click.ParamType):
    """Comma-separated names, each one of ``choices``; no repeats, at least one.

    ``choices`` may be a ``"module:attribute"`` string, imported only when a value is
    checked (``bench --help`` stays fast).
    """

    name = "names"

    def __init__(self, choices):
        self._choices = choices

    @property
    def choices(self) -> tuple[str, ...]:
        if isinstance(self._choices, str):
            import importlib

            module, _, attr = self._choices.partition(":")
            self._choices = getattr(importlib.import_module(module), attr)
        return tuple(self._choices)

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        items = [t.strip() for t in str(value).split(",") if t.strip()]
        if not items:
            self.fail("give at least one name", param, ctx)
        for t in items:
            if t not in self.choices:
                self.fail(f"{t!r} is not one of {', '.join(self.choices)}", param, ctx)
        if len(set(items)) != len(items):
            self.fail(f"{value!r} names one twice", param, ctx)
        return tuple(items)
