"""Alignment templates as data: where a model family expects the face in its input crop.

A template is an output size plus either reference points (in crop pixels, over the
canonical landmark names of :mod:`bench.face3d`) or an explicit mm -> pixel geometry, or
neither (the ``box`` template, which only places a detector box). Coordinates everywhere
in :mod:`bench.align` are 0-based with integer values at pixel centres (the OpenCV and
insightface convention), so a landmark at (x, y) lands on crop pixel (round(x), round(y)).

From its defining points each landmark template derives everything else by fitting the
frontal mean face of :mod:`bench.face3d` to them (least-squares similarity): the position of
every one of the 22 canonical landmarks (so 3-point IJB-A, 21-point DREAM or 68-point data
align to the same template), the mm -> pixel ``geometry`` used for pose-aware reference
points of profile faces (:mod:`bench.align.profile`), and the ``face_box`` where a detector
box lands when a sample falls back to its box.

Registered templates (``TEMPLATES``):

- ``arcface112``: insightface's ``arcface_dst`` as ``norm_crop`` uses it at 112x112
  (pupils, nose tip, mouth corners). OpenCV's SFace ``alignCrop`` uses the same points.
  With five visible points the fit is exactly insightface's ``estimate_norm``.
- ``celeba178x218``: the mean landmark positions of CelebA's aligned images
  (``img_align_celeba``, 178 wide x 218 high, face centred); the DREAM code aligns "as
  CelebA". Positions from the commonly quoted means of ``list_landmarks_align_celeba.txt``
  (eyes (69, 111), (108, 111), nose (88, 136), mouth corners (72, 152), (105, 152));
  CelebA does not say whether its coordinates are 0- or 1-based, so expect +-1 px.
- ``celeba``: the 112x112 version our DREAM stems use: the central 178x178 square of the
  CelebA frame (rows 20..197) resized to 112x112. The face is smaller and looser than in
  ``arcface112`` (interpupillary distance 24.5 px instead of 35.2 px), as in the DREAM crops.
- ``synth112``: the synthetic generator's crop, built from :mod:`bench.synth.render`'s
  constants (:mod:`bench.align.synth_template`; 0.559 px per mm, the eye midpoint at pixel
  (55.5, 51.6) as in ``arcface112``, whose five points it matches within 2 px). It is
  pose-aware (``posed=True``), so a synthetic crop aligns to it by a near-identity warp at
  any yaw and pitch (a rotation by the roll, which alignment removes).
- ``box``: 112x112 square crop around the sample's box: the box's longer side fills
  1 / (1 + 2 * 0.2) of the crop (20 % margin on each side).
- ``dlib150``: dlib's ``get_face_chip(img, shape, 150, 0.25)``, fitted as dlib fits it
  (``fit="dlib_chip"``, see :meth:`Template.fit`).

A least-squares similarity is not symmetric: fitting image -> template (insightface's
``estimate_norm``, OpenCV's ``alignCrop``) and inverting a template -> image fit (dlib's
``get_face_chip_details``) differ in scale by the fit's r^2 whenever the points do not sit
exactly on the template, by 1-9 % on real faces. Each template is fitted in the direction
of the pipeline its models were trained with.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import ConfigError
from ..face3d import LANDMARK_NAMES, mean_landmarks_3d, rotation_matrix
from ..registry import Registry

#: Where a face detector's box sits on the mean face, in head-frame mm: a square centred
#: 40 mm below the pupils with a 140 mm side, from just above the brows to the chin.
#: Boxes of real detectors vary by +-15 %; this only matters for box fallbacks.
FACE_BOX_MM = (0.0, 40.0, 140.0)
#: A turned head pivots about a point this many mm behind the eye midpoint times
#: sin^2(yaw): the eye midpoint for a frontal face, moving back into the head for a profile
#: so that the visible half of the head stays centred, as in crops of real profiles. The
#: synthetic generator renders with the same convention (its PROFILE_ANCHOR_MM, 30 mm when
#: this was written; ``synth112`` reads the generator's own value).
PROFILE_PIVOT_MM = 30.0

_INDEX = {name: i for i, name in enumerate(LANDMARK_NAMES)}
#: How a template's similarity is fitted: insightface/OpenCV's direction, or dlib's.
FITS = ("norm_crop", "dlib_chip")


@dataclass(frozen=True)
class Template:
    """``size``: (height, width) of the crop. Give ``points`` (landmark name -> (x, y) px),
    or ``geometry`` (scale px/mm, origin x px, origin y px), or only ``face_box``."""

    name: str
    size: tuple[int, int]
    points: dict[str, tuple[float, float]] | None = None
    geometry: tuple[float, float, float] | None = None
    face_box: tuple[float, float, float] | None = None  # cx, cy, side in crop px
    posed: bool = False
    pivot_mm: float = PROFILE_PIVOT_MM
    description: str = ""
    fit_kind: str = "norm_crop"  # one of FITS: how fit() places points on the template
    #: where the points of a crop already aligned to ``arcface112`` (an insightface .bin)
    #: go, when not at ``points``: insightface resizes such a crop to a model's input size
    prealigned: dict[str, tuple[float, float]] | None = None

    def __post_init__(self):
        if self.points is not None:
            unknown = set(self.points) - set(_INDEX)
            if unknown:
                raise ConfigError(f"template {self.name}: unknown landmarks {sorted(unknown)}")
            if len(self.points) < 2:
                raise ConfigError(f"template {self.name}: needs at least 2 points")
        if self.points is None and self.geometry is None and self.face_box is None:
            raise ConfigError(f"template {self.name}: give points, geometry or face_box")
        if len(self.size) != 2 or min(self.size) < 1:
            raise ConfigError(f"template {self.name}: size must be (height, width) > 0")
        if self.fit_kind not in FITS:
            raise ConfigError(f"template {self.name}: fit_kind must be one of {FITS}")
        if self.fit_kind == "dlib_chip" and (self.size[0] != self.size[1] or self.size[0] < 2):
            raise ConfigError(f"template {self.name}: a dlib chip is square, at least 2 px")

    def fit(self, points: np.ndarray, refs: np.ndarray | None = None,
            weights: np.ndarray | None = None) -> np.ndarray:
        """(N, 2, 3) image -> crop transforms placing ``points`` (N, 22, 2) on ``refs``
        ((22, 2) or (N, 22, 2); default :attr:`reference`), ``weights`` (N, 22) as in
        :func:`~bench.align.transform.fit_similarity`; NaN rows where no fit exists.

        ``norm_crop``: the least-squares similarity from the points to the references.
        ``dlib_chip``: dlib's ``chip_details``: the similarity from the references (in
        dlib's continuous chip units, pixel centres at +0.5) to the points, whose chip of
        side W spans ``W * scale`` image pixels edge to edge with pixel centres
        ``(W * scale - 1) / (W - 1)`` apart, inverted.
        """
        from .transform import apply, fit_similarity, invert

        points = np.asarray(points, dtype=np.float64)
        refs = self.reference if refs is None else np.asarray(refs, dtype=np.float64)
        if self.fit_kind == "norm_crop":
            return fit_similarity(points, refs, weights)
        side = self.size[0]
        to_image = fit_similarity(np.broadcast_to(refs + 0.5, points.shape), points, weights)
        scale = np.hypot(to_image[:, 0, 0], to_image[:, 1, 0])
        with np.errstate(invalid="ignore", divide="ignore"):
            lin = to_image[..., :2] * ((side * scale - 1) / (side - 1) / scale)[:, None, None]
        centre = apply(to_image, np.full((len(points), 1, 2), side / 2))[:, 0]
        offset = centre - lin @ np.full(2, (side - 1) / 2)
        out = np.full_like(to_image, np.nan)
        ok = np.isfinite(lin).all((1, 2)) & np.isfinite(offset).all(1) & (scale > 0)
        out[ok] = invert(np.concatenate([lin, offset[..., None]], -1)[ok])
        return out

    @property
    def uses_landmarks(self) -> bool:
        return self.points is not None or self.geometry is not None

    @cached_property
    def mm_to_px(self) -> np.ndarray:
        """(2, 3) similarity from head-frame (x, y) mm of a frontal face to crop pixels."""
        if self.geometry is not None:
            s, ox, oy = self.geometry
            return np.array([[s, 0.0, ox], [0.0, s, oy]])
        if self.points is None:
            raise ConfigError(f"template {self.name} has no landmark geometry")
        from .transform import fit_similarity  # local: transform imports nothing from here

        names = list(self.points)
        src = mean_landmarks_3d()[[_INDEX[n] for n in names], :2]
        dst = np.array([self.points[n] for n in names], dtype=np.float64)
        return fit_similarity(src[None], dst[None])[0]

    @cached_property
    def defining(self) -> np.ndarray:
        """(22,) bool: the landmarks the template gives explicitly."""
        mask = np.zeros(len(LANDMARK_NAMES), bool)
        for name in self.points or ():
            mask[_INDEX[name]] = True
        return mask

    @cached_property
    def prealigned_reference(self) -> np.ndarray:
        """:attr:`reference` with the :attr:`prealigned` points in place (the same array
        when there are none)."""
        if not self.prealigned:
            return self.reference
        ref = self.reference.copy()
        for name, xy in self.prealigned.items():
            ref[_INDEX[name]] = xy
        ref.setflags(write=False)
        return ref

    @cached_property
    def reference(self) -> np.ndarray:
        """(22, 2) crop positions of all canonical landmarks of a frontal face: the
        defining points exactly, the others from the fitted mean face."""
        ref = project(mean_landmarks_3d(), self.mm_to_px)
        for name, xy in (self.points or {}).items():
            ref[_INDEX[name]] = xy
        ref.setflags(write=False)
        return ref

    def posed_reference(self, yaw, pitch=0.0) -> np.ndarray:
        """(..., 22, 2) crop positions of the mean face turned by yaw/pitch (degrees).

        The head turns about the pivot of :data:`PROFILE_PIVOT_MM` (``pivot_mm``), which stays where the
        frontal face's eye midpoint is, and is projected orthographically with this
        template's frontal geometry, so yaw = pitch = 0 gives the fitted frontal face
        (within about 1 px of the defining points).
        """
        rot = rotation_matrix(yaw, pitch, 0.0)
        depth = self.pivot_mm * np.sin(np.deg2rad(np.asarray(yaw, dtype=np.float64))) ** 2
        pivot = np.stack(np.broadcast_arrays(0.0, 0.0, depth), -1)[..., None, :]
        turned = np.einsum("...ij,...kj->...ki", rot, mean_landmarks_3d() - pivot)
        return project(turned, self.mm_to_px)

    @cached_property
    def box_px(self) -> np.ndarray:
        """(3,) cx, cy, side in crop pixels where a sample's face box lands."""
        if self.face_box is not None:
            return np.asarray(self.face_box, dtype=np.float64)
        cx, cy, side = FACE_BOX_MM
        centre = self.mm_to_px @ np.array([cx, cy, 1.0])
        scale = np.hypot(*self.mm_to_px[:, 0])
        return np.array([centre[0], centre[1], side * scale])


def project(points_mm: np.ndarray, mm_to_px: np.ndarray) -> np.ndarray:
    """Orthographic projection: (..., K, >=2) head-frame mm -> (..., K, 2) crop pixels."""
    xy = np.asarray(points_mm, dtype=np.float64)[..., :2]
    return xy @ mm_to_px[:, :2].T + mm_to_px[:, 2]


def _resized(points: dict[str, tuple[float, float]], crop: tuple[float, float, float, float],
             size: tuple[int, int]) -> dict[str, tuple[float, float]]:
    """Points of a template after cropping (x0, y0, w, h) and resizing to ``size`` (h, w)."""
    x0, y0, w, h = crop
    sx, sy = size[1] / w, size[0] / h
    # pixel-centre convention: a resize maps x -> (x + 0.5) * s - 0.5
    return {n: ((x - x0 + 0.5) * sx - 0.5, (y - y0 + 0.5) * sy - 0.5)
            for n, (x, y) in points.items()}


_ARCFACE = {
    "pupil_r": (38.2946, 51.6963),
    "pupil_l": (73.5318, 51.5014),
    "nose_tip": (56.0252, 71.7366),
    "mouth_corner_r": (41.5493, 92.3655),
    "mouth_corner_l": (70.7299, 92.2041),
}
_CELEBA = {
    "pupil_r": (69.0, 111.0),
    "pupil_l": (108.0, 111.0),
    "nose_tip": (88.0, 136.0),
    "mouth_corner_r": (72.0, 152.0),
    "mouth_corner_l": (105.0, 152.0),
}
BOX_MARGIN = 0.2

TEMPLATES: Registry[Template] = Registry("alignment template")


def arcface_template(side: int) -> str:
    """The name of insightface's ``norm_crop`` template for a ``side`` x ``side`` input,
    registered on first use: ``estimate_norm``'s rule scales ``arcface_dst`` by side / 112
    for a multiple of 112, and for a multiple of 128 by side / 128 with the 112 frame
    shifted right by 8 * side / 128 px (insightface models with a 128 input)."""
    side = int(side)
    name = f"arcface{side}"
    if name in TEMPLATES:
        return name
    if side > 0 and side % 112 == 0:
        ratio, dx = side / 112, 0.0
    elif side > 0 and side % 128 == 0:
        ratio, dx = side / 128, 8.0 * side / 128
    else:
        raise ConfigError(f"insightface's norm_crop has no template for a {side} px input "
                          "(it needs a multiple of 112 or 128)")
    # a .bin crop (aligned at 112) is resized to the input, not re-cut: insightface feeds
    # it so, and re-cutting leaves the 128 frame's margins black
    resized = {k: ((x + 0.5) * side / 112 - 0.5, (y + 0.5) * side / 112 - 0.5)
               for k, (x, y) in _ARCFACE.items()}
    TEMPLATES.add(name, Template(
        name, (side, side), points={k: (x * ratio + dx, y * ratio) for k, (x, y) in _ARCFACE.items()},
        description=f"insightface norm_crop {side}x{side} five-point template",
        prealigned=None if side == 112 else resized))
    return name


for _t in (
    Template("celeba178x218", (218, 178), points=_CELEBA,
             description="CelebA aligned frame (178 wide x 218 high), face centred"),
    Template("celeba", (112, 112), points=_resized(_CELEBA, (0, 20, 178, 178), (112, 112)),
             description="central 178x178 of the CelebA frame resized to 112x112 (DREAM stems)"),
    Template("box", (112, 112), face_box=(55.5, 55.5, 112 / (1 + 2 * BOX_MARGIN)),
             description=f"square crop around the face box, {BOX_MARGIN:.0%} margin"),
    # dlib's ResNet chip, dlib.get_face_chip(img, shape, size=150, padding=0.25): the mean
    # face of dlib's get_face_chip_details (dlib/image_transforms/interpolation.h) for its
    # 5-point predictor, on the unit square. Padding p puts u at (u + p) / (1 + 2p) * size
    # in chip units whose pixel centres sit at +0.5; fit_kind="dlib_chip" then reproduces
    # dlib's chip to 0.01 px (tests/test_models_dlib.py).
    Template("dlib150", (150, 150), points={
        name: ((u + 0.25) / 1.5 * 150 - 0.5, (v + 0.25) / 1.5 * 150 - 0.5)
        for name, (u, v) in {
            "eye_outer_l": (0.8595674595992, 0.2134981538014),  # dlib part 0
            "eye_inner_l": (0.6460604764104, 0.2289674387677),  # part 1
            "eye_outer_r": (0.1205750620789, 0.2137274526848),  # part 2
            "eye_inner_r": (0.3340850613712, 0.2290642403242),  # part 3
            "subnasale": (0.4901123135679, 0.6277975316475),    # part 4, below the nose
        }.items()}, description="dlib get_face_chip 150x150, padding 0.25 (dlib-resnet)",
        fit_kind="dlib_chip"),
):
    TEMPLATES.add(_t.name, _t)
del _t
for _side in (112, 128, 224, 256):
    arcface_template(_side)
del _side
# The generator's own constants define it, so it follows the generator if they change.
TEMPLATES.add_lazy("synth112", "bench.align.synth_template:SYNTH112",
                   description="synthetic generator crop; pose-aware")


def get_template(template: str | Template) -> Template:
    """A registered name or a :class:`Template` instance (returned as is)."""
    return template if isinstance(template, Template) else TEMPLATES.get(template)
