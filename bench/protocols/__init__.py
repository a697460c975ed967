"""Benchmark protocols as data: ``protocols/*.toml`` files, a registry of their names, and
the one call that turns a protocol and a data root into something to evaluate.

    protocol = load_protocol("cfp-fp")
    evalset = load_eval_set(protocol, data_root)   # .samples, .comparisons | .search, .report
"""

from .evaluation import DATA_ENV, DataLocation, load_eval_set, locate_data
from .loading import PROTOCOLS, load_protocol, shipped_dir
from .protocol import Folds, Pooling, Protocol, YawBinning

__all__ = [
    "DATA_ENV", "PROTOCOLS", "DataLocation", "Folds", "Pooling", "Protocol", "YawBinning",
    "load_eval_set", "load_protocol", "locate_data", "shipped_dir",
]
