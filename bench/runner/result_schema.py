"""Every key of ``result.json``, documented in one place (lm-evaluation-harness style).

A run directory ``<out>/runs/<run-id>/`` holds ``result.json`` (this schema), the
per-comparison score file ``scores.csv.gz`` and the plots. Leaderboards are aggregations of
``result.json`` files and never hold anything that is not in them.
"""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 1

#: key -> (type or tuple of types, description). Nested dicts are described by dotted keys.
FIELDS: dict[str, tuple[Any, str]] = {
    "schema_version": (int, "version of this schema"),
    "run_id": (str, "directory name under runs/: protocol, model, mode and a config hash"),
    "created": (str, "UTC time the run finished, ISO 8601"),
    "bench_version": (str, "bench.__version__"),
    "git_commit": ((str, type(None)), "commit of the bench checkout, null outside git"),
    "command": (str, "the command line that produced the run"),
    "environment": (dict, "python, torch, cuda, device name, cpu, threads"),
    "seeds": (dict, "seeds of training, sampling and bootstrap"),
    "protocol": (dict, "name, version, sha256 of the resolved definition, the definition"),
    "data": (dict, "root, synthetic (bool), sha256 of the files read, files (name -> sha256, "
                   "a yaw file included), reader notes, validation counts"),
    "model": (dict, "name, mode, gate, feature_dim, checkpoint path and sha256, training log"),
    "preprocessing": (dict, "input size, mean/std, channel order, alignment template, flip "
                            "test; `alignment` (methods, `by_source`: dataset points, "
                            "detection, pre-aligned, fallback; fallbacks with reasons) and "
                            "`detection` (detector, counts, samples without a face)"),
    "pooling": (dict, "template pooling options applied"),
    "main_score": (dict, "name and value of the protocol's main score, with its CI"),
    "metrics": (dict, "overall metrics: evaluate_scores output (auc, eer, tar_at_far, "
                      "accuracy, ci, by_yaw)"),
    "identification": ((dict, type(None)), "1:N metrics per split and mean/std, null for 1:1"),
    "timings": (dict, "seconds per stage: data, train, extract, score, metrics, total"),
    "files": (dict, "relative paths of the score file and plots"),
}


def validate_result(result: dict) -> list[str]:
    """Problems with a result dict (empty when it follows the schema)."""
    problems = []
    for key, (types, _) in FIELDS.items():
        if key not in result:
            problems.append(f"missing key {key!r}")
        elif not isinstance(result[key], types):
            problems.append(f"{key!r} is {type(result[key]).__name__}, expected {types}")
    extra = set(result) - set(FIELDS)
    if extra:
        problems.append(f"undocumented keys {sorted(extra)}")
    if result.get("schema_version") not in (None, SCHEMA_VERSION):
        problems.append(f"schema_version {result.get('schema_version')} != {SCHEMA_VERSION}")
    return problems


def describe() -> str:
    """The schema as a markdown table (used in the README)."""
    rows = ["| key | description |", "|---|---|"]
    rows += [f"| `{k}` | {d} |" for k, (_, d) in FIELDS.items()]
    return "\n".join(rows)
