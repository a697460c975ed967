"""What the synthetic dataset contains: sizes per part, pose distributions and difficulty.

:class:`Difficulty` holds the knobs that decide how hard recognition is (identity spread and
nuisance); :class:`SynthConfig` holds sizes and seeds. Both are frozen and validated on
construction, so a bad value fails before any file is written.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..configs import replace_dotted
from ..errors import ConfigError

#: Bumped whenever the same config and seed would give different bytes.
GENERATOR_VERSION = "5"


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


@dataclass(frozen=True)
class Difficulty:
    """Identity spread and nuisance strength; the defaults are the calibrated values.

    Identity lives in the 3D shape (``shape_spread``) and the albedo (``albedo_spread``);
    everything else is nuisance that changes from image to image of one identity.

    Calibration (2026-11-26, small preset, naive ResNet-18, CPU training preset, CFP
    accuracy): the earlier defaults (shape 1.0, albedo 0.35, lighting 0.85, colour cast 0.1,
    120 x 30 training images) left the 5-epoch CPU model at FF 73.0 % / FP 63.1 %, below the
    HOG/LDA yardstick's 82.8 % frontal-frontal: too hard to learn in that budget for the pose
    gap to mean much. 300 x 12 training images with shape 1.3, albedo 0.6 and lighting 0.5
    gave FF 81.1 / FP 72.9 at 5 epochs; 8 epochs without dropout added about 6 points; the
    milder nuisance and albedo 0.8 below moved each by 1-2 points (within the CIs), ending at
    FF 89.4 / FP 81.9 (EER 10.7 vs 17.9 %). 600 x 6 training images (79.9 / 75.2) and an
    ArcFace head (77.4 / 73.6) were worse at that budget; lower albedo spread with more
    marks hurt both (83.9 / 75.9).
    """

    shape_spread: float = 1.3       # x the anthropometric standard deviations of head shape
    albedo_spread: float = 0.8      # x the spread of skin, hair and lip colours (pose-invariant)
    marks: float = 1.0              # mean number of moles/marks per identity (asymmetric cues)
    expression: float = 0.6         # strength of smiles, open mouths, raised brows
    lighting: float = 0.3           # spread of light direction, intensity and colour
    background: float = 0.6         # clutter and contrast of the background
    blur: float = 1.0               # x the default blur and down-sampling range
    noise: float = 1.0              # x the default sensor-noise range
    colour_cast: float = 0.03       # std of per-channel gain (white balance), log scale
    greyscale: float = 0.02         # probability of a greyscale image
    occlusion: float = 0.03         # probability of an occluder (object, sunglasses) per image
    hair_change: float = 0.1        # probability of a per-image hair change (hat, fringe)
    pitch_std: float = 6.0          # degrees
    roll_std: float = 3.0           # degrees
    shift_px: float = 1.5           # std of the crop's translation jitter (detector noise)
    scale_jitter: float = 0.04      # std of the relative crop-scale jitter
    jpeg_quality: tuple[int, int] = (60, 95)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "jpeg_quality":
                lo, hi = value
                _check(1 <= lo <= hi <= 100, f"jpeg_quality must satisfy 1 <= lo <= hi <= 100, "
                                             f"got {value}")
            else:
                _check(value >= 0, f"difficulty.{f.name} must be >= 0, got {value}")
        for name in ("occlusion", "hair_change", "greyscale"):
            _check(getattr(self, name) <= 1, f"difficulty.{name} is a probability, got "
                                             f"{getattr(self, name)}")


@dataclass(frozen=True)
class TrainPart:
    """``train/``: identity folders with a frontal-heavy, web-like yaw distribution."""

    identities: int = 300
    images_per_identity: int = 12
    profile_fraction: float = 0.05  # share of each identity's images forced to |yaw| 60..90
    frontal_std: float = 20.0       # std (degrees) of the half-normal bulk of |yaw|
    wide_fraction: float = 0.08     # share of the bulk drawn uniformly from 0..90 instead

    def __post_init__(self):
        _check(self.identities >= 1, f"train.identities must be >= 1, got {self.identities}")
        _check(self.images_per_identity >= 2,
               f"train.images_per_identity must be >= 2, got {self.images_per_identity}")
        for name in ("profile_fraction", "wide_fraction"):
            _check(0 <= getattr(self, name) <= 1, f"train.{name} must be in [0, 1]")
        _check(self.frontal_std > 0, "train.frontal_std must be > 0")


@dataclass(frozen=True)
class CfpPart:
    """``cfp/``: 10 frontal + 4 profile images per identity, 10 identity-disjoint splits."""

    identities: int = 100
    frontal: int = 10
    profile: int = 4
    splits: int = 10
    pairs_per_split: int | None = None  # same = diff count; None: 350 x identities / 500
    frontal_max_yaw: float = 10.0
    profile_yaw: tuple[float, float] = (70.0, 90.0)

    def __post_init__(self):
        _check(self.splits >= 2, f"cfp.splits must be >= 2, got {self.splits}")
        _check(self.identities >= 2 * self.splits,
               f"cfp.identities must be >= 2 x splits ({2 * self.splits}), got {self.identities}")
        _check(self.frontal >= 2 and self.profile >= 1, "cfp needs >= 2 frontal and >= 1 profile")
        _check(self.pairs_per_split is None or self.pairs_per_split >= 1,
               f"cfp.pairs_per_split must be >= 1, got {self.pairs_per_split}")
        lo, hi = self.profile_yaw
        _check(0 <= self.frontal_max_yaw < lo <= hi <= 90, "cfp yaw ranges must satisfy "
               "0 <= frontal_max_yaw < profile lo <= profile hi <= 90")

    def same_pairs(self) -> int:
        if self.pairs_per_split is not None:
            return self.pairs_per_split
        return max(1, round(350 * self.identities / 500))


@dataclass(frozen=True)
class IjbaPart:
    """``ijba/``: subjects with still images and videos, 10 random train/test splits."""

    subjects: int = 48
    stills: int = 5                  # still images per subject
    videos: int = 2                  # videos per subject
    frames: int = 4                  # frames per video
    splits: int = 10
    test_fraction: float = 1 / 3     # share of subjects in each split's test set
    gallery_left_out: float = 55 / 167  # share of test subjects absent from the gallery
    impostors_per_genuine: int = 5

    def __post_init__(self):
        _check(self.subjects >= 6, f"ijba.subjects must be >= 6, got {self.subjects}")
        _check(self.stills >= 0 and self.videos >= 0 and self.frames >= 1,
               "ijba stills/videos must be >= 0 and frames >= 1")
        _check(self.stills + self.videos >= 3,
               "ijba needs >= 3 media per subject (gallery, probe and a second 1:1 template)")
        _check(self.splits >= 1, "ijba.splits must be >= 1")
        _check(0 < self.test_fraction < 1, "ijba.test_fraction must be in (0, 1)")
        _check(0 <= self.gallery_left_out < 1, "ijba.gallery_left_out must be in [0, 1)")
        _check(self.impostors_per_genuine >= 1, "ijba.impostors_per_genuine must be >= 1")


@dataclass(frozen=True)
class SynthConfig:
    """Everything that determines the generated bytes (together with the generator version)."""

    seed: int = 0
    image_size: int = 112
    train: TrainPart = field(default_factory=TrainPart)
    cfp: CfpPart = field(default_factory=CfpPart)
    ijba: IjbaPart = field(default_factory=IjbaPart)
    difficulty: Difficulty = field(default_factory=Difficulty)

    def __post_init__(self):
        _check(isinstance(self.seed, int) and self.seed >= 0, f"seed must be an integer >= 0, "
                                                               f"got {self.seed!r}")
        _check(self.image_size == 112, f"only 112x112 images are supported, got {self.image_size}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> SynthConfig:
        """A copy with top-level fields or ``part.field`` paths (e.g. ``train.identities``)."""
        return replace_dotted(self, changes, "synth")


PRESETS: dict[str, SynthConfig] = {
    # Tests and the CPU demo: ~5,800 images, about a minute on two cores.
    "small": SynthConfig(),
    # The real sets' sizes: CFP 500 identities (7,000 images), IJB-A 500 subjects with about
    # 11 stills and 4 videos of 10 frames each; a web-sized training part.
    "full": SynthConfig(
        train=TrainPart(identities=2000, images_per_identity=40),
        cfp=CfpPart(identities=500),
        ijba=IjbaPart(subjects=500, stills=11, videos=4, frames=10),
    ),
}


def preset(name: str, **changes) -> SynthConfig:
    """A named preset, optionally with changes (see :meth:`SynthConfig.replace`)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown synth preset {name!r}; available: {', '.join(PRESETS)}")
    return PRESETS[name].replace(**changes) if changes else PRESETS[name]


def config_from_dict(data: dict[str, Any]) -> SynthConfig:
    """Inverse of :meth:`SynthConfig.to_dict` (e.g. to regenerate from a ``synth.json``)."""
    parts = {"train": TrainPart, "cfp": CfpPart, "ijba": IjbaPart, "difficulty": Difficulty}
    kwargs = dict(data)
    for name, cls in parts.items():
        if name in kwargs:
            sub = dict(kwargs[name])
            for key in ("profile_yaw", "jpeg_quality"):
                if key in sub:
                    sub[key] = tuple(sub[key])
            kwargs[name] = cls(**sub)
    try:
        return SynthConfig(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"bad synth config: {exc}") from None
