"""Which transform each sample gets: the policy from points and boxes to a crop.

For a landmark template, per sample (all vectorised over the set):

1. ``template``: least-squares similarity of the visible points to the template. When all
   of the template's defining points are visible only those are used (so five points on
   ``arcface112`` reproduce insightface's ``norm_crop`` exactly); otherwise every visible
   canonical landmark is used against the template's derived positions.
   A profile whose points are all given (a hidden eye placed through the head, as CFP's
   and insightface's five points do) fits the frontal template poorly; its frontal fit is
   still accepted when the pose-aware fit below shows the points are a face at some yaw,
   which keeps such profiles norm_crop-compatible.
2. ``posed``: the pose-aware fit of :mod:`bench.align.profile`, for faces where step 1 is
   impossible or fails. With ``profile="auto"`` (default) a sample is posed when an eye is
   missing or the frontal fit fails its checks; ``"fixed"`` never poses; ``"posed"``
   always does (and is what ``auto`` means for a ``posed=True`` template such as
   ``synth112``).
Points from a face detector or a pre-aligned crop (``trusted`` rows) take step 1 alone,
with the template's defining points when all are present, and skip the residual check:
that is the plain similarity alignment (insightface's ``norm_crop``, OpenCV's SFace
``alignCrop``) that every real pipeline applies to a detector's five points, profiles
included, so a model is measured as it is used.

3. Fallbacks, reported with a reason, when no fit passes the checks (fewer than two
   points, points with no spread, a residual that says the points are not a face in this
   order, an in-plane rotation beyond ``max_rotation_deg``): ``box`` from the sample's
   ``box``, else ``points_box`` from the extent of its raw points (covers point sets with
   no known correspondence, such as CFP's 30 fiducials), else ``full_image``.

For the ``box`` template every sample takes step 3 directly; only ``points_box`` and
``full_image`` then count as fallbacks.

``full_image`` transforms need the image size and are filled in after decoding
(:meth:`AlignPlan.fill_full_image`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .profile import PUPILS, posed_references
from .templates import Template
from .transform import FitQuality, box_transforms, fit_quality

PROFILE_MODES = ("auto", "fixed", "posed")
#: Methods that mean "the sample's points could not be used" for a landmark template.
FALLBACK_METHODS = ("box", "points_box", "full_image")


@dataclass(frozen=True)
class AlignOptions:
    """How samples are aligned. ``max_residual`` is relative (RMS fit error over the RMS
    spread of the reference points) and applies to the better of the frontal and posed
    fits: five points of a face with 3 mm of landmark noise score 0.05-0.15 at their own
    yaw; swapped eyes score 0.35 (at 60 degrees) to 0.7 (frontal)."""

    profile: str = "auto"
    min_spread_px: float = 2.0
    max_residual: float = 0.3
    max_rotation_deg: float = 90.0

    def __post_init__(self):
        if self.profile not in PROFILE_MODES:
            raise ConfigError(f"profile must be one of {', '.join(PROFILE_MODES)}, "
                              f"got {self.profile!r}")


@dataclass
class AlignPlan:
    """``transforms`` (N, 2, 3) image -> crop pixels (NaN for ``full_image`` rows until
    filled); ``method`` (N,) str; ``reason`` (N,) str, empty unless the sample fell back;
    ``yaw`` (N,) degrees used by posed fits (NaN otherwise)."""

    transforms: np.ndarray
    method: np.ndarray
    reason: np.ndarray
    yaw: np.ndarray
    template: Template

    def fallback_mask(self) -> np.ndarray:
        if self.template.uses_landmarks:
            return np.isin(self.method, FALLBACK_METHODS)
        return self.method != "box"

    def fill_full_image(self, rows: np.ndarray, image_hw: np.ndarray) -> None:
        """Set the ``full_image`` transforms of ``rows`` from their decoded (h, w) sizes."""
        rows = np.asarray(rows)
        todo = self.method[rows] == "full_image"
        if todo.any():
            hw = np.asarray(image_hw)[todo]
            boxes = np.column_stack([np.zeros((len(hw), 2)), hw[:, 1], hw[:, 0]])
            self.transforms[rows[todo]] = box_transforms(boxes, self.template.box_px)


def _failures(m: np.ndarray, q: FitQuality, residual: np.ndarray,
              options: AlignOptions) -> np.ndarray:
    """(N,) reason strings, empty where the fit passes every check."""
    reason = np.full(len(m), "", dtype=object)
    checks = [
        (~np.isfinite(m).all((1, 2)) | (q.n_points < 2),
         lambda i: f"fewer than 2 usable landmarks ({q.n_points[i]})"),
        (q.spread < options.min_spread_px,
         lambda i: f"degenerate landmarks (spread {q.spread[i]:.2f} px)"),
        (np.nan_to_num(residual, nan=np.inf) > options.max_residual,
         lambda i: f"landmarks fit no face pose (residual {residual[i]:.2f})"),
        (np.abs(q.rotation) > options.max_rotation_deg,
         lambda i: f"implausible in-plane rotation ({q.rotation[i]:.0f} deg)"),
    ]
    for failed, message in checks:
        for i in np.flatnonzero(failed & (reason == "")):
            reason[i] = message(i)
    return reason


def _posed_fit(points, visible, yaw, pitch, template, options):
    """Pose-aware fits of the given rows: (transforms, residuals, reasons, yaw used)."""
    refs, yaw_est = posed_references(points, template, yaw, pitch)
    weights = visible.astype(float)
    m = template.fit(points, refs, weights)
    q = fit_quality(m, points, refs, weights)
    why = _failures(m, q, q.residual, options)
    why[~np.isfinite(yaw_est)] = "yaw unknown and too few landmarks to estimate it"
    return m, q.residual, why, yaw_est


def _landmark_plan(points: np.ndarray, yaw: np.ndarray, pitch: np.ndarray,
                   template: Template, options: AlignOptions, trusted: np.ndarray,
                   pre_aligned: np.ndarray):
    """Fits of the samples that have landmarks: (rows, transforms, method, reason, yaw
    used) for those rows, ``method`` empty where no fit passes."""
    visible = np.isfinite(points).all(-1)
    rows = np.flatnonzero(visible.any(1))
    pts, vis = points[rows], visible[rows]
    n = len(rows)
    mode = "posed" if (template.posed and options.profile == "auto") else options.profile

    defining = template.defining
    complete = vis[:, defining].all(1) if defining.any() else np.zeros(n, bool)
    fixed_w = np.where(complete[:, None], defining[None], vis).astype(float)
    refs = np.where(pre_aligned[rows][:, None, None], template.prealigned_reference,
                    template.reference)
    fixed = template.fit(pts, refs, fixed_w)
    fixed_q = fit_quality(fixed, pts, refs, fixed_w)
    wants_fixed = {"fixed": np.ones(n, bool), "auto": vis[:, PUPILS].all(1),
                   "posed": np.zeros(n, bool)}[mode]
    sure = trusted[rows]
    wants_fixed = wants_fixed | sure

    # Posed fits where they are the answer, or where they vouch for a frontal fit whose
    # residual is high: a profile's points fit the frontal template poorly but the turned
    # mean face well, and then the frontal (norm_crop-compatible) fit is still accepted.
    high = (np.nan_to_num(fixed_q.residual, nan=np.inf) > options.max_residual) & ~sure
    need = (high if mode == "fixed" else (~wants_fixed | high)) & ~sure
    posed = np.full_like(fixed, np.nan)
    posed_res = np.full(n, np.inf)
    posed_why = np.full(n, "", dtype=object)
    yaw_est = np.full(n, np.nan)
    if need.any():
        sub = np.flatnonzero(need)
        posed[sub], posed_res[sub], posed_why[sub], yaw_est[sub] = _posed_fit(
            pts[sub], vis[sub], yaw[rows[sub]], pitch[rows[sub]], template, options)
    fixed_why = _failures(fixed, fixed_q, np.where(sure, 0.0, np.fmin(fixed_q.residual,
                                                                      posed_res)), options)

    use_fixed = wants_fixed & (fixed_why == "")
    use_posed = ~use_fixed & need & (posed_why == "") & (mode != "fixed")
    method = np.where(use_fixed, "template", np.where(use_posed, "posed", "")).astype(object)
    transforms = np.where(use_fixed[:, None, None], fixed, posed)
    reason = np.where((posed_why != "") & (mode != "fixed"), posed_why, fixed_why)
    reason[method != ""] = ""
    return rows, transforms, method, reason, np.where(use_posed, yaw_est, np.nan)


def plan_alignment(points: np.ndarray, boxes: np.ndarray, extents: np.ndarray,
                   yaw: np.ndarray, pitch: np.ndarray, template: Template,
                   options: AlignOptions = AlignOptions(),
                   trusted: np.ndarray | None = None,
                   pre_aligned: np.ndarray | None = None) -> AlignPlan:
    """Decide every sample's transform.

    ``points`` (N, 22, 2) canonical landmarks (NaN absent); ``boxes`` (N, 4) x, y, w, h
    (NaN absent); ``extents`` (N, 4) boxes around each sample's raw points (NaN absent);
    ``yaw``, ``pitch`` (N,) degrees (NaN unknown); ``trusted`` (N,) bool: points from a
    detector or a pre-aligned crop (see the module doc), default none; ``pre_aligned`` (N,)
    bool: the crops already aligned (their points go to the template's
    :attr:`~bench.align.templates.Template.prealigned` places where it has them).
    """
    n = len(points)
    trusted = np.zeros(n, bool) if trusted is None else np.asarray(trusted, bool).reshape(n)
    pre_aligned = np.zeros(n, bool) if pre_aligned is None else \
        np.asarray(pre_aligned, bool).reshape(n)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(n, 4)
    extents = np.asarray(extents, dtype=np.float64).reshape(n, 4)
    yaw = np.broadcast_to(np.asarray(yaw, dtype=np.float64), (n,))
    pitch = np.broadcast_to(np.asarray(pitch, dtype=np.float64), (n,))
    transforms = np.full((n, 2, 3), np.nan)
    method = np.full(n, "", dtype=object)
    reason = np.full(n, "", dtype=object)
    yaw_used = np.full(n, np.nan)

    if template.uses_landmarks:
        reason[:] = np.where(np.isfinite(extents).all(1), "landmarks of no known scheme",
                             "no landmarks")
        rows, m, how, why, used = _landmark_plan(points, yaw, pitch, template, options,
                                                 trusted, pre_aligned)
        transforms[rows], method[rows], reason[rows], yaw_used[rows] = m, how, why, used
    todo = method == ""

    for name, source in (("box", boxes), ("points_box", extents)):
        take = todo & np.isfinite(source).all(1) & (np.minimum(source[:, 2], source[:, 3]) > 0)
        transforms[take] = box_transforms(source[take], template.box_px)
        method[take] = name
        todo &= ~take
    method[todo] = "full_image"
    if not template.uses_landmarks:
        reason[:] = ""
        reason[method == "points_box"] = "no box: used the landmarks' extent"
        reason[method == "full_image"] = "no box or landmarks"
    return AlignPlan(transforms, method, reason, yaw_used, template)
