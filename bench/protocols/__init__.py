"""Benchmark protocols as data: ``protocols/*.toml`` files, a registry of their names, and
the one call that turns a protocol and a data root into something to evaluate.

    protocol = load_protocol("cfp-fp")
    evalset, report = load_eval_set(protocol, data_root)  # .samples, .comparisons | .search

Listing protocols imports no reader and no pandas; :func:`load_eval_set` loads them.
"""

from __future__ import annotations

import importlib
from typing import Any

from .loading import PROTOCOLS, load_protocol, shipped_dir
from .protocol import Folds, Pooling, Protocol, YawBinning

_LAZY = {"DATA_ENV": "dataset", "DataLocation": "dataset", "load_eval_set": "dataset",
         "locate_data": "dataset"}
__all__ = ["PROTOCOLS", "Folds", "Pooling", "Protocol", "YawBinning", "load_protocol",
           "shipped_dir", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'bench.protocols' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
