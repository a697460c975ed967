"""Named groups of protocols run as one job: ``bench run -p bin-suite -m MODEL``.

The insightface verification sets (``lfw.bin``, ``cfp_ff.bin``, ``cfp_fp.bin``,
``agedb_30.bin``, ``calfw.bin``, ``cplfw.bin``) are what a face model is checked on daily,
usually all of them found in one folder. A suite runs every member whose data is present
(each as its own ``bench run``, with its run folder and leaderboard row) and prints one
table in the familiar layout of insightface's verification log, ``[lfw]Accuracy-Flip:
0.99650+-0.00279`` (``Accuracy`` for a run without the flip test), beside EER, AUC and
the 95 % CI, and per |yaw| bin for the sets a ``--yaw-file`` covers (``bench yaw`` over
the folder). Members whose data is absent are listed as such, never silently left out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..data.yaw_file import NotInYawFile
from ..errors import ConfigError
from ..fileio import atomic_write, safe_name

#: suite name -> member protocols, in the order insightface's log prints them
PROTOCOL_SUITES: dict[str, tuple[str, ...]] = {
    "bin-suite": ("lfw-bin", "cfp-ff-bin", "cfp-fp-bin", "agedb-30-bin", "calfw-bin",
                  "cplfw-bin"),
}


@dataclass
class SuiteOutcome:
    name: str
    rows: list[dict] = field(default_factory=list)      # one per member that ran
    missing: list[str] = field(default_factory=list)    # "protocol: why"
    notes: list[str] = field(default_factory=list)
    table_path: Path | None = None


def member_data(protocol, data, default) -> Path | None:
    """The member's dataset when it is present, else None. ``data`` is a folder holding the
    members' files (one member's file given as the dataset itself is not a suite)."""
    from ..protocols import locate_data

    if data is not None:
        found = Path(data) / protocol.data
        return found if found.exists() else None
    try:
        location = locate_data(protocol, data, default)
    except ConfigError:
        return None
    return location.dataset if location.dataset.exists() else None


def _row(protocol: str, result: dict) -> dict:
    m = result["metrics"]
    by_yaw = m.get("by_yaw") or {}
    acc = m.get("accuracy") or {}
    ci = ((m.get("ci") or {}).get("metrics") or {}).get("accuracy") or {}
    return {"set": protocol.removesuffix("-bin"), "pairs": m["n_pairs"],
            "accuracy": acc.get("mean"), "accuracy_std": acc.get("std"),
            "accuracy_low": ci.get("low"), "accuracy_high": ci.get("high"),
            "eer": m.get("eer"), "auc": m.get("auc"),
            "flip": bool((result.get("preprocessing") or {}).get("flip_test")),
            **{f"accuracy|yaw {b}": block.get("accuracy")
               for b, block in (by_yaw.get("by_bin") or {}).items()},
            "run_id": result["run_id"]}


def run_suite(name: str, cfg, echo=print) -> SuiteOutcome:
    """Run every present member of suite ``name`` with ``cfg`` (a RunConfig whose protocol
    is replaced per member); write ``<out>/suites/<suite>__<model>__<mode>.csv``."""
    from ..protocols import load_protocol
    from .data_source import synthetic_root, uses_default_data
    from .run import run_benchmark

    if name not in PROTOCOL_SUITES:
        raise ConfigError(f"unknown suite {name!r}; suites: {', '.join(PROTOCOL_SUITES)}")
    outcome = SuiteOutcome(name)
    members = {member: load_protocol(member) for member in PROTOCOL_SUITES[name]}
    mode, other_rank = None, False
    # the synthetic default stands in for the whole suite or for none of it: sets found
    # through their own variables must not share a table with synthetic ones
    default = (synthetic_root(cfg.synth_preset, 0, cfg.cache_dir, echo)
               if all(uses_default_data(cfg.data, p) for p in members.values()) else None)
    for member, protocol in members.items():
        if member_data(protocol, cfg.data, default) is None:
            outcome.missing.append(f"{member}: no {protocol.data} found")
            continue
        member_cfg = dataclasses.replace(cfg, protocol=member)
        try:
            run = run_benchmark(member_cfg, echo=echo)
        except NotInYawFile:
            # one yaw file (bench yaw over the folder) usually covers some of the sets only
            outcome.notes.append(f"{member}: not in {cfg.yaw_file}, so no per-yaw breakdown")
            run = run_benchmark(dataclasses.replace(member_cfg, yaw_file=None), echo=echo)
        if run is None:  # another rank under torchrun: rank 0 alone scores and writes
            other_rank = True
            continue
        mode = run.result["model"]["mode"]
        outcome.rows.append(_row(member, run.result))
    if other_rank:
        return outcome
    if not outcome.rows:
        raise ConfigError(f"suite {name}: none of its datasets is present "
                          f"({'; '.join(outcome.missing)}); pass --data FOLDER holding them")
    path = Path(cfg.out) / "suites" / f"{safe_name(f'{name}__{cfg.model}__{mode}')}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        pd.DataFrame(outcome.rows).to_csv(f, index=False, float_format="%.6g")
    outcome.table_path = path
    return outcome


def log_lines(outcome: SuiteOutcome) -> list[str]:
    """insightface's verification-log lines, then what is missing."""
    lines = []
    for r in outcome.rows:
        # insightface's "-Flip" names its flip test: said only of runs that had one
        name = f"[{r['set']}]Accuracy{'-Flip' if r['flip'] else ''}"
        if r["accuracy"] is None:
            lines.append(f"{name}: n/a (no folds)  EER {r['eer']:.5f}  AUC {r['auc']:.5f}")
            continue
        ci = ("" if r["accuracy_low"] is None else
              f"  95% CI [{r['accuracy_low']:.5f}, {r['accuracy_high']:.5f}]")
        lines.append(f"{name}: {r['accuracy']:.5f}+-{r['accuracy_std']:.5f}"
                     f"  EER {r['eer']:.5f}  AUC {r['auc']:.5f}{ci}")
    lines += [f"not run: {m}" for m in outcome.missing]
    return lines + [f"note: {n}" for n in outcome.notes]
