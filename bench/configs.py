"""Shared handling of nested config dataclasses (``section.field`` overrides)."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from .errors import ConfigError

C = TypeVar("C")


def replace_dotted(config: C, changes: dict[str, Any], kind: str) -> C:
    """A copy of dataclass ``config`` with top-level fields or ``section.field`` paths
    changed (e.g. ``classify.epochs=3``); unknown names are a ConfigError naming the known
    ones. ``kind`` names the config in messages ("training", "synth")."""
    nested: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for key, value in changes.items():
        section, _, name = key.partition(".")
        if name:
            nested.setdefault(section, {})[name] = value
        else:
            top[key] = value
    sections = [f.name for f in dataclasses.fields(config)
                if dataclasses.is_dataclass(getattr(config, f.name))]
    for section, values in nested.items():
        current = getattr(config, section, None)
        if not dataclasses.is_dataclass(current):
            raise ConfigError(f"unknown {kind} config section {section!r}; sections: "
                              f"{', '.join(sections)}")
        known = {f.name for f in dataclasses.fields(current)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown {section} option(s) {unknown}; known: {sorted(known)}")
        for name, value in values.items():
            _check_type(current, name, value, f"{section}.{name}")
        top[section] = _replace(current, values, kind)
    unknown = sorted(set(top) - {f.name for f in dataclasses.fields(config)})
    if unknown:
        raise ConfigError(f"unknown {kind} option(s) {unknown}")
    for name, value in top.items():
        if name not in nested:
            _check_type(config, name, value, name)
    return _replace(config, top, kind)


def _kind_of(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return None


def _check_type(config: Any, name: str, value: Any, shown: str) -> None:
    """``value`` must have the type of the field's current value (an int where an int is,
    a number where a float is); None only where the field allows it."""
    current = getattr(config, name)
    if dataclasses.is_dataclass(current):
        raise ConfigError(f"{shown} is a section: set its fields, e.g. {shown}.<field>=...")
    field = {f.name: f for f in dataclasses.fields(config)}[name]
    if value is None:
        if "None" in str(field.type):
            return
        raise ConfigError(f"{shown} cannot be null")
    want = _kind_of(current)
    if want is None or current is None:
        return  # no current value to go by: the dataclass's own checks decide
    got = _kind_of(value)
    ok = got == want or (want == "a number" and got == "a whole number")
    if not ok:
        raise ConfigError(f"{shown} must be {want}, got {value!r}")


def _replace(config: C, changes: dict[str, Any], kind: str) -> C:
    try:
        return dataclasses.replace(config, **changes)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad {kind} option in {changes}: {exc}") from None
