"""Strict or lenient handling of bad input rows: raise, or skip and remember every one."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import DataError


@dataclass
class SkippedRows:
    """Collects the rows a lenient reader skipped; a strict one raises the first error.

    Readers call :meth:`reject` for each bad row and drop the row only when it returns.
    Nothing is dropped silently: every skipped row keeps its file, line, text and reason.
    """

    lenient: bool = False
    errors: list[DataError] = field(default_factory=list)

    def reject(self, error: DataError) -> None:
        if not self.lenient:
            raise error
        self.errors.append(error)

    def __len__(self) -> int:
        return len(self.errors)

    def as_records(self) -> list[dict]:
        return [{"path": e.path, "line": e.line, "message": e.message, "text": e.text,
                 "image": e.image} for e in self.errors]
