"""A tiny generic registry: plain dicts filled by decorators (timm style).

Entries may be registered lazily as ``"module:attr"`` strings so that listing names
imports nothing heavy (lm-evaluation-harness style).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> object map. Duplicate names are an error; unknown names suggest close ones."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T | str] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str | None = None, **meta: Any) -> Callable[[T], T]:
        """Decorator: ``@REG.register()`` uses the object's ``__name__``."""

        def deco(obj: T) -> T:
            self.add(name or obj.__name__, obj, **meta)
            return obj

        return deco

    def add(self, name: str, obj: T | str, **meta: Any) -> None:
        if name in self._entries:
            raise ConfigError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = obj
        self._meta[name] = dict(meta)

    def add_lazy(self, name: str, target: str, **meta: Any) -> None:
        """Register ``"package.module:attr"``, imported on first :meth:`get`."""
        if ":" not in target:
            raise ConfigError(f"lazy {self.kind} target must be 'module:attr', got {target!r}")
        self.add(name, target, **meta)

    def get(self, name: str) -> T:
        try:
            obj = self._entries[name]
        except KeyError:
            raise ConfigError(self.unknown_message(name)) from None
        if isinstance(obj, str):
            module, _, attr = obj.partition(":")
            obj = getattr(importlib.import_module(module), attr)
            self._entries[name] = obj
        return obj  # type: ignore[return-value]

    def meta(self, name: str) -> dict[str, Any]:
        if name not in self._meta:
            raise ConfigError(self.unknown_message(name))
        return self._meta[name]

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._entries), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        return (f"unknown {self.kind} {name!r}.{hint} Available: "
                f"{', '.join(sorted(self._entries)) or '(none)'}")

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
