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
        top[section] = dataclasses.replace(current, **values)
    unknown = sorted(set(top) - {f.name for f in dataclasses.fields(config)})
    if unknown:
        raise ConfigError(f"unknown {kind} option(s) {unknown}")
    return dataclasses.replace(config, **top)
