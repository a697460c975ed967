"""``bench compare``: every training mode of one stem on identical comparisons, side by side.

Each mode is a normal :func:`run_benchmark` run (cached, on the leaderboard); the report adds,
per |yaw| bin, each mode's metrics and its difference to the naive stem with a paired
subject-bootstrap CI and p-value (shared resamples, so the CI is of the difference itself),
and on a 1:N protocol the same for rank-k and TPIR@FPIR over probe subjects.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import metrics as M
from ..errors import ConfigError, DataError
from ..evaluation import EvalPlan, subject_columns
from ..fileio import atomic_write, dump_json, prepare_output_dir, safe_name, staged_dir
from ..metric_specs import MetricSpec
from ..models import MODELS, frozen_stem
from ..modes import FROZEN_STEM_MODES, MODES, PRETRAINED, is_dream, model_for_mode, stem_name
from ..protocols import load_protocol
from ..report import plots
from ..report.tables import text_table
from ..train.distributed import distributed
from ..yawbins import YawBinning
from . import leaderboard
from .features import resolve_device
from .run import RunConfig, run_benchmark

BASELINE = "naive"


@dataclass
class CompareOutcome:
    report_dir: Path
    table: pd.DataFrame
    runs: dict[str, Path]


def _correct(df: pd.DataFrame) -> M.Decisions | None:
    """Per-pair decisions at the folds' thresholds, weighted as a run weighs them (the
    mean over folds, also when they differ in size)."""
    if "fold" not in df or df["fold"].nunique() < 2:
        return None
    fa = M.fold_accuracy(df["score"], df["label"], df["fold"])
    correct = M.accuracy_at_thresholds(df["score"], df["label"], df["fold"], fa)
    return M.Decisions.of(correct, df["fold"])


#: The ``yaw_bin`` of the report rows that compare 1:N searches (rank-k, TPIR@FPIR).
SEARCH_BLOCK = "1:N"


def _difference_rows(common: dict, mode: str, diffs, baseline: bool) -> list[dict]:
    """Report rows of one mode's paired differences (and naive's own values, first, when
    ``baseline``: they are the same in every comparison)."""
    rows = [{**common, "mode": BASELINE, "metric": d.metric, "value": d.value_1,
             "naive": d.value_1, "difference": None, "ci_low": None, "ci_high": None,
             "p_value": None} for d in diffs] if baseline else []
    return rows + [{**common, "mode": mode, "metric": d.metric, "value": d.value_2,
                    "naive": d.value_1, "difference": d.difference, "ci_low": d.low,
                    "ci_high": d.high, "p_value": d.p_value} for d in diffs]


def paired_table(tables: dict[str, pd.DataFrame], yaw: YawBinning,
                 spec: M.BootstrapSpec) -> pd.DataFrame:
    """Long table: one row per (yaw bin, mode, metric) with the difference to naive."""
    base = tables[BASELINE]
    labels = base["label"].to_numpy()
    for mode, df in tables.items():
        if len(df) != len(base) or not np.array_equal(df["label"].to_numpy(), labels):
            raise ConfigError(f"mode {mode} was not scored on the same comparisons as naive")
    correct = {m: _correct(df) for m, df in tables.items()}
    pair = yaw.pairs(base["yaw_a"], base["yaw_b"]).pair
    names = ["all"] + yaw.labels
    sa, sb = subject_columns(base)
    others = [m for m in tables if m != BASELINE]
    rows = []
    for k, name in enumerate(names):
        sel = np.ones(len(base), bool) if k == 0 else pair == k - 1
        y = labels[sel]
        if sel.sum() == 0 or y.all() or not y.any():
            continue
        for mode in others:
            diffs, unit = M.paired_comparison(
                base["score"].to_numpy()[sel], tables[mode]["score"].to_numpy()[sel], y,
                sa[sel], sb[sel], spec, *_pair_correct(correct, BASELINE, mode, sel, k == 0))
            common = {"yaw_bin": name, "n_pairs": int(sel.sum()), "unit": unit}
            rows += _difference_rows(common, mode, diffs, baseline=mode == others[0])
    return pd.DataFrame(rows)


def _pair_correct(correct, a, b, sel, whole: bool):
    """Both modes' decisions on the pairs ``sel``: weighted over folds on the whole set,
    pooled in a yaw bin (as a run's per-bin accuracy)."""
    if correct[a] is None or correct[b] is None:
        return None, None
    if whole:
        return correct[a], correct[b]
    return correct[a].correct[sel], correct[b].correct[sel]


def search_table(searches: dict[str, list[M.ProbeScores]], plan: EvalPlan) -> pd.DataFrame:
    """The 1:N block (``yaw_bin`` :data:`SEARCH_BLOCK`): per mode and rank-k / TPIR@FPIR
    metric (means over galleries, as runs report them) the difference to naive, with
    paired CIs over probe subjects (:func:`bench.metrics.paired_identification`);
    ``n_searches`` counts the probe searches over all galleries."""
    base = searches[BASELINE]
    common = {"yaw_bin": SEARCH_BLOCK, "n_pairs": None,
              "n_searches": int(sum(len(s) for s in base))}
    others = [m for m in searches if m != BASELINE]
    rows = []
    for mode in others:
        try:
            diffs, unit = M.paired_identification(base, searches[mode], plan.ranks,
                                                  plan.fpir, plan.bootstrap_spec())
        except ValueError as exc:
            raise ConfigError(f"mode {mode} did not search as naive did: {exc}") from None
        rows += _difference_rows({**common, "unit": unit}, mode, diffs,
                                 baseline=mode == others[0])
    return pd.DataFrame(rows)


def verdict(row, spec: MetricSpec) -> str:
    """Plain words for one difference: only a CI that excludes 0 counts, and the metric's
    spec says which sign is better."""
    if row["mode"] == BASELINE or row["ci_low"] is None or pd.isna(row["ci_low"]):
        return ""
    if row["ci_low"] > 0 or row["ci_high"] < 0:
        better = row["difference"] > 0 if spec.higher_is_better else row["difference"] < 0
        return "better" if better else "worse"
    return "no significant difference"


def add_verdicts(table: pd.DataFrame, plan: EvalPlan) -> pd.DataFrame:
    specs = {**plan.computed, **plan.computed_search}
    table["verdict"] = [verdict(row, specs[row["metric"]]) for _, row in table.iterrows()]
    return table


def _signed(rate: float) -> str:
    """A difference in points; one that rounds to zero is +0.00 (two equal means can
    differ by 1e-17, which printed as -0.00)."""
    return f"{round(100 * rate, 2) + 0.0:+.2f}"


def _cell(r, mode: str) -> str:
    cell = f"{100 * r['value']:.2f}"
    if mode == BASELINE or r["difference"] is None or pd.isna(r["difference"]):
        return cell
    if r["ci_low"] is None or pd.isna(r["ci_low"]):
        return cell + f" ({_signed(r['difference'])}, no CI)"
    return cell + (f" ({_signed(r['difference'])} [{_signed(r['ci_low'])}, "
                   f"{_signed(r['ci_high'])}], p={r['p_value']:.3f}, {r['verdict']})")


def markdown_report(table: pd.DataFrame, title: str, runs: dict[str, Path],
                    plan: EvalPlan) -> str:
    level, n_boot = plan.level, plan.n_boot
    cis = (f"with {100 * level:.0f}% paired bootstrap CIs ({n_boot} shared resamples of "
           "the unit each block names) and two-sided bootstrap p-values" if n_boot else
           "without CIs (no bootstrap resamples: --n-boot 0)")
    lines = [f"# {title}", "",
             f"Differences are mode minus naive on identical comparisons, {cis}. Rates in "
             "percent. 'better'/'worse' only when the CI excludes 0.", ""]
    for bin_name, block in table.groupby("yaw_bin", sort=False):
        over = f"; CIs over {block['unit'].iloc[0]}s" if n_boot else ""
        if bin_name == SEARCH_BLOCK:
            computed = plan.computed_search
            lines += [f"## 1:N search: mean over galleries "
                      f"({int(block['n_searches'].iloc[0])} probe searches{over})", ""]
        else:
            computed = plan.computed
            lines += [f"## pairs: {'all' if bin_name == 'all' else '|yaw| ' + bin_name} "
                      f"({int(block['n_pairs'].iloc[0])} pairs{over})", ""]
        metrics = [m for m in computed if m in set(block["metric"])]
        rows = []
        for mode, mb in block.groupby("mode", sort=False):
            by_metric = mb.set_index("metric")
            rows.append([mode] + [_cell(by_metric.loc[m], mode) if m in by_metric.index
                                  else "" for m in metrics])
        lines.append(text_table(rows, ["mode", *metrics]))
        lines.append("")
    lines += ["## runs", ""] + [f"- {m}: `{p}`" for m, p in runs.items()] + [""]
    return "\n".join(lines)


#: What the report reads of a mode's score table besides naive's (which it reads whole):
#: the comparisons are naive's, so their subjects and yaw are naive's too.
SCORED_COLUMNS = ("score", "label", "fold")


def _report_columns(scores: pd.DataFrame, base: pd.DataFrame | None,
                    mode: str) -> pd.DataFrame:
    """The part of a mode's score table the report keeps while the other modes run: all of
    naive's (``base``, None while naive itself is given), the scored columns of the others
    once their comparisons are checked to be naive's, row for row (a 1:N table is 58 bytes
    a row, 69M rows on IJB-C, for every mode)."""
    if mode == BASELINE:
        return scores
    for side in ("a", "b"):
        if side in scores.columns and not np.array_equal(scores[side].to_numpy(),
                                                         base[side].to_numpy()):
            raise ConfigError(f"mode {mode} was not scored on the same comparisons as naive")
    return scores[[c for c in SCORED_COLUMNS if c in scores.columns]].copy()


def stem_modes(stem: str) -> tuple[str, ...]:
    """The modes ``stem`` can be compared in: all four, or naive and stitch for a stem that
    is not trained here (packaged, an ONNX file), which runs as it is as the baseline."""
    return FROZEN_STEM_MODES if frozen_stem(stem) else MODES


def compare_modes(protocol: str, stem: str, modes=None, base: RunConfig | None = None,
                  echo=print) -> CompareOutcome | None:
    """Run (or reuse) every mode (None: every mode the stem has, :func:`stem_modes`) and
    write ``<out>/compare/<protocol>__<stem>/`` (under torchrun: on rank 0, which returns
    the outcome; the other ranks return None)."""
    if is_dream(stem):
        raise ConfigError(f"--stem takes the plain stem name, e.g. {stem_name(stem)!r}")
    MODELS.get(stem)  # an unknown name fails here, with did-you-mean
    allowed = stem_modes(stem)
    modes = list(dict.fromkeys(allowed if modes is None else modes))
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ConfigError(f"unknown modes {unknown}; modes: {', '.join(MODES)}")
    frozen = frozen_stem(stem)
    untrainable = [m for m in modes if m not in allowed]
    if untrainable:
        raise ConfigError(f"{stem!r} is a pretrained model whose weights are not trained here: "
                          f"{', '.join(untrainable)} would train it. Compare it with the DREAM "
                          f"block stitched onto it: `bench compare --stem {stem} --modes stitch`")
    # naive first: every other mode's table is checked against its comparisons
    modes = [BASELINE] + [m for m in modes if m != BASELINE]
    if len(modes) < 2:
        raise ConfigError("compare needs at least one mode besides naive")
    base = base or RunConfig(protocol=protocol, model=stem)
    if base.weights is not None and not frozen:
        raise ConfigError(f"--weights gives the model file of a stem not trained here (e.g. "
                          f"--stem onnx --weights FILE.onnx); compare trains {stem!r} itself")
    for mode in modes:  # unknown names fail before any mode runs
        MODELS.get(model_for_mode(stem, mode))
    resolved = load_protocol(protocol)
    plan = EvalPlan.from_protocol(resolved, n_boot=base.n_boot, seed=base.seed)
    prepare_output_dir(base.out, inputs=(base.data, base.train_data, base.yaw_file,
                                         base.train_yaw_file, base.weights),
                       owned=(*leaderboard.OWNED, "compare"))
    # a missing file must not surface after the modes before it ran (hours of training)
    for flag, path in (("--data", base.data), ("--train-data", base.train_data),
                       ("--yaw-file", base.yaw_file), ("--train-yaw-file", base.train_yaw_file),
                       ("--weights", base.weights)):
        if path is not None and not Path(path).exists():
            raise DataError(f"{flag}: not found", path)
    report_name = safe_name(f"{resolved.name}__{stem}", "report name")
    tables, runs, results, searches = {}, {}, {}, {}
    # under torchrun every mode's run shares its extraction between the ranks, in one group
    with distributed(resolve_device(base.device).type) as ctx:
        try:
            for mode in modes:
                # a frozen stem's baseline is the stem as it is (nothing to train: no
                # training flags), its stitch run trains the block on that same file
                run_mode = PRETRAINED if frozen and mode == BASELINE else mode
                untrained = {} if run_mode != PRETRAINED else dict(
                    train_data=None, train_yaw_file=None, train_preset=None, train_changes={})
                cfg = dataclasses.replace(base, protocol=protocol,
                                          model=model_for_mode(stem, mode), mode=run_mode,
                                          update_leaderboard=False, **untrained)
                if ctx.is_main:
                    echo(f"== {mode}: {cfg.model}")
                outcome = run_benchmark(cfg, echo=echo)
                if outcome is not None:
                    runs[mode], results[mode] = outcome.run_dir, outcome.result
                    tables[mode] = _report_columns(outcome.scores, tables.get(BASELINE), mode)
                    searches[mode] = outcome.searches
                del outcome  # its whole score table must not live through the next mode's
        finally:  # the runs written so far are on the board, even when a later mode failed
            if ctx.is_main and runs:
                leaderboard.update(base.out)
    if not ctx.is_main:  # rank 0 alone writes the report
        return None
    table = paired_table(tables, plan.yaw, plan.bootstrap_spec())
    if all(s is not None for s in searches.values()):  # a 1:N protocol
        table = pd.concat([search_table(searches, plan), table], ignore_index=True)
    table = add_verdicts(table, plan)
    key = hashlib.sha256(json.dumps(sorted(r["run_id"] for r in results.values())).encode())
    out = Path(base.out) / "compare" / report_name
    # the report files appear together or not at all
    with staged_dir(out, marker="compare.json") as tmp:
        with atomic_write(tmp / "report.csv") as f:
            table.to_csv(f, index=False, float_format="%.6g")
        title = f"{stem}: DREAM modes vs naive on {resolved.name}"
        with atomic_write(tmp / "report.md") as f:
            f.write(markdown_report(table, title, runs, plan))
        plots.roc_overlay(tables, plan.yaw, tmp / "roc_overlay.png", title)
        dump_json({"protocol": resolved.name, "stem": stem, "modes": modes, "key": key.hexdigest(),
                   "runs": {m: str(p) for m, p in runs.items()},
                   "main_scores": {m: r["main_score"] for m, r in results.items()}},
                  tmp / "compare.json")
    return CompareOutcome(out, table, runs)
