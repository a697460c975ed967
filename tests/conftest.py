"""Shared fixtures. GPU tests skip cleanly when CUDA is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "dream"


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Tests never read or fill the user's $BENCH_CACHE (detections, crops, features)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("BENCH_CACHE", str(tmp_path_factory.mktemp("bench-cache")))
    yield
    mp.undo()


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # pragma: no cover - torch missing is a broken install anyway
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The DREAM authors' reference data, beside the checkout; tests skip when absent."""
    if not REFERENCE.is_dir():
        pytest.skip(f"reference data not found at {REFERENCE}")
    return REFERENCE


#: A synthetic dataset small enough to generate in seconds, in every real format.
TINY_SYNTH = {"train.identities": 6, "train.images_per_identity": 8, "cfp.identities": 8,
              "cfp.splits": 2, "cfp.frontal": 2, "cfp.profile": 1, "ijba.subjects": 6,
              "ijba.stills": 2, "ijba.videos": 1, "ijba.frames": 2, "ijba.splits": 2}


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory) -> Path:
    """Root of a tiny synthetic dataset (train/, cfp/, ijba/), generated once per session."""
    synth = pytest.importorskip("bench.synth")
    root = tmp_path_factory.mktemp("tiny_synth") / "data"
    synth.generate(root, synth.preset("small", **TINY_SYNTH), workers=1)
    return root


@pytest.fixture(scope="session")
def sface_available():
    """The packaged SFace (extra ``sface``, needs onnxruntime), or a skip saying what is
    missing."""
    pytest.importorskip("onnxruntime")
    from bench.errors import ConfigError
    from bench.models import create_model

    try:
        create_model("sface")
    except ConfigError as exc:
        pytest.skip(str(exc))
