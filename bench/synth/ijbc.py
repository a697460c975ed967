"""``IJBC/``: the IJB-C layout of insightface's evaluation release, from the IJB-A part's faces.

The real release holds every face of IJB-C cropped loosely (``loose_crop/<n>.jpg``) and
meta files of space-separated lines without a header::

    meta/ijbc_face_tid_mid.txt          <n>.jpg <template id> <media id>
    meta/ijbc_name_5pts_score.txt       <n>.jpg x1 y1 ... x5 y5 <faceness>
    meta/ijbc_template_pair_label.txt   <template a> <template b> <1 genuine | 0>
    meta/ijbc_1N_gallery_G1.csv, ijbc_1N_gallery_G2.csv, ijbc_1N_probe_mixed.csv
                                        TEMPLATE_ID,SUBJECT_ID,FILENAME (header row)

Here every image of the IJB-A part (stills and video frames, every subject) is one loose
crop. Its five points (insightface order: image-left eye, image-right eye, nose tip,
image-left and image-right mouth corner) are the renderer's true pupils, nose tip and mouth
corners, given for profiles too, as a detector does; the faceness falls with |yaw|. Each
subject's media are split into disjoint templates; 1:1 lists every genuine template pair
and impostor pairs (all of them on small sets); 1:N puts each subject's first template in
gallery G1 or G2 (alternately: the two are disjoint, so each is open-set for the other's
subjects) and every other template in the mixed probe set. Subjects appear only in the 1:N
files, as in the release.
"""

from __future__ import annotations

import csv
import os
import shutil
from itertools import combinations
from pathlib import Path

import cv2
import numpy as np

from ..face3d import FIVE_POINT
from ..fileio import atomic_write
from .config import SynthConfig
from .ijba import FOLDER as IJBA_FOLDER
from .ijba import PART, Plan, _split_media
from .jobs import IdentityResult

FOLDER = "IJBC"
PREFIX = "ijbc"
#: Impostor template pairs kept at most, per genuine pair (the real set has about 800).
MAX_IMPOSTORS_PER_GENUINE = 200
JPEG_QUALITY = 95


def _order_five(points: np.ndarray) -> np.ndarray:
    """The five points in insightface's order: by image side, not by the subject's side."""
    eyes, nose, mouth = points[:2], points[2:3], points[3:5]
    eyes = eyes[np.argsort(eyes[:, 0], kind="stable")]
    mouth = mouth[np.argsort(mouth[:, 0], kind="stable")]
    return np.concatenate([eyes, nose, mouth])


def _loose_crop(src: Path, dst: Path) -> None:
    """Stills are JPEG already (linked); video frames are PNG, re-encoded as JPEG."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.suffix == ".jpg":
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
        return
    ok, buf = cv2.imencode(".jpg", cv2.imread(str(src), cv2.IMREAD_COLOR),
                           [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover - OpenCV without codecs is a broken install
        raise RuntimeError(f"OpenCV could not encode {dst}")
    with atomic_write(dst, "wb") as f:
        f.write(buf.tobytes())


def write_layout(root: Path, config: SynthConfig, plan: Plan,
                 results: list[IdentityResult]) -> dict[str, int]:
    """Write ``root/ijbc`` from the rendered IJB-A part; returns its counts."""
    base, meta = root / FOLDER, root / FOLDER / "meta"
    rng = np.random.default_rng((config.seed, PART, 2 * 10 ** 6))
    name_of: dict[int, list[tuple[str, object]]] = {}   # media -> (crop name, record)
    five_lines, n = [], 0
    for rec in plan.records:
        n += 1
        name = f"{n}.jpg"
        _loose_crop(root / IJBA_FOLDER / "images" / rec.file, base / "loose_crop" / name)
        res = results[rec.job].images[rec.image]
        pts = _order_five(res.landmarks[list(FIVE_POINT)].astype(np.float64))
        faceness = 1.0 - 0.4 * (abs(rec.pose.yaw) / 90.0) ** 2
        five_lines.append(" ".join([name, *(f"{v:.3f}" for v in pts.ravel()),
                                    f"{faceness:.5f}"]) + "\n")
        name_of.setdefault(rec.media, []).append((name, rec))

    templates: list[tuple[int, int, list[int]]] = []   # (template id, subject, media)
    for subject in sorted(plan.media):
        media = plan.media[subject]
        parts = 2 if len(media) < 6 else max(3, len(media) // 3)
        for chunk in _split_media(rng, media, parts):
            templates.append((len(templates) + 1, subject, sorted(chunk)))
    tid_lines = [f"{name} {tid} {m}\n" for tid, _, media in templates for m in media
                 for name, _ in name_of[m]]

    genuine = [(a, b) for (a, sa, _), (b, sb, _) in combinations(templates, 2) if sa == sb]
    cross = [(a, b) for (a, sa, _), (b, sb, _) in combinations(templates, 2) if sa != sb]
    n_imp = min(len(cross), MAX_IMPOSTORS_PER_GENUINE * len(genuine))
    keep = np.sort(rng.choice(len(cross), n_imp, replace=False))
    pairs = sorted([(a, b, 1) for a, b in genuine] + [(*cross[i], 0) for i in keep])

    with atomic_write(meta / f"{PREFIX}_face_tid_mid.txt") as f:
        f.writelines(tid_lines)
    with atomic_write(meta / f"{PREFIX}_name_5pts_score.txt") as f:
        f.writelines(five_lines)
    with atomic_write(meta / f"{PREFIX}_template_pair_label.txt") as f:
        f.writelines(f"{a} {b} {y}\n" for a, b, y in pairs)

    first: dict[int, int] = {}
    for tid, subject, _ in templates:
        first.setdefault(subject, tid)
    galleries = {"G1": [], "G2": []}
    for k, subject in enumerate(sorted(first)):
        galleries["G1" if k % 2 == 0 else "G2"].append(first[subject])
    gallery_ids = set(first.values())
    roles = {**galleries, "probe_mixed": [t for t, _, _ in templates if t not in gallery_ids]}
    by_id = {tid: (subject, media) for tid, subject, media in templates}
    for role, ids in roles.items():
        name = (f"{PREFIX}_1N_{role}.csv" if role == "probe_mixed"
                else f"{PREFIX}_1N_gallery_{role}.csv")
        with atomic_write(meta / name) as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["TEMPLATE_ID", "SUBJECT_ID", "FILENAME"])
            for tid in ids:
                subject, media = by_id[tid]
                w.writerows([tid, subject, crop] for m in media for crop, _ in name_of[m])
    return {"subjects": len(plan.media), "images": n, "templates": len(templates),
            "pairs": len(pairs), "genuine": len(genuine), "impostor": n_imp,
            "gallery_G1": len(galleries["G1"]), "gallery_G2": len(galleries["G2"]),
            "probe_mixed": len(roles["probe_mixed"])}
