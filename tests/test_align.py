"""Alignment maths: similarity fits, templates, landmark schemes, the per-sample plan, warping."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from bench.align.plan import AlignOptions, plan_alignment
from bench.align.profile import estimate_yaw
from bench.align.schemes import SCHEMES, canonical_landmarks
from bench.align.templates import TEMPLATES, Template
from bench.align.transform import (
    apply,
    box_transforms,
    compose,
    fit_quality,
    fit_similarity,
    invert,
)
from bench.align.warp import warp_images
from bench.errors import ConfigError
from bench.face3d import FIVE_POINT, LANDMARK_NAMES, mean_landmarks_3d, rotation_matrix

ARCFACE = TEMPLATES.get("arcface112")
FIVE = list(FIVE_POINT)
PUPIL_L = LANDMARK_NAMES.index("pupil_l")


def similarity(scale: float, degrees: float, tx: float, ty: float) -> np.ndarray:
    a = np.radians(degrees)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx],
                     [scale * np.sin(a), scale * np.cos(a), ty]])


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Reference: Umeyama (1991) with scaling, as skimage's SimilarityTransform.estimate."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[-1] = -1
    rot = u @ np.diag(d) @ vt
    scale = (sig * d).sum() / s0.var(0).sum()
    lin = scale * rot
    return np.column_stack([lin, mu_d - lin @ mu_s])


def face_points(yaw=0.0, pitch=0.0, roll=0.0, scale=2.0, centre=(300.0, 220.0), noise=0.0,
                rng=None) -> np.ndarray:
    """(22, 2) image points of the mean face at a pose (orthographic), optional noise in mm."""
    x = mean_landmarks_3d()
    if noise:
        x = x + rng.normal(0, noise, x.shape)
    return (rotation_matrix(yaw, pitch, roll) @ x.T).T[:, :2] * scale + np.asarray(centre)


def only(points: np.ndarray, keep) -> np.ndarray:
    out = np.full_like(points, np.nan)
    out[..., keep, :] = points[..., keep, :]
    return out


def plan(points, template=ARCFACE, yaw=np.nan, boxes=None, extents=None, **options):
    points = np.asarray(points, dtype=np.float64).reshape(-1, 22, 2)
    n = len(points)
    nan4 = np.full((n, 4), np.nan)
    return plan_alignment(points, nan4 if boxes is None else boxes,
                          nan4 if extents is None else extents, np.full(n, yaw, dtype=float),
                          np.full(n, np.nan), template, AlignOptions(**options))


# --- transform ------------------------------------------------------------------------------

def test_fit_matches_umeyama_on_random_point_sets():
    rng = np.random.default_rng(0)
    src = rng.normal(0, 50, (20, 5, 2))
    dst = rng.normal(0, 30, (20, 5, 2))
    got = fit_similarity(src, dst)
    want = np.stack([umeyama(s, d) for s, d in zip(src, dst, strict=True)])
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_fit_recovers_a_known_similarity_and_inverts():
    m = similarity(2.7, 33.0, -40.0, 12.5)
    src = np.random.default_rng(1).uniform(0, 200, (1, 7, 2))
    got = fit_similarity(src, apply(m, src))[0]
    np.testing.assert_allclose(got, m, atol=1e-9)
    np.testing.assert_allclose(compose(invert(got), got), [[1, 0, 0], [0, 1, 0]], atol=1e-12)


def test_zero_weight_and_nan_points_are_ignored():
    rng = np.random.default_rng(2)
    src, dst = rng.normal(0, 20, (1, 6, 2)), rng.normal(0, 20, (1, 6, 2))
    weights = np.array([[1, 1, 1, 0, 1, 1.0]])
    with_nan = src.copy()
    with_nan[0, 3] = np.nan
    expected = fit_similarity(src[:, [0, 1, 2, 4, 5]], dst[:, [0, 1, 2, 4, 5]])
    np.testing.assert_allclose(fit_similarity(src, dst, weights), expected, atol=1e-12)
    np.testing.assert_allclose(fit_similarity(with_nan, dst), expected, atol=1e-12)


def test_degenerate_point_sets_give_nan():
    same = np.full((1, 5, 2), 40.0)
    one = np.full((1, 5, 2), np.nan)
    one[0, 2] = (3, 4)
    dst = ARCFACE.reference[FIVE][None]
    assert np.isnan(fit_similarity(same, dst)).all()
    assert np.isnan(fit_similarity(one, dst)).all()
    collinear = np.array([[[0, 0], [10, 0], [20, 0], [30, 0], [40, 0.0]]])
    assert np.isfinite(fit_similarity(collinear, dst)).all()


def test_fit_quality_reports_residual_rotation_and_scale():
    m = similarity(0.5, -20.0, 3.0, 4.0)
    dst = ARCFACE.reference[FIVE][None]
    src = apply(invert(m), dst)
    q = fit_quality(fit_similarity(src, dst), src, dst)
    assert q.residual[0] < 1e-9
    assert q.rotation[0] == pytest.approx(-20.0)
    assert q.scale[0] == pytest.approx(0.5)
    assert q.n_points[0] == 5
    assert q.spread[0] == pytest.approx(np.sqrt(((src[0] - src[0].mean(0)) ** 2).sum(1).mean()))


def test_box_transform_centres_the_box_on_the_face_box():
    m = box_transforms(np.array([[100, 50, 80, 120.0]]), (55.5, 60.0, 90.0))[0]
    centre = apply(m, np.array([[100 + 40 - 0.5, 50 + 60 - 0.5]]))
    np.testing.assert_allclose(centre, [[55.5, 60.0]])
    assert m[0, 0] == pytest.approx(90 / 120)
    assert np.isnan(box_transforms(np.array([[0, 0, 0, 0.0]]), (1, 1, 1))).all()


# --- templates and schemes -----------------------------------------------------------------

def test_required_templates_are_registered():
    assert {"arcface112", "celeba", "celeba178x218", "synth112", "box"} <= set(TEMPLATES)


def test_arcface_template_is_insightface_norm_crop():
    np.testing.assert_allclose(ARCFACE.reference[FIVE], [
        [38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
        [41.5493, 92.3655], [70.7299, 92.2041]])
    # five points already on the template map by the identity
    m = fit_similarity(ARCFACE.reference[FIVE][None], ARCFACE.reference[FIVE][None])[0]
    np.testing.assert_allclose(m, [[1, 0, 0], [0, 1, 0]], atol=1e-9)


def test_celeba_112_is_the_central_square_of_the_celeba_frame():
    celeba = TEMPLATES.get("celeba")
    s = 112 / 178
    np.testing.assert_allclose(celeba.reference[FIVE[0]], [(69.5) * s - 0.5, (91.5) * s - 0.5])
    np.testing.assert_allclose(celeba.reference[FIVE[4]], [(105.5) * s - 0.5, (132.5) * s - 0.5])
    assert TEMPLATES.get("celeba178x218").size == (218, 178)


def test_derived_points_and_frontal_pose_agree_with_defining_points():
    # the mean face fits the ArcFace points to about a pixel, so the derived geometry is sane
    frontal = ARCFACE.posed_reference(0.0)
    assert np.abs(frontal[FIVE] - ARCFACE.reference[FIVE]).max() < 1.0
    others = ~ARCFACE.defining
    np.testing.assert_allclose(frontal[others], ARCFACE.reference[others])


def test_synth112_is_close_to_arcface_when_frontal():
    pytest.importorskip("bench.synth.render")
    synth = TEMPLATES.get("synth112")
    assert np.abs(synth.reference[FIVE] - ARCFACE.reference[FIVE]).max() < 2.0


def test_posed_reference_turns_the_nose_the_face3d_way():
    turned = ARCFACE.posed_reference(np.array([0.0, 40.0, -40.0]))
    nose = LANDMARK_NAMES.index("nose_tip")
    eyes_mid = turned[:, [16, 17]].mean(1)
    offset = turned[:, nose, 0] - eyes_mid[:, 0]
    assert abs(offset[0]) < 0.5 and offset[1] < -5 and offset[2] > 5


def test_box_template_places_the_box_with_margin():
    box = TEMPLATES.get("box")
    assert not box.uses_landmarks
    np.testing.assert_allclose(box.box_px, [55.5, 55.5, 112 / 1.4])


def test_template_validation():
    with pytest.raises(ConfigError, match="unknown landmarks"):
        Template("bad", (10, 10), points={"ear": (1, 2), "nose_tip": (3, 4)})
    with pytest.raises(ConfigError, match="points, geometry or face_box"):
        Template("empty", (10, 10))


def test_ibug68_scheme_averages_eye_contours_into_pupils():
    pts = np.arange(136, dtype=np.float64).reshape(68, 2)
    canon = SCHEMES.get("ibug68").to_canonical(pts)
    np.testing.assert_allclose(canon[16], pts[36:42].mean(0))
    np.testing.assert_allclose(canon[LANDMARK_NAMES.index("nose_tip")], pts[30])
    np.testing.assert_allclose(canon[LANDMARK_NAMES.index("mouth_centre")], pts[[62, 66]].mean(0))
    pts[40] = np.nan  # one hidden contour point hides the pupil, nothing else
    canon = SCHEMES.get("ibug68").to_canonical(pts)
    assert np.isnan(canon[16]).all() and np.isfinite(np.delete(canon, 16, 0)).all()


def test_canonical_landmarks_by_point_count():
    five = ARCFACE.reference[FIVE].copy()
    five[1] = np.nan
    ijba = np.array([[10, 20], [50, 20], [30, 45.0]])
    column = [None, five, ijba, np.ones((30, 2)) * np.arange(30)[:, None], face_points()]
    points, extents = canonical_landmarks(column)
    assert points.shape == (5, 22, 2)
    assert np.isnan(points[0]).all() and np.isnan(extents[0]).all()
    np.testing.assert_allclose(points[1, FIVE[0]], five[0])
    assert np.isnan(points[1, PUPIL_L]).all()
    np.testing.assert_allclose(points[2, LANDMARK_NAMES.index("subnasale")], [30, 45])
    assert np.isnan(points[3]).all()  # 30 points: no known scheme ...
    np.testing.assert_allclose(extents[3], [0, 0, 29, 29])  # ... but still an extent
    np.testing.assert_allclose(points[4], face_points())
    lo = np.nanmin(five, 0)
    np.testing.assert_allclose(extents[1], [*lo, *(np.nanmax(five, 0) - lo)])


# --- plan -----------------------------------------------------------------------------------

def test_frontal_five_points_use_the_template_exactly():
    pts = only(face_points(roll=12.0, noise=2.0, rng=np.random.default_rng(3)), FIVE)
    p = plan(pts)
    assert p.method[0] == "template" and p.reason[0] == ""
    np.testing.assert_allclose(p.transforms[0], umeyama(pts[FIVE], ARCFACE.reference[FIVE]),
                               atol=1e-9)


def test_profile_with_all_points_keeps_the_norm_crop_fit():
    pts = only(face_points(yaw=75.0), FIVE)
    p = plan(pts)
    assert p.method[0] == "template"


def test_hidden_eye_with_known_yaw_is_posed():
    pts = only(face_points(yaw=70.0, roll=-10.0), [17, 18, 19, 20])
    p = plan(pts, yaw=70.0)
    assert p.method[0] == "posed" and p.yaw[0] == 70.0
    # the visible points land on the turned mean face exactly, at the frontal scale
    np.testing.assert_allclose(apply(p.transforms[0], pts[[17, 18, 19, 20]]),
                               ARCFACE.posed_reference(70.0)[[17, 18, 19, 20]], atol=1e-6)


def test_hidden_eye_with_unknown_yaw_estimates_it():
    rng = np.random.default_rng(4)
    yaws = np.array([-80.0, -60.0, 60.0, 80.0])
    pts = np.stack([only(face_points(yaw=y, noise=1.5, rng=rng), [16, 17, 18, 19, 20])
                    for y in yaws])
    hidden = np.where(yaws > 0, 16, PUPIL_L)  # turned to the image left: pupil_r goes
    pts[np.arange(4), hidden] = np.nan
    p = plan(pts)
    assert (p.method == "posed").all()
    assert np.abs(p.yaw - yaws).max() <= 10.0
    np.testing.assert_allclose(estimate_yaw(pts, ARCFACE), p.yaw)


def test_a_missing_eye_fixes_the_sign_of_an_unknown_yaw():
    # three points (one eye, nose, one mouth corner) say little, the missing eye says more
    pts = only(face_points(yaw=-70.0), [16, 18, 19])
    assert estimate_yaw(pts[None], ARCFACE)[0] <= -40
    wrong_side = only(face_points(yaw=-70.0), [17, 18, 19])  # the far eye "visible"
    assert plan(wrong_side).method[0] == "full_image"


def test_two_points_and_unknown_yaw_fall_back_with_a_reason():
    pts = only(face_points(yaw=60.0), [17, 18])
    p = plan(pts, boxes=np.array([[200, 100, 150, 180.0]]))
    assert p.method[0] == "box"
    assert "yaw unknown" in p.reason[0]
    assert plan(pts, yaw=60.0).method[0] == "posed"


def test_fixed_mode_never_poses_and_posed_mode_always_does():
    pts = only(face_points(yaw=70.0), [17, 18, 19, 20])
    assert plan(pts, yaw=70.0, profile="fixed").method[0] == "template"
    assert plan(only(face_points(), FIVE), yaw=0.0, profile="posed").method[0] == "posed"


def test_swapped_eyes_and_degenerate_points_are_reported():
    swapped = only(face_points(), FIVE)
    swapped[[16, 17]] = swapped[[17, 16]]
    same = only(np.full((22, 2), 50.0), FIVE)
    p = plan(np.stack([swapped, same]))
    assert list(p.method) == ["full_image", "full_image"]
    assert "fit no face pose" in p.reason[0]
    assert "degenerate" in p.reason[1] or "fewer than 2" in p.reason[1]
    assert p.fallback_mask().all()


def test_fallback_order_box_then_extent_then_full_image():
    none = np.full((3, 22, 2), np.nan)
    boxes = np.array([[10, 10, 50, 60.0], [np.nan] * 4, [np.nan] * 4])
    extents = np.array([[np.nan] * 4, [20, 30, 40, 40.0], [np.nan] * 4])
    p = plan(none, boxes=boxes, extents=extents)
    assert list(p.method) == ["box", "points_box", "full_image"]
    assert p.reason[0] == "no landmarks" and p.reason[1] == "landmarks of no known scheme"
    p.fill_full_image(np.array([0, 1, 2]), np.array([[100, 200]] * 3))
    np.testing.assert_allclose(p.transforms[:2], plan(none, boxes=boxes,
                                                      extents=extents).transforms[:2])
    centre = apply(p.transforms[2], np.array([[99.5, 49.5]]))
    np.testing.assert_allclose(centre, [ARCFACE.box_px[:2]])


def test_box_template_reports_only_missing_boxes():
    box = TEMPLATES.get("box")
    p = plan(np.full((2, 22, 2), np.nan), template=box,
             boxes=np.array([[10, 10, 50, 60.0], [np.nan] * 4]))
    assert list(p.method) == ["box", "full_image"]
    assert list(p.fallback_mask()) == [False, True]
    assert p.reason[0] == "" and "no box" in p.reason[1]


def test_synth112_poses_by_default():
    pytest.importorskip("bench.synth.render")
    synth = TEMPLATES.get("synth112")
    pts = synth.posed_reference(50.0)[None]
    p = plan(pts, template=synth, yaw=50.0)
    assert p.method[0] == "posed"
    np.testing.assert_allclose(p.transforms[0], [[1, 0, 0], [0, 1, 0]], atol=1e-9)


# --- warping --------------------------------------------------------------------------------

def blob_image(points: np.ndarray, hw: tuple[int, int], sigma: float) -> np.ndarray:
    """(3, H, W) uint8: a Gaussian blob at each point on a dark background."""
    yy, xx = np.mgrid[: hw[0], : hw[1]]
    d2 = (xx[None] - points[:, 0, None, None]) ** 2 + (yy[None] - points[:, 1, None, None]) ** 2
    img = 20 + 220 * np.exp(-d2 / (2 * sigma ** 2)).sum(0)
    return np.repeat(np.round(img).clip(0, 255).astype(np.uint8)[None], 3, 0)


def blob_centres(crop: np.ndarray, near: np.ndarray, radius: int = 6) -> np.ndarray:
    gray = crop[0].astype(np.float64) - 20
    out = []
    for x, y in near:
        x0, y0 = int(round(x)) - radius, int(round(y)) - radius
        win = np.clip(gray[y0:y0 + 2 * radius + 1, x0:x0 + 2 * radius + 1], 0, None)
        yy, xx = np.mgrid[y0:y0 + win.shape[0], x0:x0 + win.shape[1]]
        out.append([(win * xx).sum() / win.sum(), (win * yy).sum() / win.sum()])
    return np.array(out)


def test_warp_puts_landmarks_on_the_template_points_subpixel():
    rng = np.random.default_rng(5)
    images, points = [], []
    for hw in [(300, 400), (420, 260)]:  # two frame sizes in one batch
        m = similarity(rng.uniform(2, 3), rng.uniform(-40, 40), 0, 0)
        m[:, 2] = np.array(hw[::-1]) / 2 - apply(m, np.array([[56.0, 72.0]]))[0]
        pts = apply(m, ARCFACE.reference[FIVE]) + rng.normal(0, 1.0, (5, 2))
        images.append(torch.from_numpy(blob_image(pts, hw, sigma=3.0)))
        points.append(pts)
    points = np.stack(points)
    transforms = fit_similarity(points, ARCFACE.reference[FIVE])
    crops = warp_images(images, transforms, ARCFACE.size).numpy()
    for crop, m, pts in zip(crops, transforms, points, strict=True):
        mapped = apply(m, pts)
        assert np.abs(blob_centres(crop, mapped) - mapped).max() < 0.1
        assert np.abs(mapped - ARCFACE.reference[FIVE]).max() < 2.0


def smooth_image(hw, seed=0) -> np.ndarray:
    noise = np.random.default_rng(seed).uniform(0, 255, (*hw, 3)).astype(np.float32)
    img = cv2.GaussianBlur(noise, (0, 0), 4.0)
    img = (img - img.min()) / (img.max() - img.min()) * 255
    return img.astype(np.uint8)


def to_tensor(hwc: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(hwc)).permute(2, 0, 1)


def test_warp_matches_cv2_warp_affine():
    img = smooth_image((240, 320))
    transforms = np.stack([similarity(0.4, 10, -20, 5), similarity(1.7, -35, -150, 60)])
    crops = warp_images([to_tensor(img)] * 2, transforms, (112, 112)).numpy()
    for crop, m in zip(crops, transforms, strict=True):
        want = cv2.warpAffine(img, m, (112, 112), flags=cv2.INTER_LINEAR, borderValue=0)
        assert np.abs(crop.transpose(1, 2, 0).astype(int) - want).max() <= 1


def test_batched_tensor_list_and_chunked_paths_agree():
    img = smooth_image((200, 200), seed=1)
    transforms = np.stack([similarity(s, a, 10, 20) for s, a in [(0.5, 0), (1.3, 20), (3, -5)]])
    as_list = warp_images([to_tensor(img)] * 3, transforms, (64, 48))
    as_batch = warp_images(to_tensor(img)[None].repeat(3, 1, 1, 1), transforms, (64, 48))
    chunked = warp_images([to_tensor(img)] * 3, transforms, (64, 48), max_canvas_elements=1)
    assert as_list.shape == (3, 3, 64, 48) and as_list.dtype == torch.uint8
    assert torch.equal(as_list, as_batch) and torch.equal(as_list, chunked)


def test_crop_outside_the_image_is_black():
    img = to_tensor(smooth_image((50, 50)))
    crop = warp_images([img], similarity(1, 0, 500, 500)[None], (16, 16))
    assert crop.abs().sum() == 0


def test_rotated_and_scaled_copy_aligns_to_the_same_crop():
    base = smooth_image((260, 340), seed=2)
    pts = apply(similarity(2.2, 5, 60, 20), ARCFACE.reference[FIVE])
    moved = similarity(1.6, 35, 240, -40)
    copy = cv2.warpAffine(base, moved, (620, 560), flags=cv2.INTER_CUBIC)
    src = np.stack([pts, apply(moved, pts)])
    transforms = fit_similarity(src, ARCFACE.reference[FIVE])
    crops = warp_images([to_tensor(base), to_tensor(copy)], transforms, ARCFACE.size).numpy()
    diff = np.abs(crops[0].astype(int) - crops[1].astype(int))
    assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 4


@pytest.mark.gpu
def test_cpu_and_cuda_warps_agree():
    rng = np.random.default_rng(6)
    images = [to_tensor(smooth_image(hw, seed=i)) for i, hw in enumerate([(300, 200), (90, 500)])]
    transforms = np.stack([similarity(rng.uniform(0.3, 2), rng.uniform(-60, 60), 10, -20)
                           for _ in images])
    cpu = warp_images(images, transforms, (112, 112))
    gpu = warp_images([i.cuda() for i in images], transforms, (112, 112))
    assert gpu.device.type == "cuda"
    assert (cpu.int() - gpu.cpu().int()).abs().max() <= 1


def test_same_size_batch_path_equals_region_path():
    import numpy as np
    import torch

    from bench.align.warp import warp_images

    rng = np.random.default_rng(0)
    images = torch.as_tensor(rng.integers(0, 256, (5, 3, 90, 120)), dtype=torch.uint8)
    angle = rng.uniform(-0.4, 0.4, 5)
    scale = rng.uniform(0.6, 1.4, 5)
    m = np.zeros((5, 2, 3))
    m[:, 0, 0], m[:, 0, 1] = scale * np.cos(angle), -scale * np.sin(angle)
    m[:, 1, 0], m[:, 1, 1] = scale * np.sin(angle), scale * np.cos(angle)
    m[:, :, 2] = rng.uniform(-20, 20, (5, 2))
    batched = warp_images(images, m, (64, 64))  # one grid_sample over the whole images
    regions = warp_images(list(images), m, (64, 64), max_canvas_elements=3 * 90 * 120 * 4)
    assert (batched.int() - regions.int()).abs().max() <= 1
