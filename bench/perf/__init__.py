"""Benchmarks the project ships (``bench perf ...``); figures land in ``results/perf/``."""
