"""``cfp/``: the CFP original layout with the FF and FP protocols.

Every identity has ``frontal`` images with |yaw| < ``frontal_max_yaw`` and ``profile``
images with |yaw| in ``profile_yaw``. Identities are dealt into ``splits`` identity-disjoint
groups; each split lists equally many same and different pairs drawn without repetition
inside its group, as in the real release. Beyond the real layout, ``Data/pose.csv`` holds
the ground-truth pose of every image (path relative to ``cfp/``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..fileio import atomic_write
from .config import SynthConfig
from .jobs import IdentityJob, ImageJob
from .poses import uniform_yaws, with_tilt

PART = 2
FOLDER = "cfp"
KINDS = ("frontal", "profile")


def identity_folder(index: int, count: int) -> str:
    return f"{index + 1:0{max(3, len(str(count)))}d}"


def plan(config: SynthConfig) -> list[IdentityJob]:
    part, jobs = config.cfp, []
    for i in range(part.identities):
        rng = np.random.default_rng((config.seed, PART, i, 0))
        folder = identity_folder(i, part.identities)
        yaws = np.concatenate([
            uniform_yaws(rng, part.frontal, 0.0, part.frontal_max_yaw),
            uniform_yaws(rng, part.profile, *part.profile_yaw)])
        poses = with_tilt(rng, yaws, config.difficulty)
        names = [(kind, k) for kind, n in zip(KINDS, (part.frontal, part.profile), strict=True)
                 for k in range(1, n + 1)]
        images = tuple(
            ImageJob(f"{FOLDER}/Data/Images/{folder}/{kind}/{k:02d}.jpg", pose,
                     (config.seed, PART, i, j + 1),
                     fiducials=f"{FOLDER}/Data/Fiducials/{folder}/{kind}/{k:02d}.txt")
            for j, ((kind, k), pose) in enumerate(zip(names, poses, strict=True)))
        jobs.append(IdentityJob((config.seed, PART, i), images))
    return jobs


def _sample(rng: np.random.Generator, candidates: np.ndarray, n: int) -> np.ndarray:
    pick = rng.choice(len(candidates), size=min(n, len(candidates)), replace=False)
    rows = candidates[np.sort(pick)]
    return rows[np.lexsort((rows[:, 1], rows[:, 0]))]


def _pairs(ids: np.ndarray, per_a: int, per_b: int, same: bool, ordered: bool) -> np.ndarray:
    """All (a, b) 1-based list indices between images of ``ids`` (0-based identities).

    Image ``k`` of identity ``i`` has index ``i * per + k + 1`` in its list.
    """
    ka, kb = np.meshgrid(np.arange(per_a), np.arange(per_b), indexing="ij")
    rows = []
    for pos, i in enumerate(ids):
        partners = [i] if same else ids[pos + 1:] if not ordered else ids[ids != i]
        for j in partners:
            a = i * per_a + ka.ravel() + 1
            b = j * per_b + kb.ravel() + 1
            keep = a < b if (same and not ordered) else np.ones(a.size, bool)
            rows.append(np.stack([a[keep], b[keep]], 1))
    return np.concatenate(rows) if rows else np.zeros((0, 2), np.int64)


def write_protocol(root: Path, config: SynthConfig) -> dict:
    """Write list_names, pose.csv, the pair lists and the split files below ``root/cfp``."""
    part = config.cfp
    base = root / FOLDER
    n = part.identities
    folders = [identity_folder(i, n) for i in range(n)]
    with atomic_write(base / "Data" / "list_names.txt") as f:
        f.writelines(f"Synthetic Person {name}\n" for name in folders)
    for letter, kind, per in (("F", "frontal", part.frontal), ("P", "profile", part.profile)):
        with atomic_write(base / "Protocol" / f"Pair_list_{letter}.txt") as f:
            f.writelines(f"{i * per + k} ../Data/Images/{folder}/{kind}/{k:02d}.jpg\n"
                         for i, folder in enumerate(folders) for k in range(1, per + 1))

    rng = np.random.default_rng((config.seed, PART, 10 ** 6))
    groups = np.array_split(rng.permutation(n), part.splits)
    wanted = part.same_pairs()
    # pairs written per protocol: a small split may hold fewer candidates than wanted, and
    # FF and FP run short differently
    counts = {"splits": part.splits, "pairs": {p: {"same": 0, "diff": 0} for p in ("FF", "FP")}}
    for proto in ("FF", "FP"):
        per_b = part.frontal if proto == "FF" else part.profile
        for s, ids in enumerate(groups, start=1):
            ids = np.sort(ids)
            same = _pairs(ids, part.frontal, per_b, True, ordered=proto == "FP")
            diff = _pairs(ids, part.frontal, per_b, False, ordered=proto == "FP")
            n_pairs = min(wanted, len(same), len(diff))
            counts["pairs"][proto]["same"] += n_pairs
            counts["pairs"][proto]["diff"] += n_pairs
            folder = base / "Protocol" / "Split" / proto / f"{s:02d}"
            for name, cand in (("same", same), ("diff", diff)):
                rows = _sample(rng, cand, n_pairs)
                with atomic_write(folder / f"{name}.txt") as f:
                    f.writelines(f"{a},{b}\n" for a, b in rows)
    return counts


def write_poses(root: Path, jobs: list[IdentityJob]) -> None:
    with atomic_write(root / FOLDER / "Data" / "pose.csv") as f:
        f.write("path,yaw,pitch,roll\n")
        for job in jobs:
            for image in job.images:
                p = image.pose
                f.write(f"{image.path[len(FOLDER) + 1:]},{p.yaw:.3f},{p.pitch:.3f},{p.roll:.3f}\n")


#: insightface-style verification files written beside the CFP part (protocols cfp-*-bin).
BIN_FILES = {"FP": "cfp_fp.bin", "FF": "cfp_ff.bin"}


def write_bins(root: Path) -> dict:
    """``cfp_fp.bin`` and ``cfp_ff.bin`` at ``root`` from the CFP part just written.

    Built as insightface builds its ``.bin`` files: every image aligned to the ArcFace
    112x112 template from its five points (here the generator's own landmarks, the
    alignment a CFP run gives an arcface112 model) and stored as a JPEG, so an arcface112
    model scores the ``.bin`` as it scores CFP. Pairs go split by split (each split's same
    pairs, then its diff pairs), so the contiguous 10-fold blocks that insightface's
    evaluator uses are exactly CFP's official splits.
    """
    from ..readers import cfp as cfp_reader
    from ..readers.insightface_bin import write_bin

    sets = {name: cfp_reader.read(root / "cfp", pairs=pairs, folds=None)
            for pairs, name in BIN_FILES.items()}
    crop_of = _aligned_jpegs([ev.samples.samples for ev in sets.values()])
    out = {}
    for name, ev in sets.items():
        comps = ev.comparisons.sort_values(["fold", "label"], ascending=[True, False],
                                           kind="stable")
        path_of = dict(zip(ev.samples.samples["template"], ev.samples.samples["path"],
                           strict=True))
        blobs = []
        for a, b in zip(comps["a"], comps["b"], strict=True):
            blobs += [crop_of[path_of[a]], crop_of[path_of[b]]]
        write_bin(root / name, blobs, comps["label"].astype(bool).tolist())
        out[name] = {"pairs": len(comps), "genuine": int(comps["label"].sum())}
    return out


def _aligned_jpegs(frames) -> dict[str, bytes]:
    """Image path -> its arcface112 crop as JPEG bytes (OpenCV's default quality, as
    insightface's tools encode), each image aligned once whatever the sets sharing it."""
    import cv2
    import pandas as pd

    from ..align.api import align_samples
    from ..readers.insightface_bin import ALIGNED_TEMPLATE
    from ..threads import cpu_threads

    samples = pd.concat(frames, ignore_index=True).drop_duplicates("path", ignore_index=True)
    # 112 px warps gain nothing from torch's threads, and on a busy CPU their OpenMP spin
    # waits cost 0.7 s a batch: 1,400 images took 27 s with 2 threads, 2.8 s with one
    with cpu_threads(1):
        result = align_samples(samples, ALIGNED_TEMPLATE, device="cpu")
    out = {}
    for path, crop in zip(samples["path"], result.crops, strict=True):
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(crop.transpose(1, 2, 0)[..., ::-1]))
        if not ok:
            raise RuntimeError(f"cannot encode the aligned crop of {path}")
        out[path] = buf.tobytes()
    return out
