"""Text tables (tabulate) of an :func:`bench.evaluation.evaluate_scores` result."""

from __future__ import annotations

import math
import re

from tabulate import tabulate

from ..metric_specs import far_key


def text_table(rows, headers, fmt: str = "github") -> str:
    """tabulate with every cell as written: its number parsing would turn ``97.10`` into
    97.1 and ``3.00`` into 3 beside 99.51. Columns of numbers align right, others left."""
    rows = [["" if v is None else str(v) for v in row] for row in rows]
    if any(len(row) != len(headers) for row in rows):  # tabulate would drop a header
        raise ValueError(f"rows of {sorted({len(r) for r in rows})} cells for "
                         f"{len(headers)} headers")
    # a missing value (n/a: a one-class cell, a split without non-mated probes) leaves a
    # column of numbers one
    right = [all(not c or c in ("n/a", "nan") or re.match(r"[-+]?\d", c) for c in col)
             for col in zip(*rows, strict=True)] if rows else [False] * len(headers)
    return tabulate(rows, headers=list(headers), tablefmt=fmt, disable_numparse=True,
                    colalign=tuple("right" if r else "left" for r in right))


def pct(value, ci: dict | None = None, key: str | None = None) -> str:
    """``98.31 [97.9, 98.7]``: a rate in percent with its CI when there is one."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.2f}" + ci_text(ci, key)


def ci_text(ci: dict | None, key: str | None) -> str:
    """`` [97.90, 98.70]``: metric ``key``'s interval in a CI block, in percent; "" when
    the block lacks it or it is undefined."""
    m = ((ci or {}).get("metrics") or {}).get(key or "")
    if not m or m["low"] is None or math.isnan(m["low"]):
        return ""
    return f" [{100 * m['low']:.2f}, {100 * m['high']:.2f}]"


def ci_note(ci: dict | None) -> str:
    """The footnote that names a table's ``[low, high]``; "" without a CI."""
    if not ci:
        return ""
    return (f"\n[low, high]: {100 * ci['level']:.0f}% bootstrap CI over {ci['unit']}s "
            f"({ci['n_boot']} resamples, seed {ci['seed']})")


#: Marks a TAR@FAR whose target allows less than one false accept on the block's impostors.
BELOW_FLOOR = "*"


def _unresolved(n_impostor: int, far: str) -> bool:
    """``far`` allows under one false accept on ``n_impostor`` pairs (see ``far_floor``)."""
    return n_impostor > 0 and float(far) * n_impostor < 1


def below_floor(block: dict, far: str) -> bool:
    """The block has too few impostor pairs to resolve ``far``."""
    return _unresolved(block["n_pairs"] - block["n_genuine"], far)


def below_fold_floor(folds: dict, far: str) -> bool:
    """Some fold has too few impostors to resolve ``far`` on its own ROC (results written
    before folds carried ``n_impostor`` are left unmarked)."""
    return any(_unresolved(f.get("n_impostor", 0), far) for f in folds["folds"])


def _row(block: dict, far: list[str]) -> list[str]:
    ci = block.get("ci")
    row = [block["n_pairs"], block["n_genuine"],
           pct(block.get("accuracy"), ci, "accuracy"),
           pct(block["auc"], ci, "auc"), pct(block["eer"], ci, "eer")]
    row += [pct(block["tar_at_far"][t], ci, f"tar@far={far_key(t)}")
            + (BELOW_FLOOR if below_floor(block, t) else "") for t in far]
    return row


def _floor_note(blocks: list[dict], far: list[str]) -> str:
    marked = [t for t in far if any(below_floor(b, t) for b in blocks)]
    if not marked:
        return ""
    return (f"\n{BELOW_FLOOR} TAR@FAR={', '.join(marked)}: under one false accept allowed on "
            "that row's impostor pairs: the TAR at zero false accepts (a larger set resolves "
            "it)")


def _headers(far: list[str]) -> list[str]:
    return ["pairs", "genuine", "acc %", "AUC %", "EER %"] + [f"TAR@FAR={t} %" for t in far]


def summary_table(result: dict, fmt: str = "github") -> str:
    far = list(result["tar_at_far"])
    block = dict(result)
    block["accuracy"] = result["accuracy"]["mean"] if result.get("accuracy") else None
    text = text_table([["all", *_row(block, far)]], ["", *_headers(far)], fmt)
    text += _floor_note([block], far)
    text += ci_note(result.get("ci"))
    acc = result.get("accuracy")
    if acc:
        text += (f"\n{len(acc['folds'])}-fold accuracy: {100 * acc['mean']:.2f} +- "
                 f"{100 * acc['std']:.2f} % (std over folds, {acc['std_kind']})")
    folds = result.get("tar_at_far_folds")
    if folds:  # IJB-A publishes TAR this way: each split its own ROC
        text += ("\nTAR@FAR per fold's own ROC, mean +- std over "
                 f"{len(folds['folds'])} folds: " + ", ".join(
                     f"{t}: {100 * folds['mean'][t]:.2f} +- {100 * folds['std'][t]:.2f}"
                     + (BELOW_FLOOR if below_fold_floor(folds, t) else "")
                     for t in far if t in folds["mean"]) + " %")
        marked = [t for t in far if t in folds["mean"] and below_fold_floor(folds, t)]
        if marked:
            text += (f"\n{BELOW_FLOOR} per fold, TAR@FAR={', '.join(marked)}: under one false "
                     "accept allowed on a fold's impostor pairs: the TAR at zero false accepts")
    return text


def identification_table(ident: dict, fmt: str = "github") -> str:
    """A 1:N run's CMC and open-set TPIR@FPIR (:func:`bench.runner.scoring.identification`):
    per split, then mean +- std over the splits, as search protocols publish them, and the
    mean's bootstrap CI over probe subjects when the run made one."""
    keys = list(ident["summary"])
    ci = ident.get("ci")  # absent from results written before 1:N CIs, and with n_boot 0

    def label(key: str) -> str:
        return key.replace("rank", "rank-").replace("tpir@fpir", "TPIR@FPIR") + " %"

    rows = [[f"split {r['fold']}", r["n_gallery"], r["n_probes"],
             *(pct(r[k]) for k in keys)] for r in ident["splits"]]
    rows.append(["mean +- std" + (" [low, high]" if ci else ""), "", "", *(
        f"{100 * ident['summary'][k]['mean']:.2f} +- {100 * ident['summary'][k]['std']:.2f}"
        + ci_text(ci, k) for k in keys)])
    text = text_table(rows, ["", "gallery", "probes", *map(label, keys)], fmt)
    return (text + f"\nstd over {len(ident['splits'])} splits ({ident.get('std_kind', '')}); "
            "a split without non-mated probes has no TPIR (n/a)" + ci_note(ci)
            + ("; the interval is the mean's over splits (probe subjects resampled, galleries "
               "fixed)" if ci else ""))


NO_YAW_HINT = ("no yaw for these images, so no per-yaw breakdown: estimate it with `bench yaw "
               "DATA --out yaw.csv` (reuses the cached detections) and pass --yaw-file yaw.csv")


def yaw_section(result: dict, fmt: str = "github") -> str:
    """What a command prints about yaw: the per-yaw tables, or, when no pair has a bin (real
    CFP, a .bin: no yaw of their own), how to get one; "" without yaw columns."""
    by = result.get("by_yaw")
    if not by:
        return ""
    if by.get("n_unbinned", 0) >= result["n_pairs"]:  # a table of empty bins says nothing
        return NO_YAW_HINT
    return yaw_table(result, fmt)


def yaw_table(result: dict, fmt: str = "github") -> str:
    by = result.get("by_yaw")
    if not by:
        return ""
    far = list(result["tar_at_far"])
    rows = [[f"|yaw| {name}", *_row(block, far)] for name, block in by["by_bin"].items()]
    text = text_table(rows, ["pair bin", *_headers(far)], fmt)
    cells = [[f"{c['a']} x {c['b']}", *_row(c, far)] for c in by["cells"]]
    text += "\n\n" + text_table(cells, ["yaw cell", *_headers(far)], fmt)
    # rule_doc already reads "pair bin = ..."; the cell rule needs its own label
    text += f"\n{by['rule_doc']}; yaw cell = {by['cell_rule']}"
    text += _floor_note([*by["by_bin"].values(), *by["cells"]], far)
    if by["n_unbinned"]:
        text += f"; {by['n_unbinned']} pairs without a bin"
    return text
