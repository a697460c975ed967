"""Writers of tiny datasets in the real on-disk formats, for the reader and protocol tests.

Each writer returns what a correct reader must find, so tests compare against numbers
fixed here rather than against the reader's own output.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import cv2
import numpy as np

IJBA_HEADER_25 = (
    "TEMPLATE_ID,SUBJECT_ID,FILE,MEDIA_ID,SIGHTING_ID,FRAME,FACE_X,FACE_Y,FACE_WIDTH,"
    "FACE_HEIGHT,RIGHT_EYE_X,RIGHT_EYE_Y,LEFT_EYE_X,LEFT_EYE_Y,NOSE_BASE_X,NOSE_BASE_Y,"
    "FACE_YAW,FOREHEAD_VISIBLE,EYES_VISIBLE,NOSE_MOUTH_VISIBLE,INDOOR,GENDER,SKIN_TONE,AGE,"
    "FACIAL_HAIR").split(",")


def tiny_image(seed: int, ext: str = ".jpg", size: int = 8) -> bytes:
    rng = np.random.default_rng(seed)
    ok, buf = cv2.imencode(ext, rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    assert ok
    return buf.tobytes()


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- CFP

def write_cfp(root: Path, subjects: int = 4, frontal: int = 3, profile: int = 2, folds: int = 2,
              fiducial_dir: str | None = "Fiducials", points: int = 22, pose: bool = True
              ) -> dict:
    """CFP layout. Subject s (1-based) goes to fold ``(s - 1) % folds + 1``. Per subject:
    FP same (F first frontal, P first profile), FP diff (its first frontal vs the next
    subject of its fold's first profile); FF same (frontal 1, 2), FF diff (frontal 1 vs the
    next subject's frontal 1). Yaw: frontal i -> 3*i, profile i -> +-(70 + i)."""
    f_index, p_index = {}, {}
    f_lines, p_lines, pose_rows = [], [], ["path,yaw,pitch,roll"]
    for s in range(1, subjects + 1):
        sid = f"{s:03d}"
        for kind, n, table, lines in (("frontal", frontal, f_index, f_lines),
                                      ("profile", profile, p_index, p_lines)):
            for i in range(1, n + 1):
                rel = f"Data/Images/{sid}/{kind}/{i:02d}.jpg"
                _write(root / rel, tiny_image(s * 100 + i + (50 if kind == "profile" else 0)))
                table[(s, i)] = len(table) + 1
                lines.append(f"{table[(s, i)]} ../{rel}")
                if fiducial_dir:
                    pts = "\n".join(f"{10 + j}.5,{20 + j}" for j in range(points))
                    _write(root / "Data" / fiducial_dir / sid / kind / f"{i:02d}.txt", pts + "\n")
                yaw = 3.0 * i if kind == "frontal" else (70.0 + i) * (-1) ** i
                pose_rows.append(f"{rel},{yaw},1.5,-0.5")
    _write(root / "Protocol" / "Pair_list_F.txt", "\n".join(f_lines) + "\n")
    _write(root / "Protocol" / "Pair_list_P.txt", "\n".join(p_lines) + "\n")
    _write(root / "Data" / "list_names.txt", "\n".join(f"name{s}" for s in
                                                       range(1, subjects + 1)) + "\n")
    if pose:
        _write(root / "Data" / "pose.csv", "\n".join(pose_rows) + "\n")
    for fold in range(1, folds + 1):
        members = [s for s in range(1, subjects + 1) if (s - 1) % folds + 1 == fold]
        nxt = {s: members[(k + 1) % len(members)] for k, s in enumerate(members)}
        same_fp = [f"{f_index[(s, 1)]},{p_index[(s, 1)]}" for s in members]
        diff_fp = [f"{f_index[(s, 1)]},{p_index[(nxt[s], 1)]}" for s in members]
        same_ff = [f"{f_index[(s, 1)]},{f_index[(s, 2)]}" for s in members]
        diff_ff = [f"{f_index[(s, 1)]},{f_index[(nxt[s], frontal)]}" for s in members]
        for name, fp, ff in (("same.txt", same_fp, same_ff), ("diff.txt", diff_fp, diff_ff)):
            _write(root / "Protocol" / "Split" / "FP" / f"{fold:02d}" / name, "\n".join(fp) + "\n")
            _write(root / "Protocol" / "Split" / "FF" / f"{fold:02d}" / name, "\n".join(ff) + "\n")
    return {"subjects": subjects, "frontal": subjects * frontal, "profile": subjects * profile,
            "pairs_per_fold": 2 * (subjects // folds), "folds": folds}


# --------------------------------------------------------------------------- insightface .bin

def _py2_pickle(blobs: list[bytes], issame: list[bool]) -> bytes:
    """What Python 2's ``pickle.dump((bins, issame), f, protocol=2)`` writes: each blob as a
    BINSTRING (a py2 ``str``), which Python 3 reads only with ``encoding="bytes"``."""
    out = [pickle.PROTO + b"\x02", pickle.EMPTY_LIST, pickle.MARK]
    for blob in blobs:
        out.append(pickle.BINSTRING + struct.pack("<i", len(blob)) + blob)
    out += [pickle.APPENDS, pickle.EMPTY_LIST, pickle.MARK]
    out += [pickle.NEWTRUE if s else pickle.NEWFALSE for s in issame]
    out += [pickle.APPENDS, pickle.TUPLE2, pickle.STOP]
    return b"".join(out)


def write_bin(path: Path, n_pairs: int = 10, py2: bool = False) -> tuple[list[bytes], list[bool]]:
    blobs = [tiny_image(i) for i in range(2 * n_pairs)]
    issame = [i % 2 == 0 for i in range(n_pairs)]
    if py2:
        _write(path, _py2_pickle(blobs, issame))
    else:
        _write(path, pickle.dumps((blobs, issame), protocol=4))
    return blobs, issame


# --------------------------------------------------------------------------- IJB-A

def ijba_rows(split: int, subjects: int = 4, templates_per_subject: int = 3) -> list[dict]:
    """Metadata rows: template ``100*split + 10*s + t``; each template has one still
    (img/<tid>.jpg) and two frames of one video (frame/<media>_<f>.png)."""
    rows = []
    for s in range(1, subjects + 1):
        for t in range(templates_per_subject):
            tid = 100 * split + 10 * s + t
            media = 1000 + tid
            base = {"SUBJECT_ID": str(s), "TEMPLATE_ID": str(tid), "SIGHTING_ID": "1"}
            rows.append({**base, "FILE": f"img/{tid}.jpg", "MEDIA_ID": str(tid), "FRAME": "",
                         "FACE_YAW": str(-10.0 * t)})
            for frame in (1, 2):
                rows.append({**base, "FILE": f"frame/{media}_{frame}.png", "MEDIA_ID": str(media),
                             "FRAME": str(frame), "FACE_YAW": str(40.0 + 20 * t)})
    for r in rows:
        r.update(FACE_X="2", FACE_Y="3", FACE_WIDTH="5", FACE_HEIGHT="6", RIGHT_EYE_X="3",
                 RIGHT_EYE_Y="4", LEFT_EYE_X="6", LEFT_EYE_Y="4", NOSE_BASE_X="4.5",
                 NOSE_BASE_Y="6")
    return rows


def metadata_csv(rows: list[dict], columns: int = 25) -> str:
    header = IJBA_HEADER_25[:columns]
    lines = [",".join(header)]
    lines += [",".join(r.get(c, "") for c in header) for r in rows]
    return "\n".join(lines) + "\n"


def write_ijba(root: Path, splits: int = 2, columns: int = 25, subjects: int = 4) -> dict:
    """Both set folders. 1:1 per split: genuine = templates t0-t1 of each subject, impostor =
    t0 of s vs t0 of s+1. 1:N: gallery = t0 of subjects 1..n-1 (the last is left out:
    open set), probes = t1 of every subject."""
    expected = {"pairs": {}, "first_pair": {}}
    for k in range(1, splits + 1):
        rows = ijba_rows(k, subjects)
        for r in rows:
            suffix = Path(r["FILE"]).suffix
            _write(root / "images" / r["FILE"], tiny_image(int(r["TEMPLATE_ID"]), suffix))
        d11 = root / "IJB-A_11_sets" / f"split{k}"
        _write(d11 / f"verify_metadata_{k}.csv", metadata_csv(rows, columns))
        pairs = [(100 * k + 10 * s, 100 * k + 10 * s + 1) for s in range(1, subjects + 1)]
        pairs += [(100 * k + 10 * s, 100 * k + 10 * (s % subjects + 1))
                  for s in range(1, subjects + 1)]
        _write(d11 / f"verify_comparisons_{k}.csv", "\n".join(f"{a},{b}" for a, b in pairs) + "\n")
        _write(d11 / f"train_{k}.csv", metadata_csv(rows[:1], columns))
        expected["pairs"][k] = pairs
        expected["first_pair"][k] = pairs[0]
        d1n = root / "IJB-A_1N_sets" / f"split{k}"
        gallery = [r for r in rows if r["TEMPLATE_ID"].endswith("0")
                   and int(r["SUBJECT_ID"]) < subjects]
        probe = [r for r in rows if r["TEMPLATE_ID"].endswith("1")]
        _write(d1n / f"search_gallery_{k}.csv", metadata_csv(gallery, columns))
        _write(d1n / f"search_probe_{k}.csv", metadata_csv(probe, columns))
        _write(d1n / f"train_{k}.csv", metadata_csv(rows[:1], columns))
    expected.update(rows_per_split=len(ijba_rows(1, subjects)), subjects=subjects,
                    templates_per_split=3 * subjects)
    return expected


# --------------------------------------------------------------------------- manifest

def write_manifest(root: Path, subjects: int = 6, per_subject: int = 4, name: str = "metadata.csv",
                   yaws=(0.0, 20.0, 45.0, 80.0)) -> Path:
    """``root/<subject>/<n>.jpg`` and a manifest with landmarks and boxes; yaw cycles
    through ``yaws`` with alternating sign."""
    lines = ["path,subject,yaw,pitch,roll,landmarks,box"]
    for s in range(subjects):
        for i in range(per_subject):
            rel = f"s{s:02d}/{i:04d}.jpg"
            _write(root / rel, tiny_image(s * 1000 + i))
            yaw = yaws[i % len(yaws)] * (1 if (s + i) % 2 else -1)
            lines.append(f"{rel},s{s:02d},{yaw},2,1,1 2 3 4 5 6,0 0 8 8")
    return _write(root / name, "\n".join(lines) + "\n")


def test_py2_pickle_needs_bytes_encoding():
    """The hand-written Python 2 pickle is what the .bin trap is about: the default ASCII
    decoding fails on JPEG bytes, ``encoding="bytes"`` reads them unchanged."""
    blobs, issame = [tiny_image(0), tiny_image(1)], [True]
    raw = _py2_pickle(blobs, issame)
    try:
        pickle.loads(raw)
    except UnicodeDecodeError:
        pass
    else:  # pragma: no cover
        raise AssertionError("a py2 str pickle of JPEG bytes must not load as ASCII")
    got_blobs, got_same = pickle.loads(raw, encoding="bytes")
    assert got_blobs == blobs and got_same == [True]


# --------------------------------------------------------------------------- IJB-B / IJB-C

def write_ijbc(root: Path, prefix: str = "ijbc", galleries: tuple[str, str] = ("G1", "G2"),
               subjects: int = 4) -> dict:
    """insightface's release layout (``loose_crop/``, ``meta/<prefix>_*``). Subject s has
    templates 10s and 10s+1, each of two media of two crops; template 10s is in gallery
    ``galleries[(s-1) % 2]`` except for the last subject (left out: open set), every other
    template is a mixed probe. Every template pair is listed (genuine iff same subject)."""
    faces, five, templates = [], [], []
    for s in range(1, subjects + 1):
        for tid in (10 * s, 10 * s + 1):
            templates.append((tid, s))
            for media in (100 * tid, 100 * tid + 1):
                for _ in range(2):
                    name = f"{len(faces) + 1}.jpg"
                    _write(root / "loose_crop" / name, tiny_image(len(faces), size=16))
                    faces.append(f"{name} {tid} {media}")
                    five.append(f"{name} 5.1 6 10.9 6 8 8.5 5.5 11 10.5 11 0.9")
    pairs = [f"{a} {b} {int(sa == sb)}" for i, (a, sa) in enumerate(templates)
             for b, sb in templates[i + 1:]]
    meta = root / "meta"
    for name, lines in (("face_tid_mid.txt", faces), ("name_5pts_score.txt", five),
                        ("template_pair_label.txt", pairs)):
        _write(meta / f"{prefix}_{name}", "\n".join(lines) + "\n")
    roles: dict[str, list] = {f"gallery_{g}": [] for g in galleries} | {"probe_mixed": []}
    for tid, s in templates:
        gallery = tid % 10 == 0 and s < subjects
        roles[f"gallery_{galleries[(s - 1) % 2]}" if gallery else "probe_mixed"].append((tid, s))
    for role, rows in roles.items():
        _write(meta / f"{prefix}_1N_{role}.csv", "\n".join(
            ["TEMPLATE_ID,SUBJECT_ID,FILENAME"] + [f"{t},{s},img/{t}.jpg" for t, s in rows])
            + "\n")
    return {"images": len(faces), "templates": len(templates), "subjects": subjects,
            "pairs": len(pairs), "genuine": subjects}
