"""What a validation found in an EvalSet: counts, pairs per fold and per yaw cell, skips."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from ..yawbins import YawBinning
from .evalset import EvalSet

UNKNOWN = "unknown"


@dataclass
class ValidationReport:
    """``counts`` found (names as in a protocol's ``[counts]``), ``expected`` counts with
    ``count_source`` saying where they came from, and ``mismatches`` between the two."""

    protocol: str
    dataset: str
    task: str
    counts: dict[str, int]
    per_fold: list[dict[str, Any]]
    yaw: dict[str, Any]
    expected: dict[str, int] = field(default_factory=dict)
    count_source: str = ""
    mismatches: list[str] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        c = self.counts
        lines = [self._headline(), "  " + "  ".join(f"{k} {v}" for k, v in c.items())]
        y = self.yaw
        sources = ", ".join(f"{k} {v}" for k, v in y["sources"].items())
        lines.append(f"  yaw known for {y['known_images']}/{c['samples']} samples ({sources})")
        lines += ["", "per fold:", _indent(tabulate(self.per_fold, headers="keys"))]
        if self.task == "verify":
            lines += ["", f"pairs per yaw cell (rows: bin of side a, columns: bin of side b), "
                          f"{y['template_yaw']} |yaw| per template; genuine/impostor:",
                      _indent(_cell_table(y))]
            rule = y["by_rule"]
            lines += ["", f"pairs per bin by rule '{y['pair_rule']}':",
                      _indent(tabulate([[b, g, i] for b, g, i in zip(rule["bins"],
                                        rule["genuine"], rule["impostor"], strict=True)],
                                       headers=["bin", "genuine", "impostor"]))]
        else:
            lines += ["", "templates per yaw bin (summed over splits):",
                      _indent(tabulate([[b, g, p] for b, g, p in zip(
                          y["bins"], y["gallery"], y["probe"], strict=True)],
                          headers=["bin", "gallery", "probe"]))]
        if self.expected:
            status = "all match" if not self.mismatches else "; ".join(self.mismatches)
            lines += ["", f"expected counts ({self.count_source}): {status}"]
        else:
            lines += ["", f"expected counts: not checked ({self.count_source})"]
        if self.skipped:
            lines += ["", f"skipped rows (lenient): {len(self.skipped)}"]
            for row in self.skipped:
                lines.append(f"  {_where(row)}: {row['message']}")
                if row["text"] is not None:
                    lines.append(f"      {row['text']}")
        if self.notes:
            lines += ["", "notes:"] + [f"  {n}" for n in self.notes]
        return "\n".join(lines)

    def notes_line(self, shown: int = 3) -> str | None:
        """The first notes on one line (None when none): ``bench run`` prints it below the
        headline, as notes say what the data left out or how it was read."""
        if not self.notes:
            return None
        more = len(self.notes) - shown
        return ("notes: " + "; ".join(self.notes[:shown])
                + (f"; and {more} more (result.json data.validation.notes)" if more > 0 else ""))

    def _headline(self) -> str:
        """The first line; ``bench run`` prints it alone, so it names the skipped rows, which
        would otherwise go unnoticed outside result.json."""
        line = f"protocol {self.protocol} ({self.task}): {self.dataset}"
        if not self.skipped:
            return line
        n = len(self.skipped)
        first = self.skipped[0]
        return (f"{line} ({n} bad row{'s' * (n != 1)} skipped (lenient), first "
                f"{_where(first)}: {first['message']}; each one is listed in the validation "
                f"report, in result.json under data.validation.skipped)")


def _where(row: dict[str, Any]) -> str:
    return row["path"] if row["line"] is None else f"{row['path']}:{row['line']}"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _cell_table(yaw: dict[str, Any]) -> str:
    gen, imp = np.asarray(yaw["genuine"]), np.asarray(yaw["impostor"])
    rows = [[label] + [f"{g}/{i}" for g, i in zip(gen[r], imp[r], strict=True)]
            for r, label in enumerate(yaw["cells"])]
    return tabulate(rows, headers=["a \\ b", *yaw["cells"]])


def build_report(evalset: EvalSet, *, protocol: str, dataset: str, yaw: YawBinning,
                 expected: dict[str, int] | None = None, count_source: str = "",
                 skipped: Sequence[dict[str, Any]] = (),
                 notes: Sequence[str] = ()) -> ValidationReport:
    """What ``evalset`` holds, checked against the ``expected`` counts (from
    ``count_source``); ``skipped``: rows a lenient reader left out; ``notes`` follow the
    reader's own."""
    samples = evalset.samples.samples
    subjects = samples["subject"][samples["subject"] != ""]
    counts = {"samples": len(samples), "images": int(samples["path"].nunique()),
              "subjects": int(subjects.nunique()), "templates": int(samples["template"].nunique())}
    yaw_by_template = yaw.template_yaws(samples)
    found = {"bins": yaw.labels, "pair_rule": yaw.pair_rule, "template_yaw": yaw.template_yaw,
             "known_images": int(samples["yaw"].notna().sum()),
             "sources": {str(k): int(v) for k, v in samples["yaw_source"].value_counts().items()}}
    if evalset.comparisons is not None:
        counts_f, per_fold, yaw_f = _verify(evalset.comparisons, yaw_by_template, yaw)
    else:
        counts_f, per_fold, yaw_f = _search(evalset.search, yaw_by_template, yaw)
    counts.update(counts_f)
    found.update(yaw_f)
    expected = dict(expected or {})
    mismatches = [f"{name}: expected {want}, found {counts.get(name)}"
                  for name, want in expected.items() if counts.get(name) != want]
    return ValidationReport(protocol=protocol, dataset=dataset, task=evalset.task,
                            counts=counts, per_fold=per_fold, yaw=found, expected=expected,
                            count_source=count_source, mismatches=mismatches,
                            skipped=list(skipped),
                            notes=[*evalset.samples.provenance.get("notes", []), *notes])


def _verify(comp: pd.DataFrame, yaw_by_template: pd.Series, yaw: YawBinning):
    label = comp["label"].to_numpy()
    counts = {"folds": int(comp["fold"].nunique()), "pairs": len(comp),
              "genuine": int((label == 1).sum()), "impostor": int((label == 0).sum())}
    per_fold = (comp.assign(genuine=label == 1, impostor=label == 0)
                .groupby("fold")[["genuine", "impostor"]].sum().astype(int).reset_index())
    bins = yaw.pairs(comp["a"].map(yaw_by_template).to_numpy(dtype=np.float64),
                     comp["b"].map(yaw_by_template).to_numpy(dtype=np.float64))
    bin_a, bin_b = bins.a, bins.b
    n_bins = len(yaw.bins) - 1
    has_unknown = bool((bin_a < 0).any() or (bin_b < 0).any())
    size = n_bins + int(has_unknown)
    # Unknown (-1) goes to the last row/column.
    ia, ib = np.where(bin_a < 0, n_bins, bin_a), np.where(bin_b < 0, n_bins, bin_b)
    cells = {}
    for name, value in (("genuine", 1), ("impostor", 0)):
        matrix = np.zeros((size, size), dtype=np.int64)
        np.add.at(matrix, (ia[label == value], ib[label == value]), 1)
        cells[name] = matrix.tolist()
    by_rule = bins.pair
    rule_bins = list(range(n_bins)) + ([-1] if (by_rule < 0).any() else [])
    labels = yaw.labels
    found = {"cells": labels + ([UNKNOWN] if has_unknown else []), **cells,
           "by_rule": {"bins": [labels[b] if b >= 0 else UNKNOWN for b in rule_bins],
                       "genuine": [int(((by_rule == b) & (label == 1)).sum()) for b in rule_bins],
                       "impostor": [int(((by_rule == b) & (label == 0)).sum())
                                    for b in rule_bins]}}
    return counts, per_fold.to_dict("records"), found


def _search(search: pd.DataFrame, yaw_by_template: pd.Series, yaw: YawBinning):
    gallery = search[search["role"] == "gallery"]
    probes = search[search["role"] == "probe"]
    gallery_keys = set(zip(gallery["fold"], gallery["subject"], strict=True))
    mated = np.array([k in gallery_keys for k in zip(probes["fold"], probes["subject"],
                                                     strict=True)],
                     dtype=bool)
    probes = probes.assign(mated=mated, non_mated=~mated)
    per_fold = pd.DataFrame({
        "gallery": gallery.groupby("fold").size(),
        "probes": probes.groupby("fold").size(),
        "mated": probes.groupby("fold")["mated"].sum(),
        "non_mated": probes.groupby("fold")["non_mated"].sum(),
    }).fillna(0).astype(int).rename_axis("fold").reset_index()
    counts = {"folds": int(search["fold"].nunique()), "gallery": len(gallery),
              "probes": len(probes), "mated": int(mated.sum()), "non_mated": int((~mated).sum())}
    labels = yaw.labels
    found = {"bins": labels + [UNKNOWN]}
    for role, frame in (("gallery", gallery), ("probe", probes)):
        bins = yaw.bin_of(frame["template"].map(yaw_by_template).to_numpy(dtype=np.float64))
        found[role] = [int((bins == b).sum()) for b in range(len(labels))] + [int((bins < 0).sum())]
    return counts, per_fold.to_dict("records"), found
