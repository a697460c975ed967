"""What a reader returns: the images plus either the pairs to verify or the 1:N search sets."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..errors import DataError
from .samples import SampleSet, check_comparisons

SEARCH_COLUMNS: tuple[str, ...] = ("template", "subject", "role", "fold")
ROLES = ("gallery", "probe")


@dataclass
class EvalSet:
    """``comparisons`` (a, b, label, fold) for 1:1 protocols; ``search`` (template, subject,
    role "gallery"|"probe", fold) for 1:N ones. Exactly one of the two is set. What a
    validation found in it is a separate :class:`bench.data.report.ValidationReport`
    (:func:`bench.protocols.load_eval_set` returns both).
    """

    samples: SampleSet
    comparisons: pd.DataFrame | None = None
    search: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        if (self.comparisons is None) == (self.search is None):
            raise ValueError("an EvalSet has comparisons (1:1) or search sets (1:N), not both")
        templates = self.samples.samples["template"]
        if self.comparisons is not None:
            check_comparisons(self.comparisons, templates, where=str(self.samples.root),
                              repeats_allowed=int(self.samples.provenance.get(
                                  "repeated_pairs", {}).get("count", 0)))
        else:
            check_search(self.search, templates, where=str(self.samples.root))

    @property
    def task(self) -> str:
        return "verify" if self.comparisons is not None else "search"

    @property
    def folds(self) -> list[int]:
        table = self.comparisons if self.comparisons is not None else self.search
        return sorted(int(f) for f in pd.unique(table["fold"]))

    def gallery(self, fold: int) -> pd.DataFrame:
        """Gallery templates of one 1:N split (template, subject)."""
        return self._role("gallery", fold)

    def probes(self, fold: int) -> pd.DataFrame:
        """Probe templates of one 1:N split (template, subject); non-mated ones included."""
        return self._role("probe", fold)

    def _role(self, role: str, fold: int) -> pd.DataFrame:
        if self.search is None:
            raise ValueError("a 1:1 protocol has no gallery or probes")
        rows = self.search[(self.search["role"] == role) & (self.search["fold"] == fold)]
        return rows.loc[:, ["template", "subject"]].reset_index(drop=True)


@dataclass(frozen=True)
class Removal:
    """What :func:`without_samples` left out: ``samples``; ``templates`` left without any
    sample (dropped, in order of first appearance); ``shrunk``: templates that lost some of
    their samples and keep the others; ``comparisons``: pairs (1:1) or gallery and probe
    entries (1:N) naming a dropped template; ``unmated``: 1:N probes whose every gallery
    mate was dropped, now non-mated searches."""

    samples: int
    templates: tuple[str, ...]
    shrunk: int
    comparisons: int
    unmated: int


def without_samples(evalset: EvalSet, drop) -> tuple[EvalSet, Removal]:
    """``evalset`` without the samples where ``drop`` is True, the templates that leaves
    empty and every comparison naming one of those; ``evalset`` itself is left unchanged.

    A template keeps the samples it has left: it is one person whichever images stand for
    it, while a comparison with a template that has none cannot be scored."""
    frame = evalset.samples.samples
    drop = np.asarray(drop, dtype=bool)
    kept = frame.loc[~drop].reset_index(drop=True)
    left = set(kept["template"])
    touched = pd.unique(frame["template"].to_numpy()[drop])
    gone = tuple(str(t) for t in touched if t not in left)
    samples = replace(evalset.samples, samples=kept,
                      provenance={**evalset.samples.provenance,
                                  "notes": list(evalset.samples.provenance.get("notes", []))})
    if evalset.comparisons is not None:
        comp = evalset.comparisons
        named = (comp["a"].isin(gone) | comp["b"].isin(gone)).to_numpy()
        result = EvalSet(samples, comparisons=comp.loc[~named].reset_index(drop=True))
        unmated = 0
    else:
        search = evalset.search
        named = search["template"].isin(gone).to_numpy()
        result = EvalSet(samples, search=search.loc[~named].reset_index(drop=True))
        gallery = (search["role"] == "gallery").to_numpy()
        lost = _mated(search, search[gallery]) & ~_mated(search, search[gallery & ~named])
        unmated = int((lost & ~named).sum())
    return result, Removal(samples=int(drop.sum()), templates=gone,
                           shrunk=len(touched) - len(gone), comparisons=int(named.sum()),
                           unmated=unmated)


def _mated(search: pd.DataFrame, gallery: pd.DataFrame) -> np.ndarray:
    """Per row of ``search``: a probe whose subject ``gallery`` holds in its split."""
    keys = pd.MultiIndex.from_frame(gallery[["fold", "subject"]])
    own = pd.MultiIndex.from_frame(search[["fold", "subject"]])
    return (search["role"] == "probe").to_numpy() & own.isin(keys)


def check_search(search: pd.DataFrame, templates, where: str = "search") -> None:
    missing = [c for c in SEARCH_COLUMNS if c not in search.columns]
    if missing:
        raise DataError(f"search frame lacks columns {missing}", where)
    if not search["role"].isin(ROLES).all():
        raise DataError(f"search roles must be {ROLES}", where)
    unknown = ~search["template"].isin(pd.Index(pd.unique(np.asarray(templates, dtype=object))))
    if unknown.any():
        raise DataError(f"{int(unknown.sum())} unknown template ids in the search sets, first "
                        f"{search['template'][unknown].iloc[0]!r}", where)
