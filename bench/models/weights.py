"""Loading weights from local files only: nothing is ever downloaded.

Recognised files (``torch.load`` with ``weights_only=True``):

- the harness's own checkpoints (:func:`save_checkpoint`): ``{"format": "bench-checkpoint",
  "config": model.config, "state_dict": ...}``; the config rebuilds the same model;
- torchvision ResNet state dicts (``conv1.weight`` ... ``fc.weight``): the ImageNet
  classifier ``fc`` is dropped, the 256-d ``feature`` layer stays as initialised;
- insightface arcface_torch ``backbone.pth`` (a bare iresnet state dict);
- the DREAM authors' checkpoints (``{"state_dict": ...}`` from ``torch.nn.DataParallel``:
  ``module.`` prefixes; ``feature`` is the stem's projection, ``fc1``/``fc2`` the DREAM branch,
  ``fc`` their identity classifier, which is dropped).

Any other mismatch raises a :class:`~bench.errors.DataError` naming the missing and
unexpected keys.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import DataError
from ..fileio import atomic_write, sha256_file

CHECKPOINT_FORMAT = "bench-checkpoint"
CHECKPOINT_VERSION = 1

#: Keys of classifier heads that other codebases keep beside the embedding; never part of ours.
_HEAD_PREFIXES = ("fc.",)


@dataclass
class Checkpoint:
    """A state dict read from disk with what is known about where it came from."""

    path: Path
    state_dict: dict[str, torch.Tensor]
    config: dict[str, Any] = field(default_factory=dict)  # harness checkpoints only
    kind: str = "state_dict"  # "bench" | "dream" | "state_dict"


def read_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise DataError("weights file not found", path)
    if path.suffix == ".onnx":
        raise DataError("this is an ONNX model, not a checkpoint: evaluate it with "
                        f"`bench run -m onnx --weights {path}` (create_model('onnx', "
                        "path=...))", path)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors come in many types
        raise DataError(f"cannot read as a torch checkpoint ({type(exc).__name__}: {exc})",
                        path) from exc
    if isinstance(raw, dict) and raw.get("format") == CHECKPOINT_FORMAT:
        return Checkpoint(path, dict(raw["state_dict"]), dict(raw.get("config", {})), "bench")
    if isinstance(raw, dict) and isinstance(raw.get("state_dict"), dict):
        return Checkpoint(path, dict(raw["state_dict"]), kind="dream")
    if isinstance(raw, dict) and raw and all(isinstance(v, torch.Tensor) for v in raw.values()):
        return Checkpoint(path, dict(raw))
    raise DataError("not a state dict, a bench checkpoint or a {'state_dict': ...} checkpoint",
                    path)


def _strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def _to_model_keys(state: dict[str, torch.Tensor], model: torch.nn.Module,
                   kind: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Map a foreign state dict onto ``FaceModel`` names; return it and the dropped keys."""
    if kind == "bench":
        return state, []
    state = _strip_prefix(state, "module.")
    if any(k.startswith("stem.") for k in state):  # already ours, e.g. a bare model.state_dict()
        return state, []
    mapped: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    for key, value in state.items():
        if key.startswith(("fc1.", "fc2.")):  # the authors' DREAM branch
            index = 0 if key.startswith("fc1.") else 2
            mapped[f"dream.residual.{index}.{key.split('.', 1)[1]}"] = value
        elif key.startswith(_HEAD_PREFIXES) and "stem.fc.weight" not in model.state_dict():
            dropped.append(key)
        else:
            mapped[f"stem.{key}"] = value
    return mapped, dropped


def load_state(model: torch.nn.Module, ckpt: Checkpoint) -> list[str]:
    """Load ``ckpt`` into ``model``; return the keys not loaded: foreign heads dropped and
    parts of the model kept as initialised.

    Keys the checkpoint lacks are an error, with two exceptions, both whole parts that the
    file cannot hold: the stem's ``feature`` projection when a torchvision ImageNet trunk is
    loaded (it has no such layer), and the DREAM block when a stem-only checkpoint is loaded
    into a ``-dream`` model (stitch training starts from a trained naive stem).
    """
    state, dropped = _to_model_keys(ckpt.state_dict, model, ckpt.kind)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    from_imagenet = ckpt.kind == "state_dict" and any(d.startswith("fc.") for d in dropped)
    stem_only = not any(k.startswith("dream.") for k in state)
    tolerated = [k for k in missing if (k.startswith("stem.feature.") and from_imagenet)
                 or (k.startswith("dream.") and stem_only)]
    missing = [k for k in missing if k not in tolerated]
    shape_errors = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shape_errors:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {_few(unexpected)}")
        if shape_errors:
            parts.append(f"shape mismatches ({len(shape_errors)}): {_few(shape_errors)}")
        name = getattr(model, "config", {}).get("name", type(model).__name__)
        raise DataError(f"weights do not fit model {name!r}: " + "; ".join(parts), ckpt.path)
    model.load_state_dict({**own, **state}, strict=True)
    if tolerated and hasattr(model, "config"):
        model.config["weights_not_loaded"] = sorted({k.rsplit(".", 1)[0] for k in tolerated})
    return dropped + tolerated


def _few(keys: list[str], n: int = 8) -> str:
    return ", ".join(keys[:n]) + (f", ... (+{len(keys) - n} more)" if len(keys) > n else "")


def save_checkpoint(model: torch.nn.Module, path: str | Path, **extra: Any) -> Path:
    """Write a harness checkpoint (atomically) that ``create_model(name, weights=path)`` rebuilds.

    ``extra`` (epoch, training mode, metrics...) is stored beside the config.
    """
    path = Path(path)
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
               "config": dict(model.config), "state_dict": model.state_dict(), **extra}
    # Serialised in memory, then written in one call: a Ctrl-C landing in torch.save's own
    # writes reaches its C++ writer and comes out as RuntimeError("unexpected pos"), not
    # as the KeyboardInterrupt the CLI reports as an interrupt.
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_write(path, "wb") as f:
        f.write(buffer.getbuffer())
    return path


def checkpoint_training(path: str | Path) -> dict[str, Any] | None:
    """The ``training`` record (mode, run key) a harness checkpoint carries, None for any
    other file. Memory-mapped: the tensors are not read."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a zip checkpoint (legacy format): only ours carry a record
        return None
    if not (isinstance(raw, dict) and raw.get("format") == CHECKPOINT_FORMAT):
        return None
    training = raw.get("training")
    return dict(training) if isinstance(training, dict) else None


def checkpoint_digest(path: str | Path) -> str:
    """Content hash recorded in results so a score file names the exact weights."""
    return sha256_file(path)
