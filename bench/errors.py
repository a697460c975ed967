"""Exceptions that carry the place of bad input, so users can fix the file, not guess."""

from __future__ import annotations

from pathlib import Path


class BenchError(Exception):
    """Any error the harness reports to the user as a message, not a traceback."""


class DataError(BenchError):
    """Bad or missing input data, with the file and (when known) the 1-based line.

    ``str(err)`` reads ``path:line: message`` (or ``path: message``) so that editors and
    terminals can jump to it; ``err.text`` keeps the offending line when it was given.
    ``err.image`` is the image file an error about a list row is about (an undecodable
    photo named at the manifest row listing it): still a file of the user's.
    """

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None,
                 text: str | None = None, *, image: str | Path | None = None):
        self.message = message
        self.path = None if path is None else str(path)
        self.image = None if image is None else str(image)
        self.line = line
        self.text = text
        where = ""
        if self.path is not None:
            where = self.path if line is None else f"{self.path}:{line}"
            where += ": "
        shown = f"\n    {text.rstrip()}" if text is not None else ""
        super().__init__(f"{where}{message}{shown}")


class ConfigError(BenchError):
    """An unknown name, a bad option, an inconsistent configuration."""
