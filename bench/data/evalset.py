"""What a reader returns: the images plus either the pairs to verify or the 1:N search sets."""

from __future__ import annotations

from dataclasses import dataclass

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
