"""DREAM stitched onto a frozen pretrained stem (the packaged SFace, any ONNX file): the
paper's stitch experiment on real models, from the library, ``bench run`` and ``compare``.
Skipped without onnxruntime or SFace (extras ``onnx``, ``sface``)."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from bench.cli import main
from bench.errors import ConfigError, DataError
from bench.models import create_model
from bench.runner.compare import compare_modes
from bench.runner.run import RunConfig, run_benchmark
from bench.train import preset, train

pytest.importorskip("onnxruntime")

QUICK = {"stitch.iterations": 50}


def _config(**changes):
    return preset("cpu", "cpu", progress=False, workers=1, **{**QUICK, **changes})


def test_stitch_trains_the_block_on_the_frozen_packaged_stem(sface_available, tiny_synth,
                                                             tmp_path):
    kw = {"out_dir": tmp_path / "train", "config": _config(), "cache_dir": tmp_path / "cache"}
    result = train("sface-dream", "stitch", tiny_synth / "train", **kw)
    assert result.mode == "stitch" and result.upstream is None and not result.reused
    m = result.metrics
    assert m["pairs"] > 0 and m["distance_after"] < m["distance_before"]
    log = json.loads(result.log.read_text())
    assert log["frozen_stem"]["model"] == "sface" and len(log["frozen_stem"]["sha256"]) == 64
    model, sface = result.load(), create_model("sface")
    # SFace's own 112x112 input, although the CPU preset trains its stems at 64x64
    assert model.preprocess.input_size == sface.preprocess.input_size == (112, 112)
    x = torch.rand(3, 3, 112, 112) * 255
    assert torch.equal(model.stem(x), sface.stem(x))  # the stem is the packaged one, as is
    assert train("sface-dream", "stitch", tiny_synth / "train", **kw).reused


@pytest.mark.parametrize("mode", ["naive", "end2end", "retrain"])
def test_modes_that_would_train_a_frozen_stem_are_refused(tiny_synth, tmp_path, mode):
    with pytest.raises(ConfigError, match="--mode stitch"):
        train("sface-dream", mode, tiny_synth / "train", out_dir=tmp_path, config=_config())


def test_a_block_stitched_on_one_model_file_refuses_another(sface_available, tiny_synth,
                                                           tmp_path):
    import onnx

    from bench.models.weights import save_checkpoint

    model = create_model("sface-dream")
    ckpt = save_checkpoint(model, tmp_path / "block.pt")
    other = tmp_path / "other.onnx"
    proto = onnx.load(model.config["onnx_path"])
    onnx.save(proto, str(other))  # the same file under another name loads fine ...
    assert create_model("sface-dream", weights=ckpt, path=str(other)).dream is not None
    proto.doc_string = "another release"  # ... another file does not
    onnx.save(proto, str(other))
    with pytest.raises(ConfigError, match="stitch the block again"):
        create_model("sface-dream", weights=ckpt, path=str(other))


def _cfg(tiny_synth, tmp_path, **kw) -> RunConfig:
    return RunConfig(**{"protocol": "cfp-fp", "model": "sface-dream", "data": str(tiny_synth),
                        "device": "cpu", "out": str(tmp_path / "results"), "n_boot": 20,
                        "cache_dir": str(tmp_path / "cache"), "progress": False,
                        "train_changes": {**QUICK, "workers": 1}, **kw})


def test_bench_run_stitches_a_packaged_dream_model_by_default(sface_available, tiny_synth,
                                                              tmp_path):
    outcome = run_benchmark(_cfg(tiny_synth, tmp_path), echo=lambda s: None)
    model = outcome.result["model"]
    assert model["mode"] == "stitch" and model["training"]["upstream"] is None
    assert model["training"]["metrics"]["distance_after"] < \
        model["training"]["metrics"]["distance_before"]


def test_compare_a_packaged_stem_with_its_stitched_block(sface_available, tiny_synth, tmp_path):
    base = _cfg(tiny_synth, tmp_path, model="sface")
    outcome = compare_modes("cfp-fp", "sface", None, base, echo=lambda s: None)
    assert set(outcome.runs) == {"naive", "stitch"}  # every mode a frozen stem has
    naive = json.loads((outcome.runs["naive"] / "result.json").read_text())
    assert naive["model"]["name"] == "sface" and naive["model"]["mode"] == "pretrained"
    assert set(outcome.table["mode"]) == {"naive", "stitch"}
    with pytest.raises(ConfigError, match="--modes stitch"):
        compare_modes("cfp-fp", "sface", ["end2end"], base, echo=lambda s: None)


def test_any_onnx_file_gets_a_stitched_block_from_the_cli(sface_available, tiny_synth,
                                                         tmp_path):
    import shutil

    # a real embedding model as a user's own ONNX file (an untrained network's features
    # are of no scale a stitch recipe is made for)
    path = tmp_path / "my_model.onnx"
    shutil.copy(create_model("sface").config["onnx_path"], path)
    res = CliRunner().invoke(main, [
        "compare", "-p", "cfp-fp", "--stem", "onnx", "--weights", str(path), "--data",
        str(tiny_synth), "--device", "cpu", "--out", str(tmp_path / "results"), "--n-boot",
        "20", "--quiet"],
        env={"BENCH_CACHE": str(tmp_path / "cache")})
    assert res.exit_code == 0, res.output
    report = json.loads(next((tmp_path / "results/compare").glob("*/compare.json")).read_text())
    assert report["modes"] == ["naive", "stitch"]
    stitched = json.loads((tmp_path / "results/runs" / report["runs"]["stitch"].split("/")[-1]
                           / "result.json").read_text())
    assert stitched["model"]["config"]["onnx_path"] == str(path)


def test_stitch_a_folder_of_photos_with_the_yaw_file_bench_yaw_writes(sface_available,
                                                                       tiny_synth, tmp_path):
    """Real training data is a folder of photos without yaw: `bench yaw` writes a yaw file,
    and training (bench train, and the training set of run/compare) takes it, as
    evaluation does, instead of asking for a hand-merged manifest."""
    import cv2
    from packaged_files import sample_photo

    image = cv2.imread(str(sample_photo()))
    rows = ["path,yaw"]
    for i, (x, y, w, h) in enumerate([(61, 269, 106, 128), (267, 152, 105, 126),
                                      (466, 267, 102, 145)]):
        crop = image[max(0, y - h // 2):y + 3 * h // 2, max(0, x - w // 2):x + 3 * w // 2]
        (tmp_path / "photos" / f"p{i}").mkdir(parents=True)
        for j, view in enumerate((crop, crop[:, ::-1], cv2.flip(crop, 0))):
            cv2.imwrite(str(tmp_path / "photos" / f"p{i}" / f"{j}.jpg"), view)
            rows.append(f"photos/p{i}/{j}.jpg,{(0, 5, 80)[j]}")  # made-up poses
    (tmp_path / "yaw.csv").write_text("\n".join(rows) + "\n")
    res = CliRunner().invoke(main, [
        "train", "--model", "sface-dream", "--mode", "stitch", "--data",
        str(tmp_path / "photos"), "--yaw-file", str(tmp_path / "yaw.csv"), "--device", "cpu",
        "--no-progress", "--set", "stitch.iterations=20", "--json"],
        env={"BENCH_CACHE": str(tmp_path / "cache")})
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index("{"):])
    assert out["metrics"]["pairs"] == 3 and out["metrics"]["identities"] == 3
    outcome = run_benchmark(_cfg(tiny_synth, tmp_path, train_data=str(tmp_path / "photos"),
                                 train_yaw_file=str(tmp_path / "yaw.csv")), echo=lambda s: None)
    training = outcome.result["model"]["training"]
    assert training["metrics"]["pairs"] == 3 and training["data_hash"] != ""


def test_missing_yaw_fails_before_any_training(sface_available, tiny_synth, tmp_path):
    """A DREAM model on data without yaw failed only after its block was trained (and, in
    compare, after the naive stem was trained and scored); with a yaw file given, it still
    said to pass one."""
    from test_runner_real_models import _unknown_scheme_copy

    data = _unknown_scheme_copy(tiny_synth / "cfp", tmp_path / "data" / "cfp")
    (data / "Data/pose.csv").unlink()
    cfg = _cfg(tmp_path / "data", tmp_path, train_data=str(tiny_synth / "train"))
    with pytest.raises(DataError, match="bench yaw") as err:
        run_benchmark(cfg, echo=lambda s: None)
    assert not (tmp_path / "cache" / "train").exists()  # nothing was trained
    first = sorted((data / "Protocol").glob("Pair_list_F.txt"))[0].read_text().split()[1]
    yaw_file = tmp_path / "yaw.csv"
    yaw_file.write_text(f"path,yaw\n{(data / 'Protocol' / first).resolve()},0\n")
    with pytest.raises(DataError, match="yaw.csv gives no yaw for") as err:
        run_benchmark(_cfg(tmp_path / "data", tmp_path, yaw_file=str(yaw_file),
                           train_data=str(tiny_synth / "train")), echo=lambda s: None)
    assert "pass --yaw-file" not in str(err.value)


def test_two_stitched_checkpoints_are_two_models(sface_available, tiny_synth, tmp_path):
    """A stitched checkpoint given with --weights was identified by its stem's ONNX file
    (the hash the model's config carries), so two different blocks shared one
    checkpoint_sha256: one feature cache entry, one run id, the second run served the
    first one's features."""
    from bench.fileio import sha256_file
    from bench.models.weights import save_checkpoint

    results = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        ckpt = save_checkpoint(create_model("sface-dream"), tmp_path / f"block{seed}.pt")
        outcome = run_benchmark(_cfg(tiny_synth, tmp_path, weights=str(ckpt),
                                     train_changes={}),  # a given block trains nothing
                                echo=lambda s: None)
        assert outcome.result["model"]["mode"] == "pretrained"
        assert outcome.result["model"]["checkpoint_sha256"] == sha256_file(ckpt)
        results.append(outcome)
    assert results[0].run_dir != results[1].run_dir
    assert not results[1].scores["score"].equals(results[0].scores["score"])


def test_a_stitched_block_is_not_reused_when_the_stem_s_template_changes(sface_available,
                                                                         monkeypatch):
    """Bug: the key of a block stitched onto a frozen stem named the stem's file, not its
    alignment template's definition: when dlib150 began to be fitted as dlib fits its chips,
    the block fitted on the old crops was found again and reused."""
    import dataclasses

    from bench.align.templates import TEMPLATES
    from bench.train import modes

    config = preset("cpu")
    before = modes.run_key("sface-dream", "stitch", config, "data")
    template = TEMPLATES.get("arcface112")
    monkeypatch.setitem(TEMPLATES._entries, "arcface112",
                        dataclasses.replace(template, fit_kind="dlib_chip"))
    modes._model_template.cache_clear()
    try:
        assert modes.run_key("sface-dream", "stitch", config, "data") != before
    finally:
        modes._model_template.cache_clear()


def test_unknown_yaw_stem_runs_a_dream_model_on_data_with_missing_yaw(sface_available,
                                                                      tiny_synth, tmp_path):
    """`--unknown-yaw stem`: the images without a yaw run through the stem alone, and the
    record counts and lists them (the default still refuses, as the test above shows)."""
    import dataclasses
    import shutil

    cfg = _cfg(tiny_synth, tmp_path, train_data=str(tiny_synth / "train"))
    data = tmp_path / "data"
    shutil.copytree(tiny_synth / "cfp", data / "cfp")
    shutil.copy(tiny_synth / "synth.json", data / "synth.json")
    pose = data / "cfp/Data/pose.csv"
    lines = pose.read_text().splitlines(keepends=True)
    pose.write_text("".join(lines[:1] + lines[2:]))  # the first image loses its yaw
    cfg = dataclasses.replace(cfg, data=str(data))
    with pytest.raises(DataError, match="no yaw"):
        run_benchmark(cfg, echo=lambda s: None)
    lines_out = []
    outcome = run_benchmark(dataclasses.replace(cfg, unknown_yaw="stem"), echo=lines_out.append)
    unknown = outcome.result["preprocessing"]["unknown_yaw"]
    assert unknown["n_images"] == 1 and unknown["policy"] == "stem (gate 0)"
    assert any(line.startswith("unknown yaw: 1 image without a yaw") for line in lines_out)
