"""Protocol files: TOML read with the standard library, ``extends`` resolved, names registered.

The shipped files live in the repository's ``protocols/`` folder, reached from the
installed package as ``bench/protocol_files`` (a link to it, packaged as data). A file may
``extends = "other-name"`` (a shipped name, or a ``.toml`` path relative to the file):
its keys replace the parent's and its tables merge into the parent's key by key, except
``[reader]``, inherited only when ``format`` is unchanged (another reader takes other
options), and ``[counts]``, inherited only when ``format`` and ``task`` are (a search set
counts galleries and probes, not the pairs of the 1:1 set it extends).
"""

from __future__ import annotations

import importlib.resources
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..registry import Registry
from .protocol import Protocol, protocol_from_dict


def shipped_dir() -> Path:
    """The folder of the protocol files that ship with the package."""
    return Path(str(importlib.resources.files("bench") / "protocol_files"))


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"protocol file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def resolve_file(path: Path, shipped: Mapping[str, Path], _chain: tuple[str, ...] = ()
                 ) -> dict[str, Any]:
    """The file's tables with its ``extends`` chain applied (``extends`` kept as written)."""
    key = str(path.resolve())
    if key in _chain:
        raise ConfigError(f"{path}: 'extends' loops back to itself")
    data = read_toml(path)
    parent_name = data.get("extends")
    if parent_name is None:
        return data
    if not isinstance(parent_name, str):
        raise ConfigError(f"{path}: extends must be a protocol name or a .toml path")
    if parent_name in shipped:
        parent_path = shipped[parent_name]
    elif parent_name.endswith(".toml"):
        parent_path = path.parent / parent_name
    else:
        raise ConfigError(f"{path}: extends unknown protocol {parent_name!r}; shipped: "
                          f"{', '.join(sorted(shipped))}")
    parent = resolve_file(parent_path, shipped, (*_chain, key))
    return merge(parent, data)


def merge(parent: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in parent.items() if k not in ("name", "extends")}
    if child.get("format", parent.get("format")) != parent.get("format"):
        out.pop("reader", None)
        out.pop("counts", None)
    if child.get("task", parent.get("task")) != parent.get("task"):
        out.pop("counts", None)
    for key, value in child.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def load_file(path: str | Path, shipped: Mapping[str, Path] | None = None) -> Protocol:
    """A Protocol from one TOML file; its name must match the file name."""
    path = Path(path)
    shipped = shipped_files() if shipped is None else shipped
    data = resolve_file(path, shipped)
    if data.get("name") != path.stem:
        raise ConfigError(f"{path}: name = {data.get('name')!r} must match the file name "
                          f"{path.stem!r}")
    return protocol_from_dict(data, source=str(path))


def shipped_files() -> dict[str, Path]:
    folder = shipped_dir()
    return {p.stem: p for p in sorted(folder.glob("*.toml"))} if folder.is_dir() else {}


def build_registry() -> Registry[Protocol]:
    """Every shipped protocol, loaded and validated (a broken file fails loudly here)."""
    registry: Registry[Protocol] = Registry("protocol")
    shipped = shipped_files()
    for name, path in shipped.items():
        protocol = load_file(path, shipped)
        registry.add(name, protocol, format=protocol.format, task=protocol.task,
                     description=protocol.description)
    return registry


PROTOCOLS: Registry[Protocol] = build_registry()


def load_protocol(name: str | Path) -> Protocol:
    """A shipped protocol by name, or a user's protocol file by path (``*.toml``)."""
    if isinstance(name, Path) or str(name).endswith(".toml"):
        return load_file(Path(name))
    return PROTOCOLS.get(str(name))


def dump_toml(data: Mapping[str, Any]) -> str:
    """Plain-data TOML (scalars, lists of scalars, one level of tables); None is left out.

    Enough for a resolved protocol; ``tomllib.loads(dump_toml(d))`` gives ``d`` back.
    """
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)  # JSON string escapes are valid TOML basic strings
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise ConfigError(f"cannot write {type(v).__name__} as TOML")

    lines = [f"{k} = {value(v)}" for k, v in data.items()
             if v is not None and not isinstance(v, Mapping)]
    for k, v in data.items():
        if isinstance(v, Mapping):
            lines += ["", f"[{k}]"] + [f"{kk} = {value(vv)}" for kk, vv in v.items()
                                       if vv is not None]
    return "\n".join(lines) + "\n"
