"""``ijba/``: the IJB-A layout, 1:1 verification and open-set 1:N search, 10 splits.

Each subject has still images (``images/img/N.jpg``, N = the media id) and videos whose
frames are ``images/frame/<media>_<frame>.png``. Every split draws its own test subjects;
templates are disjoint media subsets of one subject (so they mix stills, video frames and
yaws). 1:1 compares every pair of a test subject's templates (genuine) and a sample of
templates of different subjects (impostor); 1:N leaves some test subjects out of the
gallery so that search is open-set. Metadata files carry the 25-column header; comparison
files have none, as in the real release.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

from ..face3d import LANDMARK_NAMES
from ..fileio import atomic_write
from .config import SynthConfig
from .jobs import IdentityJob, IdentityResult, ImageJob
from .poses import wild_yaws, with_tilt
from .render import Pose

PART = 3
FOLDER = "ijba"
COLUMNS = ("TEMPLATE_ID", "SUBJECT_ID", "FILE", "MEDIA_ID", "SIGHTING_ID", "FRAME", "FACE_X",
           "FACE_Y", "FACE_WIDTH", "FACE_HEIGHT", "RIGHT_EYE_X", "RIGHT_EYE_Y", "LEFT_EYE_X",
           "LEFT_EYE_Y", "NOSE_BASE_X", "NOSE_BASE_Y", "FACE_YAW", "FOREHEAD_VISIBLE",
           "EYES_VISIBLE", "NOSE_MOUTH_VISIBLE", "INDOOR", "GENDER", "SKIN_TONE", "AGE",
           "FACIAL_HAIR")
_IDX = {name: i for i, name in enumerate(LANDMARK_NAMES)}
#: Frames of a video are this many frame numbers apart.
FRAME_STEP = 15


@dataclass(frozen=True)
class ImageRecord:
    subject: int          # SUBJECT_ID
    media: int            # MEDIA_ID
    file: str             # relative to ijba/images/
    frame: int | None
    sighting: int
    pose: Pose
    indoor: int
    job: int              # index of the subject's job
    image: int            # index of the image within the job


@dataclass(frozen=True)
class Plan:
    jobs: list[IdentityJob]
    records: list[ImageRecord]
    media: dict[int, list[int]]      # subject -> its media ids
    ages: dict[int, int]


def plan(config: SynthConfig) -> Plan:
    part = config.ijba
    jobs, records, media_of, ages = [], [], {}, {}
    media_id, sighting = 0, 0
    for i in range(part.subjects):
        rng = np.random.default_rng((config.seed, PART, i, 0))
        subject = i + 1
        ages[subject] = int(rng.integers(18, 75))
        base = with_tilt(rng, wild_yaws(rng, part.stills + part.videos), config.difficulty)
        images, media_of[subject] = [], []
        for m, pose in enumerate(base):
            media_id += 1
            media_of[subject].append(media_id)
            indoor = int(rng.random() < 0.5)
            if m < part.stills:
                frames = [(None, pose)]
            else:
                drift = np.cumsum(rng.normal(0, 3.0, (part.frames, 3)), axis=0)
                drift -= drift[0]
                frames = [(k * FRAME_STEP, Pose(
                    round(float(np.clip(pose.yaw + dy, -90, 90)), 3), round(pose.pitch + dp, 3),
                    round(pose.roll + 0.3 * dr, 3))) for k, (dy, dp, dr) in enumerate(drift)]
            scene = (config.seed, PART, i, 10 ** 6 + m) if m >= part.stills else None
            for frame, p in frames:
                sighting += 1
                file = f"img/{media_id}.jpg" if frame is None else f"frame/{media_id}_{frame}.png"
                records.append(ImageRecord(subject, media_id, file, frame, sighting, p, indoor,
                                           i, len(images)))
                images.append(ImageJob(f"{FOLDER}/images/{file}", p,
                                       (config.seed, PART, i, len(images) + 1), scene=scene))
        jobs.append(IdentityJob((config.seed, PART, i), tuple(images)))
    return Plan(jobs, records, media_of, ages)


@dataclass
class _Templates:
    next_id: int = 1

    def new(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def _split_media(rng, media: list[int], parts: int) -> list[list[int]]:
    shuffled = [int(m) for m in rng.permutation(media)]
    return [list(c) for c in np.array_split(shuffled, parts) if len(c)]


def _point(res, name: str) -> tuple[float | None, float | None]:
    """A landmark's pixel position, or empty when the head hides it (as IJB-A leaves it)."""
    i = _IDX[name]
    return (res.landmarks[i, 0], res.landmarks[i, 1]) if res.visible[i] else (None, None)


def _fmt(value, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


class _Rows:
    """Formats metadata rows of templates from the plan and the rendered results."""

    def __init__(self, plan: Plan, results: list[IdentityResult]):
        self.plan, self.results = plan, results
        self.by_media: dict[int, list[ImageRecord]] = {}
        for rec in plan.records:
            self.by_media.setdefault(rec.media, []).append(rec)

    def rows(self, template: int, media: list[int]) -> list[list[str]]:
        out = []
        for m in sorted(media):
            for rec in self.by_media[m]:
                ident = self.results[rec.job]
                res = ident.images[rec.image]
                vis = res.visible
                reye, leye, nose = (_point(res, name) for name in ("pupil_r", "pupil_l",
                                                                    "subnasale"))
                x, y, w, h = (float(v) for v in res.box)
                eyes = int(bool(vis[_IDX["pupil_r"]] or vis[_IDX["pupil_l"]])
                           and not res.occluded_eyes)
                out.append([
                    str(template), str(rec.subject), rec.file, str(rec.media), str(rec.sighting),
                    "" if rec.frame is None else str(rec.frame), _fmt(x), _fmt(y), _fmt(w),
                    _fmt(h), _fmt(reye[0]), _fmt(reye[1]), _fmt(leye[0]), _fmt(leye[1]),
                    _fmt(nose[0]), _fmt(nose[1]), _fmt(rec.pose.yaw, 3),
                    str(int(not res.covered_forehead)), str(eyes),
                    str(int(vis[_IDX["nose_tip"]] and not res.occluder)), str(rec.indoor),
                    str(int(ident.masculine > 0.5)), str(ident.skin_tone),
                    str(self.plan.ages[rec.subject]), str(3 if ident.beard else 0)])
        return out


def _write_metadata(path: Path, rows: list[list[str]]) -> None:
    with atomic_write(path) as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        w.writerows(rows)


def write_protocol(root: Path, config: SynthConfig, plan: Plan,
                   results: list[IdentityResult]) -> dict[str, object]:
    part = config.ijba
    base = root / FOLDER
    fmt = _Rows(plan, results)
    ids = _Templates()
    subjects = sorted(plan.media)
    stats = {"splits": part.splits, "genuine": [], "impostor": [], "gallery": [], "probe": [],
             "probe_unmated": []}
    for split in range(1, part.splits + 1):
        rng = np.random.default_rng((config.seed, PART, 10 ** 6, split))
        order = [int(s) for s in rng.permutation(subjects)]
        n_test = min(len(order) - 1, max(3, int(round(part.test_fraction * len(order)))))
        test, train = sorted(order[:n_test]), sorted(order[n_test:])
        train_rows = []
        for s in train:
            train_rows += fmt.rows(ids.new(), plan.media[s])

        # 1:1 verification: disjoint templates of about three media each (at least two per
        # subject); at full size that gives about the real 1,700 genuine pairs per split.
        templates: list[tuple[int, int]] = []   # (template id, subject)
        verify_rows = []
        for s in test:
            n_media = len(plan.media[s])
            chunks = _split_media(rng, plan.media[s], 2 if n_media < 6 else max(3, n_media // 3))
            for chunk in chunks:
                tid = ids.new()
                templates.append((tid, s))
                verify_rows += fmt.rows(tid, chunk)
        genuine = [(a, b) for (a, sa), (b, sb) in combinations(templates, 2) if sa == sb]
        cross = np.array([(a, b) for (a, sa), (b, sb) in combinations(templates, 2) if sa != sb])
        n_imp = min(len(cross), part.impostors_per_genuine * len(genuine))
        impostor = [tuple(r) for r in cross[np.sort(rng.choice(len(cross), n_imp, replace=False))]]
        folder = base / "IJB-A_11_sets" / f"split{split}"
        _write_metadata(folder / f"verify_metadata_{split}.csv", verify_rows)
        with atomic_write(folder / f"verify_comparisons_{split}.csv") as f:
            f.writelines(f"{a},{b}\n" for a, b in sorted(genuine + impostor))
        _write_metadata(folder / f"train_{split}.csv", train_rows)
        stats["genuine"].append(len(genuine))
        stats["impostor"].append(len(impostor))

        # 1:N search: one gallery template per gallery subject; probes for every test subject.
        n_out = min(len(test) - 1, int(round(part.gallery_left_out * len(test))))
        left_out = set(int(s) for s in rng.choice(test, max(n_out, 1 if len(test) > 2 else 0),
                                                   replace=False))
        gallery_rows, probe_rows, n_gallery, n_probe, n_unmated = [], [], 0, 0, 0
        for s in test:
            media = [int(m) for m in rng.permutation(plan.media[s])]
            if s in left_out:
                probe_rows += fmt.rows(ids.new(), media)
                n_probe += 1
                n_unmated += 1
                continue
            half = (len(media) + 1) // 2
            gallery_rows += fmt.rows(ids.new(), media[:half])
            probe_rows += fmt.rows(ids.new(), media[half:])
            n_gallery += 1
            n_probe += 1
        folder = base / "IJB-A_1N_sets" / f"split{split}"
        _write_metadata(folder / f"search_gallery_{split}.csv", gallery_rows)
        _write_metadata(folder / f"search_probe_{split}.csv", probe_rows)
        _write_metadata(folder / f"train_{split}.csv", train_rows)
        stats["gallery"].append(n_gallery)
        stats["probe"].append(n_probe)
        stats["probe_unmated"].append(n_unmated)
    return stats
