"""Real files that installed packages ship (sample photos, models), found without importing
those packages: insightface's ``__init__`` needs scikit-image, face_recognition_models'
needs pkg_resources. Tests that use them skip cleanly when they are absent."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    return None if spec is None else Path(list(spec.submodule_search_locations)[0])


def sample_photo(name: str = "t1.jpg") -> Path:
    """A photo from the insightface wheel (t1.jpg: six people), or a skip."""
    root = package_dir("insightface")
    if root is None or not (root / "data/images" / name).is_file():
        pytest.skip("insightface sample images not installed")
    return root / "data/images" / name


def hide_package(monkeypatch, name: str) -> None:
    """Make ``importlib.util.find_spec(name)`` say the package is not installed."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda wanted, *a: None if wanted == name else real(wanted, *a))
