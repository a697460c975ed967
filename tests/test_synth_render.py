"""Rendering: geometry follows bench.face3d's pose convention, exactly enough for PnP."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bench.face3d import LANDMARK_NAMES, MIRROR, euler_from_matrix, mean_landmarks_3d
from bench.synth.head import CENTRE
from bench.synth.identity import make_identity
from bench.synth.raster import rasterize
from bench.synth.render import FOCAL_PX, IMAGE_SIZE, PRINCIPAL, Pose, neutral_nuisance, render

IDX = {name: i for i, name in enumerate(LANDMARK_NAMES)}


@pytest.fixture(scope="module")
def person():
    return make_identity((7, 1, 0))


def test_landmarks_lie_on_the_head_surface(person):
    """The radial surface passes through every landmark (within the grid's resolution)."""
    head = person.head
    pts = head.points.reshape(-1, 3)
    offsets = pts - CENTRE
    dirs = offsets / np.linalg.norm(offsets, axis=1, keepdims=True)
    for lm in person.landmarks:
        d = (lm - CENTRE) / np.linalg.norm(lm - CENTRE)
        nearest = np.argsort(-(dirs @ d))[:4]  # the grid points around the landmark's direction
        radius = np.linalg.norm(offsets[nearest], axis=1)
        assert np.linalg.norm(lm - CENTRE) == pytest.approx(radius.mean(), abs=1.5)
    # ... and identities differ from the mean face by millimetres, not centimetres.
    dev = np.linalg.norm(person.landmarks - mean_landmarks_3d(), axis=1)
    assert 0 < dev.mean() < 8


def test_landmarks_inside_image_and_move_with_yaw(person):
    xs = []
    for yaw in (-90, -60, -30, 0, 30, 60, 90):
        r = render(person, Pose(yaw))
        assert r.image.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and r.image.dtype == np.uint8
        assert (r.landmarks >= 0).all() and (r.landmarks < IMAGE_SIZE).all()
        xs.append(r.landmarks[IDX["nose_tip"], 0] - r.landmarks[IDX["chin"], 0] * 0
                  - (r.landmarks[IDX["pupil_l"], 0] + r.landmarks[IDX["pupil_r"], 0]) / 2)
    # Positive yaw turns the nose towards the image's left (bench.face3d).
    assert np.all(np.diff(xs) < 0)
    frontal = render(person, Pose(0))
    eye_mid = frontal.landmarks[[IDX["pupil_r"], IDX["pupil_l"]]].mean(0)
    assert eye_mid == pytest.approx([55.5, 51.6], abs=3.0)  # ArcFace-like crop
    assert frontal.visible.all()


def test_self_occlusion(person):
    r = render(person, Pose(85))
    assert r.visible[IDX["pupil_l"]] and not r.visible[IDX["pupil_r"]]
    r = render(person, Pose(-85))
    assert r.visible[IDX["pupil_r"]] and not r.visible[IDX["pupil_l"]]


@pytest.mark.parametrize("pose", [Pose(0, 5, -3), Pose(35, -8, 4), Pose(-70, 6, 2), Pose(88)])
def test_pnp_against_the_mean_face_recovers_the_pose(pose):
    """A PnP fit of the canonical mean face to the projections finds the rendered pose, up to
    what identities' shapes differ from the mean face (a few degrees, as for real faces)."""
    camera = np.array([[FOCAL_PX, 0, PRINCIPAL[0]], [0, FOCAL_PX, PRINCIPAL[1]], [0, 0, 1]])
    errors = []
    for k in range(6):
        r = render(make_identity((11, 1, k)), pose)
        ok, rvec, _ = cv2.solvePnP(mean_landmarks_3d(), r.landmarks.astype(np.float64), camera,
                                   None, flags=cv2.SOLVEPNP_SQPNP)
        assert ok
        yaw, pitch, roll = euler_from_matrix(cv2.Rodrigues(rvec)[0])
        errors.append((yaw - pose.yaw, pitch - pose.pitch, roll - pose.roll))
    errors = np.abs(np.array(errors, dtype=np.float64))
    assert errors[:, 0].mean() < 4 and errors[:, 0].max() < 9 and errors[:, 2].max() < 4


def test_flipped_image_has_negated_yaw():
    person = make_identity((5, 1, 2), symmetric=True)
    for yaw in (25.0, 60.0):
        right = render(person, Pose(yaw, 4.0, 0.0), neutral_nuisance())
        left = render(person, Pose(-yaw, 4.0, 0.0), neutral_nuisance())
        flipped = right.image[:, ::-1].astype(np.float64)
        same = np.abs(flipped - left.image).mean()
        unflipped = np.abs(right.image.astype(np.float64) - left.image).mean()
        assert same < 2.0 and unflipped > 4 * same
        mirrored = right.landmarks[list(MIRROR)].copy()
        mirrored[:, 0] = IMAGE_SIZE - 1 - mirrored[:, 0]
        assert np.abs(mirrored - left.landmarks).max() < 0.05


def test_rasteriser_keeps_the_nearest_triangle():
    xy = np.array([[10, 10], [50, 10], [10, 50], [50, 50], [0, 0], [60, 0], [0, 60]], float)
    depth = np.array([5, 5, 5, 5, 9, 9, 9], float)
    # Two triangles make the near square; a big far triangle lies behind it.
    faces = np.array([[0, 1, 3], [0, 3, 2], [4, 5, 6]])
    frags = rasterize(xy, depth, faces, 64, 64)
    assert len(np.unique(frags.pixel)) == len(frags.pixel)
    y, x = np.divmod(frags.pixel, 64)
    in_square = (x >= 10) & (x <= 50) & (y >= 10) & (y <= 50)
    assert set(frags.face[in_square]) == {0, 1}
    assert set(frags.face[~in_square]) == {2}
    assert in_square.sum() == 41 * 41
    assert np.allclose(frags.bary.sum(1), 1, atol=1e-5)
    assert np.allclose(frags.depth[in_square], 5)
    # Back-facing (clockwise in image coordinates) triangles are culled.
    assert len(rasterize(xy, depth, faces[:, ::-1], 64, 64).pixel) == 0
