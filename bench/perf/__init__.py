"""Benchmarks the project ships (``bench perf ...``); figures land in ``results/perf/``."""

#: ``bench perf all`` runs these, in this order (kept here so listing them imports no torch)
SUITES = ("metrics", "score", "search", "extract", "train", "dream", "synth")
