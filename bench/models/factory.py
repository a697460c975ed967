"""The model registry and ``create_model`` (timm style: tiny registered factories)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..modes import dream_name, stem_name
from ..registry import Registry
from .face_model import FaceModel
from .gates import DEFAULT_GATE
from .preprocess import Preprocess

ModelFactory = Callable[..., FaceModel]

MODELS: Registry[ModelFactory] = Registry("model")


#: Where a model's weights come from (registry metadata ``weights``):
#: ``trained``: trained by the harness (or a checkpoint given with --weights);
#: ``file``: a user's model file, given with --weights (the ``onnx`` stem);
#: ``packaged``: shipped inside an installed package (SFace, dlib): runs as it is.
WEIGHT_SOURCES = ("trained", "file", "packaged")


def register_model(name: str | None = None, *, feature_dim: int | None,
                   preprocess: Preprocess, description: str = "",
                   weights: str = "trained") -> Callable[[ModelFactory], ModelFactory]:
    """Register a factory with what listing needs without building it.

    ``feature_dim`` is ``None`` when only the weights file knows it (the ``onnx`` stem);
    ``weights`` is one of :data:`WEIGHT_SOURCES`.
    """
    if weights not in WEIGHT_SOURCES:
        raise ConfigError(f"weights must be one of {WEIGHT_SOURCES}, got {weights!r}")

    def deco(fn: ModelFactory) -> ModelFactory:
        doc = description or (inspect.getdoc(fn) or "").split("\n")[0]
        return MODELS.register(name, feature_dim=feature_dim, preprocess=preprocess,
                               description=doc, weights=weights)(fn)

    return deco


def register_pair(arch: str, build: Callable[..., FaceModel], *, options: dict[str, Any],
                  feature_dim: int | None, preprocess: Preprocess, description: str) -> None:
    """Register ``arch`` and ``arch-dream`` from one builder ``build(gate, **options)``.

    The two differ only by the block (``gate`` None or a gate name), never by a hidden
    switch. ``options`` are both factories' keyword options with their defaults; the
    DREAM factory adds ``gate``. Explicit signatures keep unknown options an error.
    """
    kw = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter(k, kw, default=v) for k, v in options.items()]

    def plain(**opts: Any) -> FaceModel:
        return build(None, **{**options, **opts})

    def dream(**opts: Any) -> FaceModel:
        gate = opts.pop("gate", DEFAULT_GATE)
        return build(gate, **{**options, **opts})

    plain.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    dream.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [*params, inspect.Parameter("gate", kw, default=DEFAULT_GATE)])
    plain.__name__, dream.__name__ = arch, f"{arch}_dream"
    register_model(arch, feature_dim=feature_dim, preprocess=preprocess,
                   description=description)(plain)
    register_model(dream_name(arch), feature_dim=feature_dim, preprocess=preprocess,
                   description=f"{description} + DREAM block")(dream)


def frozen_stem(name: str) -> bool:
    """Whether the stem of ``name`` (a stem or its ``-dream`` model) is trained elsewhere and
    only run here (a packaged model, a user's ONNX file): nothing can train it, so its DREAM
    block can only be stitched onto it."""
    return MODELS.meta(stem_name(name)).get("weights", "trained") != "trained"


def model_file(model: FaceModel) -> tuple[Path, str] | None:
    """The file a pretrained model runs (an ONNX graph, dlib's weights) and the sha256 its
    factory recorded; None for a model built here (its weights are a checkpoint's)."""
    for kind in ("onnx", "weights"):
        if model.config.get(f"{kind}_path"):
            return Path(model.config[f"{kind}_path"]), model.config[f"{kind}_sha256"]
    return None


def factory_options(name: str) -> dict[str, Any]:
    """The keyword options a model's factory accepts, with their defaults."""
    sig = inspect.signature(MODELS.get(name))
    return {p.name: p.default for p in sig.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def create_model(name: str, weights: str | Path | None = None,
                 preprocess: Preprocess | dict[str, Any] | None = None, **cfg: Any) -> FaceModel:
    """Build registered model ``name`` with factory options ``cfg`` and optional local weights.

    ``preprocess`` replaces the registered preprocessing (a :class:`Preprocess`) or changes
    some of its fields (a dict), e.g. ImageNet mean/std for torchvision weights.
    A harness checkpoint restores its own options; explicit ``cfg`` wins over them.
    """
    factory = MODELS.get(name)
    options = factory_options(name)
    unknown = sorted(set(cfg) - set(options))
    if unknown:
        raise ConfigError(f"model {name!r} has no option(s) {unknown}; options: "
                          f"{', '.join(f'{k}={v!r}' for k, v in options.items()) or '(none)'}")
    state = None
    if weights is not None:
        from .weights import read_checkpoint

        state = read_checkpoint(weights)
        if state.config:
            saved = {k: v for k, v in state.config.get("options", {}).items() if k in options}
            cfg = {**saved, **cfg}
            if preprocess is None and state.config.get("preprocess"):
                preprocess = Preprocess.from_dict(state.config["preprocess"])
    model = factory(**cfg)
    model.config.update(name=name, options={**options, **cfg})
    if isinstance(preprocess, dict):
        preprocess = model.preprocess.replace(**preprocess)
    if preprocess is not None:
        model.preprocess = preprocess
    model.config["preprocess"] = model.preprocess.to_dict()
    if state is not None:
        from .weights import load_state

        _same_frozen_stem(model, state.config or {}, weights)
        load_state(model, state)
        model.config["weights"] = str(weights)
    return model


def _same_frozen_stem(model: FaceModel, saved: dict[str, Any], weights: str | Path) -> None:
    """A block stitched onto one model file maps that file's features only: loading it onto
    another file (a new SFace release, another ONNX file at the same path) would run a
    mapping learnt for different features without a word."""
    for kind in ("onnx", "weights"):  # an ONNX stem's file, a packaged one's (dlib)
        was, now = saved.get(f"{kind}_sha256"), model.config.get(f"{kind}_sha256")
        if was and now and was != now:
            raise ConfigError(f"{weights}: its DREAM block was stitched onto the model file "
                              f"{saved.get(f'{kind}_path')} (sha256 {was[:12]}), but "
                              f"{model.config.get(f'{kind}_path')} is another file (sha256 "
                              f"{now[:12]}): stitch the block again on this file")
