"""The typed run result: every key of ``result.json``, documented in one place.

A run directory ``<out>/runs/<run-id>/`` holds ``result.json`` (a :class:`RunResult`
serialised), the per-comparison score file ``scores.csv.gz`` and the plots. The schema
check (:func:`validate_result`), the README table (:func:`describe`) and the leaderboard
rows (:meth:`RunResult.leaderboard_row`) all come from the one dataclass, so they cannot
drift apart; leaderboards never hold anything that is not in the result files.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1
NONE = type(None)


def _key(types, doc: str):
    """A documented field; ``types`` are what its JSON value may be."""
    return field(metadata={"types": types, "doc": doc})


@dataclass
class RunResult:
    """One run's record, in the order ``result.json`` lists its keys."""

    schema_version: int = _key(int, "version of this schema")
    run_id: str = _key(str, "directory name under runs/: protocol, model, mode and a config hash")
    created: str = _key(str, "UTC time the run finished, ISO 8601")
    bench_version: str = _key(str, "bench.__version__")
    git_commit: str | None = _key((str, NONE), "commit of the bench checkout, null outside git")
    command: str = _key(str, "the command line that produced the run")
    environment: dict = _key(dict, "python, torch, cuda, device name, cpu, threads")
    seeds: dict = _key(dict, "seeds of training, sampling and bootstrap")
    protocol: dict = _key(dict, "name, version, sha256 of the resolved definition, the definition")
    data: dict = _key(dict, "root, synthetic (bool), sha256 of the files read, files (name -> "
                            "sha256, a yaw file included, CFP's fiducials as one entry for "
                            "their folder), reader notes, validation counts")
    model: dict = _key(dict, "name, mode, gate, feature_dim, checkpoint path and sha256, "
                             "training log")
    preprocessing: dict = _key(dict, "input size, mean/std, channel order, alignment template, "
                                     "flip test; `alignment` (methods, `by_source`: dataset "
                                     "points, detection, pre-aligned, fallback; fallbacks with "
                                     "reasons) and `detection` (detector, counts, samples "
                                     "without a face)")
    pooling: dict = _key(dict, "template pooling options applied")
    main_score: dict = _key(dict, "name and value of the protocol's main score, with its CI")
    metrics: dict = _key(dict, "overall metrics: evaluate_scores output (auc, eer, tar_at_far, "
                               "accuracy, tar_at_far_folds, ci, by_yaw)")
    identification: dict | None = _key((dict, NONE), "1:N metrics per split, mean/std over "
                                                     "splits and `ci`, each mean's bootstrap CI "
                                                     "over probe subjects (absent with n_boot 0 "
                                                     "and in older results); null for 1:1")
    timings: dict = _key(dict, "seconds per stage: data, train, extract, score, metrics, total")
    files: dict = _key(dict, "relative paths of the score file and plots")

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, keys in schema order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, result: dict) -> RunResult:
        """A result read back; keys a newer bench added are ignored, a missing or
        mistyped one is a ValueError naming it."""
        problems = [p for p in validate_result(result)
                    if not p.startswith(("undocumented", "schema_version"))]
        if problems:
            raise ValueError("; ".join(problems))
        return cls(**{k: result[k] for k in FIELDS})

    def leaderboard_row(self) -> tuple[dict[str, Any], dict[str, tuple]]:
        """(row, column order keys): the leaderboard row of this run, and for each of its
        columns the key that places it (:func:`column_order` sorts the union of all runs')."""
        m, main = self.metrics, self.main_score
        row: dict[str, Any] = {
            "protocol": self.protocol["name"], "model": self.model["name"],
            "mode": self.model.get("mode"),
            # a flip-test number is another number (insightface's .bin results are)
            "flip": bool((self.preprocessing or {}).get("flip_test")),
            "main_score": main["name"],
            "value": main.get("value"), "ci_low": main.get("low"), "ci_high": main.get("high"),
            "ci": main.get("ci"), "auc": m.get("auc"), "eer": m.get("eer")}
        order = {name: (0, i) for i, name in enumerate(row)}
        for far, v in (m.get("tar_at_far") or {}).items():
            row[f"tar@far={far}"] = v
            order[f"tar@far={far}"] = (1, -float(far))
        acc = m.get("accuracy")
        row["accuracy"] = acc["mean"] if acc else None
        order["accuracy"] = (2,)
        # what a search protocol publishes: CMC and TPIR@FPIR, mean over its splits
        for i, (key, value) in enumerate(((self.identification or {}).get("summary")
                                          or {}).items()):
            row[key] = value["mean"]
            order[key] = (2, 1, i)
        by = m.get("by_yaw") or {}
        lower = dict(zip(by.get("bins") or [], by.get("edges") or [], strict=False))
        for name, block in (by.get("by_bin") or {}).items():
            row[f"eer|yaw {name}"] = block.get("eer")
            order[f"eer|yaw {name}"] = (3, lower.get(name, 0.0), 0)
            if block.get("accuracy") is not None:
                row[f"acc|yaw {name}"] = block.get("accuracy")
                order[f"acc|yaw {name}"] = (3, lower.get(name, 0.0), 1)
        source = self.data.get("source") or self.data["root"]  # runs before sources: root
        tail = {"data": "synthetic" if self.data.get("synthetic") else source,
                "date": self.created[:10], "commit": (self.git_commit or "")[:10],
                "run_id": self.run_id}
        row.update(tail)
        order.update({name: (4, i) for i, name in enumerate(tail)})
        return row, order


def column_order(orders: list[dict[str, tuple]]) -> list[str]:
    """Leaderboard columns in a fixed order whatever order the runs came in: identity and
    main score, auc, eer, TAR@FAR from the largest FAR, accuracy, per-yaw columns by bin,
    then data, date, commit, run id."""
    merged: dict[str, tuple] = {}
    for order in orders:
        merged.update(order)
    return sorted(merged, key=lambda name: (merged[name], name))


#: key -> (JSON type or tuple of types, description), from :class:`RunResult`.
FIELDS: dict[str, tuple[Any, str]] = {f.name: (f.metadata["types"], f.metadata["doc"])
                                      for f in dataclasses.fields(RunResult)}


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
    """The schema as a markdown table (the README's, checked by a test)."""
    rows = ["| key | description |", "|---|---|"]
    rows += [f"| `{k}` | {d} |" for k, (_, d) in FIELDS.items()]
    return "\n".join(rows)
