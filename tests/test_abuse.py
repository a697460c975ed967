"""Issue #15: a hostile user's abuse, made permanent.

Each test reproduces one reported item (number in the test name) and asserts the clean
outcome: a one-line error with exit status 2 (or the correct result), no partial output,
no stray process. Fast: tiny files, a tiny model, no full run.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from train_helpers import TINY, make_manifest, tiny_config

from bench import integrity
from bench.cli import main
from bench.data.samples import unique_images
from bench.errors import BenchError, ConfigError, DataError
from bench.fileio import (
    atomic_write,
    clean_stale_temps,
    make_temp_dir,
    prepare_output_dir,
    safe_name,
)
from bench.scores import example_scores, read_scores, write_scores

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def _clean_error(res, *fragments: str) -> None:
    """Exit 2, one message naming what is wrong, no traceback."""
    assert res.exit_code == 2, (res.exit_code, res.output)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output
    for fragment in fragments:
        assert fragment in res.output, (fragment, res.output)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def ctrl_c():
    """Ctrl-C raises KeyboardInterrupt, as in a terminal: a shell starts a background job
    (`pytest ... &`, nohup) with SIGINT ignored, and Python then keeps it ignored."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return make_manifest(tmp_path_factory.mktemp("abuse_set"))


@pytest.fixture
def scores_file(tmp_path):
    return write_scores(example_scores(n_subjects=40, n_folds=2, pairs_per_fold=40),
                        tmp_path / "scores.csv")


# -- 1: an --out that is (inside, around) an input ------------------------------------------

def test_1_align_refuses_to_write_over_its_input(manifest):
    root = manifest.parent
    before = manifest.read_bytes()
    for out in (root, root / "aligned", root.parent):
        res = _cli("align", root, "--out", out, "--device", "cpu")
        _clean_error(res, "refusing")
    assert manifest.read_bytes() == before
    assert not (root / "aligned").exists() and not (root / "align_report.json").exists()


def test_1_guard_names_is_inside_and_contains(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(ConfigError, match="is the input"):
        prepare_output_dir(data, inputs=[data])
    with pytest.raises(ConfigError, match="inside the input"):
        prepare_output_dir(data / "x", inputs=[data])
    with pytest.raises(ConfigError, match="contains the input"):
        prepare_output_dir(tmp_path, inputs=[data / "meta.csv"])
    assert prepare_output_dir(tmp_path / "out", inputs=[data, None]) == tmp_path / "out"
    # a shared results folder may hold inputs, except where runs are written
    assert prepare_output_dir(tmp_path, inputs=[data / "yaw.csv"], owned=("runs",))
    with pytest.raises(ConfigError, match="contains the input"):
        prepare_output_dir(tmp_path, inputs=[tmp_path / "runs" / "x.csv"], owned=("runs",))
    assert not (tmp_path / "out").exists()  # checking creates nothing


# -- 2: names used in paths -------------------------------------------------------------------

def _fake_run(out: Path, name: str = "p__m__naive__abc", protocol: str = "cfp-fp") -> Path:
    from bench.runner.result_schema import FIELDS

    result = {key: None for key in FIELDS}
    result.update(schema_version=1, run_id=name, created="2026-11-30T00:00:00Z",
                  bench_version="0", command="bench run", environment={}, seeds={},
                  protocol={"name": protocol}, data={"root": "/d", "synthetic": True},
                  model={"name": "m", "mode": "naive"}, preprocessing={}, pooling={},
                  main_score={"name": "auc", "value": 0.9}, metrics={"auc": 0.9, "eer": 0.1},
                  timings={}, files={})
    folder = out / "runs" / name
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps(result))
    return folder / "result.json"


def test_2_leaderboard_protocol_cannot_escape_and_must_exist(tmp_path):
    out = tmp_path / "R"
    _fake_run(out)
    res = _cli("leaderboard", "--out", out, "--protocol", "../../../escape")
    _clean_error(res, "cannot be used in a file name")
    assert not list(tmp_path.rglob("escape*"))
    res = _cli("leaderboard", "--out", out, "--protocol", "nosuch")
    _clean_error(res, "cfp-fp")  # the known names
    assert not list(out.glob("leaderboard-nosuch*"))
    res = _cli("leaderboard", "--out", out, "--protocol", "cfp-fp")
    assert res.exit_code == 0, res.output
    assert (out / "leaderboard-cfp-fp.csv").is_file()


def test_2_a_run_refreshes_the_per_protocol_boards_too(tmp_path):
    """Bug: runs rebuilt leaderboard.csv alone, so a leaderboard-cfp-fp.csv made by
    `bench leaderboard -p cfp-fp` went stale with the next run."""
    from bench.runner import leaderboard as lb

    out = tmp_path / "R"
    _fake_run(out)
    assert _cli("leaderboard", "--out", out, "--protocol", "cfp-fp").exit_code == 0
    before = (out / "leaderboard-cfp-fp.md").read_text()
    _fake_run(out, name="p__m__naive__def")
    _fake_run(out, name="q__m__naive__ghi", protocol="cfp-ff")
    lb.update(out)  # what a run does after writing its folder
    assert len(pd.read_csv(out / "leaderboard.csv")) == 3
    assert pd.read_csv(out / "leaderboard-cfp-fp.csv")["run_id"].tolist() == [
        "p__m__naive__abc", "p__m__naive__def"]
    after = (out / "leaderboard-cfp-fp.md").read_text()
    assert after.count("| 90.00 |") == 2 * before.count("| 90.00 |") > 0
    assert not (out / "leaderboard-cfp-ff.csv").exists()


def test_2_safe_name():
    assert safe_name("cfp-fp__resnet18__naive__0a1b") == "cfp-fp__resnet18__naive__0a1b"
    for bad in ("../x", "a/b", ".hidden", "", "a..b", "x\0y"):
        with pytest.raises(ConfigError):
            safe_name(bad)


def test_2_run_id_from_a_protocol_path_is_its_name():
    from bench.runner.run import RunConfig, run_id_for

    cfg = RunConfig(protocol="../../elsewhere/my-proto.toml", model="resnet18")
    assert run_id_for("my-proto", cfg, "naive", "p", "d", "c", False).startswith(
        "my-proto__resnet18__")


# -- 3: runs vanish from the leaderboard ------------------------------------------------------

def test_3_bad_run_files_are_named_and_counted(tmp_path):
    out = tmp_path / "R"
    _fake_run(out, "good")
    truncated = _fake_run(out, "truncated")
    truncated.write_text(truncated.read_text()[:40])
    _fake_run(out, "empty").write_text("{}")
    res = _cli("leaderboard", "--out", out, "--format", "csv")
    assert res.exit_code == 0, res.output
    assert "truncated/result.json: truncated or not JSON" in res.stderr
    assert "empty/result.json: not a run result: missing key" in res.stderr
    assert "2 run file(s) skipped" in res.stderr
    board = pd.read_csv(out / "leaderboard.csv")
    assert list(board["run_id"]) == ["good"]
    strict = _cli("leaderboard", "--out", out, "--strict")
    _clean_error(strict, "2 unreadable run file(s)", "truncated")


def test_3_leaderboard_of_a_mistyped_folder_is_an_error(tmp_path):
    res = _cli("leaderboard", "--out", tmp_path / "typo")
    _clean_error(res, "does not exist")
    assert not (tmp_path / "typo").exists()


# -- 4: a full disk under the crop cache ------------------------------------------------------

def _align(manifest, cache):
    from bench.align.api import align_batches
    from bench.train.data import load_samples

    frame, _ = unique_images(load_samples(manifest).samples)
    stream = align_batches(frame, "celeba", "cpu", 8, cache_dir=cache, workers=1, warn=False)
    return np.concatenate([b.crops.numpy() for b in stream]), stream


def test_4_full_disk_is_a_clear_error_and_leaves_no_temp(manifest, tmp_path, monkeypatch):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    cache = tmp_path / "cache"
    with pytest.raises(BenchError, match="No space left on device.*needs .* MB"):
        _align(manifest, cache)
    assert list(cache.iterdir()) == []


def test_4_temp_folders_of_dead_owners_are_cleaned_on_the_next_start(manifest, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    host = make_temp_dir(cache, "x").name.split("@")[1][:8]
    stale = cache / f".celeba-0123.tmp-{_dead_pid()}@{host}-abcd"
    stale.mkdir()
    (stale / "crops.npy").write_bytes(b"\0" * 100)
    alive = cache / f".celeba-4567.tmp-{os.getpid()}@{host}-abcd"
    alive.mkdir()
    _align(manifest, cache)
    assert not stale.exists() and alive.exists()


def test_4_leaderboard_removes_a_killed_writer_s_temp_file(tmp_path):
    out = tmp_path / "R"
    _fake_run(out)
    host = make_temp_dir(tmp_path, "x").name.split("@")[1][:8]
    stale = out / f".leaderboard.csv.tmp-{_dead_pid()}@{host}-k2j4"
    stale.write_text("half a boa")
    assert _cli("leaderboard", "--out", out).exit_code == 0
    assert not stale.exists()


def test_4_a_run_folder_being_staged_is_no_leaderboard_row(tmp_path):
    """Bug: pathlib's glob matched runs/.<id>.tmp-PID@HOST-*/result.json, so a run whose
    writer was killed before its rename (or one still being written) was a phantom row."""
    out = tmp_path / "R"
    _fake_run(out)
    host = make_temp_dir(tmp_path, "x").name.split("@")[1][:8]
    staged = _fake_run(out, name=f".p__m__naive__dead.tmp-{_dead_pid()}@{host}-k2j4")
    live = _fake_run(out, name=f".p__m__naive__live.tmp-{os.getpid()}@{host}-k2j4")
    assert _cli("leaderboard", "--out", out).exit_code == 0
    assert pd.read_csv(out / "leaderboard.csv")["run_id"].tolist() == ["p__m__naive__abc"]
    assert not staged.parent.exists() and live.exists()  # the dead writer's is cleaned


def test_4_a_writer_killed_between_its_two_renames_loses_no_run(tmp_path):
    """Bug: staged_dir moves the old output aside, then the new one in; a kill between the
    two left both in temp folders, and the next clean-up deleted both."""
    out = tmp_path / "runs" / "p__m__naive__abc"
    result = _fake_run(tmp_path, name=out.name)
    host = make_temp_dir(tmp_path, "x").name.split("@")[1][:8]
    dead = _dead_pid()
    trash = out.parent / f".{out.name}.old.tmp-{dead}@{host}-k2j4"
    trash.mkdir()
    out.rename(trash / "old")
    (out.parent / f".{out.name}.tmp-{dead}@{host}-k2j4").mkdir()  # the new one, unfinished
    clean_stale_temps(out.parent)
    assert result.is_file() and sorted(p.name for p in out.parent.iterdir()) == [out.name]


def test_4_clean_stale_temps_spares_other_hosts_and_plain_files(tmp_path):
    dead = _dead_pid()
    (tmp_path / f".a.tmp-{dead}@00000000-x").mkdir()  # another host: maybe alive there
    (tmp_path / f".b.partial-{dead}").mkdir()
    (tmp_path / "keep.tmp-1").write_text("")
    removed = clean_stale_temps(tmp_path)
    assert [p.name for p in removed] == [f".b.partial-{dead}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".a.tmp-{dead}@00000000-x",
                                                          "keep.tmp-1"]


# -- 5: corrupt caches are never trusted ------------------------------------------------------

def test_5_truncated_crop_cache_is_rebuilt_with_a_warning(manifest, tmp_path):
    cache = tmp_path / "cache"
    first, _ = _align(manifest, cache)
    (entry,) = cache.iterdir()
    crops = entry / "crops.npy"
    crops.write_bytes(crops.read_bytes()[:1000])
    with pytest.warns(integrity.CacheWarning, match="truncated"):
        again, _ = _align(manifest, cache)
    np.testing.assert_array_equal(first, again)
    _, stream = _align(manifest, cache)  # rebuilt: a clean hit now
    assert stream.cached is not None


def test_5_truncated_feature_cache_is_rebuilt_with_a_warning(manifest, tmp_path):
    from bench.models import create_model
    from bench.runner.features import ExtractOptions, extract_features
    from bench.train.data import load_samples

    samples = load_samples(manifest).samples
    model = create_model(TINY)
    opts = ExtractOptions(device="cpu", batch_size=8, workers=1)
    feats, info = extract_features(model, samples, opts, tmp_path, "key")
    cached = tmp_path / "key.npy"
    assert not info["cache_hit"] and cached.is_file()
    cached.write_bytes(cached.read_bytes()[:-50])
    with pytest.warns(integrity.CacheWarning, match="key.npy"):
        again, info = extract_features(model, samples, opts, tmp_path, "key")
    assert not info["cache_hit"]
    np.testing.assert_allclose(again, feats, rtol=1e-5, atol=1e-6)
    _, info = extract_features(model, samples, opts, tmp_path, "key")
    assert info["cache_hit"]


def test_3_nan_features_name_the_weights_and_the_first_image(manifest, tmp_path):
    """Bug: 'the model produced NaN/inf features', with no file, image or count."""
    import torch

    from bench.models import create_model
    from bench.runner.features import ExtractOptions, extract_features
    from bench.train.data import load_samples

    samples = load_samples(manifest).samples
    model = create_model(TINY)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    opts = ExtractOptions(device="cpu", batch_size=8, workers=1)
    with pytest.raises(DataError, match=r"for (\d+) of \1 images, this one first; every "
                                        r"image: the model or its weights are broken") as err:
        extract_features(model, samples, opts, weights="/w/broken.pt")
    assert f"{TINY} (/w/broken.pt)" in str(err.value)
    assert err.value.path == str(samples["path"].iat[0])


def test_5_truncated_model_is_retrained_not_reused(manifest, tmp_path, monkeypatch):
    from bench.train import train

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    cfg = tiny_config(**{"classify.epochs": 1})
    first = train(TINY, "naive", manifest, tmp_path / "runs", cfg)
    sha = json.loads(first.log.read_text())["checkpoint_sha256"]
    first.checkpoint.write_bytes(first.checkpoint.read_bytes()[:500])
    with pytest.warns(integrity.CacheWarning, match="model.pt.*training this run again"):
        again = train(TINY, "naive", manifest, tmp_path / "runs", cfg)
    assert not again.reused
    assert integrity.mismatch(again.checkpoint, {"sha256": sha}) is None  # same weights
    assert train(TINY, "naive", manifest, tmp_path / "runs", cfg).reused


def test_5_damaged_bin_image_cache_is_rebuilt_with_a_warning(tiny_synth, tmp_path):
    from bench.readers import insightface_bin

    first = insightface_bin.read(tiny_synth / "cfp_fp.bin", folds=2, cache_dir=tmp_path)
    victim = Path(first.samples.samples["path"].iloc[0])
    good = victim.read_bytes()
    victim.write_bytes(good[:10])
    with pytest.warns(integrity.CacheWarning, match="truncated"):
        insightface_bin.read(tiny_synth / "cfp_fp.bin", folds=2, cache_dir=tmp_path)
    assert victim.read_bytes() == good


def test_5_damaged_split_cache_is_rebuilt_not_fatal(tiny_synth, tmp_path):
    from bench.readers import yaw_split

    first = yaw_split.read(tiny_synth / "cfp", folds=2, pairs_per_cell=3, cache_dir=tmp_path)
    listed = Path(first.samples.provenance["split_file"])
    listed.write_text(listed.read_text()[:-30])
    with pytest.warns(integrity.CacheWarning, match="sha256"):
        again = yaw_split.read(tiny_synth / "cfp", folds=2, pairs_per_cell=3, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(again.comparisons, first.comparisons)


def test_5_damaged_synthetic_dataset_is_noticed(tiny_synth, tmp_path):
    import shutil

    from bench.runner.data_source import _intact

    root = tmp_path / "synth"
    shutil.copytree(tiny_synth, root)
    assert _intact(root, "synth.json")
    victim = sorted((root / "cfp").rglob("*.jpg"))[0]
    victim.write_bytes(victim.read_bytes()[:100])
    with pytest.warns(integrity.CacheWarning, match="generating it again"):
        assert not _intact(root, "synth.json")


def test_10_truncated_resume_state_restarts_the_stage(manifest, tmp_path, monkeypatch):
    from bench.train import train
    from bench.train.data import load_samples, training_digest
    from bench.train.modes import STATE_NAME, run_dir, run_key

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    cfg = tiny_config(**{"classify.epochs": 1})
    key = run_key(TINY, "naive", cfg, training_digest(load_samples(manifest), None, cfg.workers))
    folder = run_dir(tmp_path / "runs", TINY, "naive", key)
    folder.mkdir(parents=True)
    (folder / STATE_NAME).write_bytes(b"PK\x03\x04 truncated")
    with pytest.warns(integrity.CacheWarning, match="unreadable resume state"):
        result = train(TINY, "naive", manifest, tmp_path / "runs", cfg, resume=True)
    assert result.metrics["epochs"] == 1 and not (folder / STATE_NAME).exists()


# -- 6: files and folders honour the umask ----------------------------------------------------

def test_6_written_files_and_folders_honour_the_umask(tmp_path, umask022):
    with atomic_write(tmp_path / "a.txt") as f:
        f.write("x")
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE(make_temp_dir(tmp_path, "d").stat().st_mode) == 0o755
    os.umask(0o077)
    with atomic_write(tmp_path / "b.txt") as f:
        f.write("x")
    assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o600


def test_6_leaderboard_keeps_0644(tmp_path, umask022):
    out = tmp_path / "R"
    _fake_run(out)
    assert _cli("leaderboard", "--out", out).exit_code == 0
    for name in ("leaderboard.csv", "leaderboard.md"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644


# -- 7: synth workers die with their parent; its partial folder is cleaned next time ------------

def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_7_sigkill_of_synth_leaves_no_worker_and_the_next_start_cleans_up(tmp_path):
    out = tmp_path / "synth"
    env = {**os.environ, "BENCH_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", "from bench.cli import main; main()",
                             "synth", str(out), "--workers", "2"], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = _children(proc.pid)
        assert len(workers) >= 2, "the synth workers never started"
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 10
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(_alive, workers)), "workers outlived their SIGKILLed parent"
    partial = [p for p in tmp_path.iterdir() if ".partial-" in p.name]
    assert partial  # what SIGKILL leaves; the next start removes it
    from conftest import TINY_SYNTH

    import bench.synth as synth

    tiny = {**TINY_SYNTH, "train.identities": 2}
    synth.generate(tmp_path / "again", synth.preset("small", **tiny), workers=1)
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_7_worker_exits_when_its_parent_is_gone():
    code = ("import os, time\n"
            "from bench.lifecycle import die_with_parent\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    die_with_parent(os.getppid(), interval=0.05)\n"
            "    time.sleep(30)\n"
            "    os._exit(0)\n"
            "print(pid, flush=True)\n"
            "time.sleep(0.5)\n"
            "os._exit(0)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30, cwd=REPO)
    child = int(out.stdout.split()[0])
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_10_synth_force_never_deletes_foreign_files(tmp_path):
    out = tmp_path / "synth"
    out.mkdir()
    (out / "synth.json").write_text("{}")
    (out / "thesis.tex").write_text("years of work")
    res = _cli("synth", out, "--force", "--workers", "1")
    _clean_error(res, "thesis.tex")
    assert (out / "thesis.tex").read_text() == "years of work"


# -- 8: silently wrong input ------------------------------------------------------------------

def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_8_a_short_score_row_is_an_error_not_a_shift(tmp_path):
    p = _write(tmp_path / "s.csv", "score,label,subject_a,subject_b,yaw_a,yaw_b\n"
                                   "0.9,1,a,a,0,10\n0.1,0,a,b,70\n")
    with pytest.raises(DataError, match=r"s\.csv:3: 5 fields where the header has 6"):
        read_scores(p)


def test_8_a_repeated_column_is_an_error(tmp_path):
    p = _write(tmp_path / "s.csv", "score,label,score\n0.9,1,0.1\n0.1,0,0.9\n")
    with pytest.raises(DataError, match=r"s\.csv:1: column 'score' appears twice"):
        read_scores(p)
    from bench.data.skipped import SkippedRows
    from bench.data.yaw_file import apply_yaw_file

    p = _write(tmp_path / "yaw.csv", "path,yaw,yaw\na.jpg,10,80\n")
    with pytest.raises(DataError, match=r"yaw\.csv:1: yaw file: column 'yaw' appears twice"):
        apply_yaw_file(_yaw_samples(tmp_path), p, SkippedRows())


def test_8_score_file_yaw_beyond_a_half_turn_is_an_error(tmp_path):
    p = _write(tmp_path / "s.csv", "score,label,yaw_a,yaw_b\n0.9,1,0,10\n0.1,0,400,0\n")
    with pytest.raises(DataError, match=r"s\.csv:3: column 'yaw_a': '400' is outside"):
        read_scores(p)


def _yaw_samples(tmp_path: Path):
    from bench.data.samples import SampleSet, new_samples

    frame = new_samples([str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")], ["s", "s"])
    return SampleSet(root=tmp_path, samples=frame, provenance={})


def test_8_a_lone_quote_in_a_yaw_file_is_a_line_error(tmp_path):
    from bench.data.skipped import SkippedRows
    from bench.data.yaw_file import apply_yaw_file

    p = _write(tmp_path / "yaw.csv", 'path,yaw\n"\na.jpg,10\n')  # found by the property
    with pytest.raises(DataError, match=r"yaw\.csv:2: malformed line"):
        apply_yaw_file(_yaw_samples(tmp_path), p, SkippedRows())
    samples = _yaw_samples(tmp_path)
    assert apply_yaw_file(samples, p, SkippedRows(lenient=True)) == 1
    assert samples.samples["yaw"].iloc[0] == 10.0


def test_8_yaw_file_rejects_400_degrees_and_conflicting_repeats(tmp_path):
    from bench.data.skipped import SkippedRows
    from bench.data.yaw_file import apply_yaw_file

    p = _write(tmp_path / "yaw.csv", "path,yaw\na.jpg,10\nb.jpg,400\n")
    with pytest.raises(DataError, match=r"yaw\.csv:3: yaw 400 is outside \[-180, 180\]"):
        apply_yaw_file(_yaw_samples(tmp_path), p, SkippedRows())
    p = _write(tmp_path / "yaw.csv", "path,yaw\na.jpg,10\nb.jpg,20\na.jpg,-60\n")
    with pytest.raises(DataError, match=r"yaw\.csv:4: a\.jpg is listed again.*line 2"):
        apply_yaw_file(_yaw_samples(tmp_path), p, SkippedRows())
    p = _write(tmp_path / "yaw.csv", "path,yaw\na.jpg,10\nb.jpg,20\na.jpg,10\n")
    samples = _yaw_samples(tmp_path)
    assert apply_yaw_file(samples, p, SkippedRows()) == 2  # an identical repeat is harmless
    assert list(samples.samples["yaw"]) == [10.0, 20.0]


# -- 9: corrupt images found early; align leaves nothing partial --------------------------------

def _truncate_one(root: Path) -> Path:
    victim = sorted(root.rglob("*.jpg"))[3]
    data = victim.read_bytes()
    victim.write_bytes(data[:len(data) // 2])
    return victim


def test_9_validate_decodes_images(tiny_synth, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_synth / "cfp", data / "cfp")
    shutil.copy(tiny_synth / "synth.json", data / "synth.json")
    victim = _truncate_one(data / "cfp")
    res = _cli("protocols", "validate", "cfp-fp", "--data", data, "--cache-dir", tmp_path / "c")
    _clean_error(res, "1 image(s) cannot be decoded", victim.name)
    res = _cli("protocols", "validate", "cfp-fp", "--data", data, "--cache-dir",
               tmp_path / "c", "--no-decode")
    assert res.exit_code == 0, res.output


def test_9_align_failing_midway_leaves_nothing(tmp_path):
    data = tmp_path / "data"
    manifest = make_manifest(data)
    _truncate_one(data)
    out = tmp_path / "out"
    res = _cli("align", manifest, "--out", out, "--device", "cpu", "--template", "celeba")
    _clean_error(res, "cannot decode image")
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # no staging folder either


def test_9_align_replaces_its_own_output_only(manifest, tmp_path):
    out = tmp_path / "out"
    args = ("align", manifest, "--out", out, "--device", "cpu", "--template", "celeba")
    assert _cli(*args).exit_code == 0
    first = sorted(p.relative_to(out) for p in out.rglob("*"))
    assert _cli(*args).exit_code == 0  # a re-run replaces the earlier output
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == first
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    _clean_error(_cli("align", manifest, "--out", other, "--device", "cpu"), "not empty")
    assert (other / "notes.txt").read_text() == "mine"


# -- 10: tracebacks for user mistakes ---------------------------------------------------------

@pytest.mark.parametrize("args, fragment", [
    (["--bins", "90,60,30,0"], "must start at 0 and increase"),
    (["--bins", "0"], "at least 2"),
    (["--bins", "0,30,abc"], "'abc' is not a number"),
    (["--bins", "0,30,nan"], "not a finite number"),
    (["--far", "2"], "out of range"),
    (["--far", "0"], "out of range"),
    (["--seed", "-5"], "--seed"),
    (["--n-boot", "-5"], "--n-boot"),
])
def test_10_score_options_are_checked(scores_file, args, fragment):
    _clean_error(_cli("score", scores_file, *args), fragment)


@pytest.mark.parametrize("args, fragment", [
    (["synth", "OUT", "--workers", "0"], "--workers"),
    (["synth", "OUT", "--seed", "-1"], "--seed"),
    (["train", "--model", "m", "--mode", "naive", "--data", "D", "--epochs", "0"], "--epochs"),
    (["yaw", "D", "--out", "OUT/y.csv", "--focal-factor", "nan"], "finite number > 0"),
    (["yaw", "D", "--out", "OUT/y.csv", "--sources", ","], "give at least one name"),
    (["yaw", "D", "--out", "OUT/y.csv", "--sources", "image,gps"], "'gps' is not one of"),
    (["align", "D", "--out", "OUT", "--batch-size", "0"], "--batch-size"),
])
def test_10_every_command_checks_its_numbers(tmp_path, args, fragment):
    (tmp_path / "D").mkdir()
    args = [str(tmp_path / a) if a in ("D", "OUT", "OUT/y.csv") else a for a in args]
    _clean_error(_cli(*args), fragment)
    assert not (tmp_path / "OUT").exists()


def test_10_n_boot_means_the_same_in_run_and_score(scores_file):
    run = _cli("run", "-p", "cfp-fp", "-m", "resnet18", "--n-boot", "-5")
    score = _cli("score", scores_file, "--n-boot", "-5")
    _clean_error(run, "-5 is not in the range x>=0")
    _clean_error(score, "-5 is not in the range x>=0")


def test_10_score_file_mistakes(tmp_path):
    _clean_error(_cli("score", tmp_path), "is a folder, not a score file")
    p = tmp_path / "latin1.csv"
    p.write_bytes(b"score,label\n0.9,1\n0.1,0\n0.5,1 caf\xe9\n")
    _clean_error(_cli("score", p), "latin1.csv:4: not UTF-8")
    _clean_error(_cli("score", "--example", tmp_path), "is a folder, not a file")


def test_10_train_set_with_a_wrong_type(manifest):
    res = _cli("train", "--model", TINY, "--mode", "naive", "--data", manifest,
               "--set", "classify.epochs=abc")
    _clean_error(res, "classify.epochs must be a whole number, got 'abc'")


def test_10_protocol_file_with_bins_abc(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text('name = "mine"\nextends = "cfp-fp"\n[yaw]\nbins = "abc"\n')
    _clean_error(_cli("protocols", "show", p), "yaw bin edges must be a list of numbers")


def test_10_run_out_is_checked_before_any_work(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("")
    res = _cli("run", "-p", "cfp-fp", "-m", "resnet18", "--out", afile,
               "--data", tmp_path / "nowhere")
    _clean_error(res, "is a file, not a folder")  # not "nowhere": no data was read
    res = _cli("compare", "-p", "cfp-fp", "--stem", "resnet18", "--out", afile / "sub",
               "--data", tmp_path / "nowhere")
    _clean_error(res, "is a file, not a folder")


def test_10_unwritable_out(tmp_path, monkeypatch):
    import bench.fileio as fileio

    def read_only(folder):
        raise PermissionError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(fileio, "_probe_writable", read_only)
    for args in (["run", "-p", "cfp-fp", "-m", "resnet18", "--out", tmp_path / "o"],
                 ["yaw", tmp_path, "--out", tmp_path / "y.csv"],
                 ["align", tmp_path, "--out", tmp_path.parent / "aligned"],
                 ["score", "--example", tmp_path / "e.csv"]):
        _clean_error(_cli(*args), "not writable: Read-only file system")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_10_read_only_out_for_real(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        _clean_error(_cli("score", "--example", ro / "e.csv"), "not writable")
    finally:
        ro.chmod(0o755)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_10_full_disk_on_out_is_one_line(tmp_path, monkeypatch):
    import bench.fileio as fileio

    real = fileio.os.fdopen

    def full(fd, *args, **kwargs):
        os.dup2(os.open("/dev/full", os.O_WRONLY), fd)  # every write: ENOSPC
        return real(fd, *args, **kwargs)

    monkeypatch.setattr(fileio.os, "fdopen", full)
    res = _cli("score", "--example", tmp_path / "e.csv")
    _clean_error(res, f"cannot write {tmp_path / 'e.csv'}: No space left on device")
    assert list(tmp_path.iterdir()) == []


# -- not yet probed: compare, SIGINT ----------------------------------------------------------

@pytest.mark.parametrize("args, fragment", [
    (["--modes", "naive,bogus"], "'bogus' is not one of"),
    (["--modes", ""], "at least one"),
    (["--n-boot", "-1"], "--n-boot"),
    (["--epochs", "0"], "--epochs"),
    (["--batch-size", "0"], "--batch-size"),
])
def test_compare_options_are_checked(args, fragment):
    _clean_error(_cli("compare", "-p", "cfp-fp", "--stem", "resnet18", *args), fragment)


def test_unknown_names_fail_before_any_data_is_read(tmp_path):
    nowhere = tmp_path / "nowhere"
    _clean_error(_cli("compare", "-p", "cfp-fp", "--stem", "nosuch", "--data", nowhere,
                      "--out", tmp_path / "o"), "unknown model 'nosuch'")
    _clean_error(_cli("run", "-p", "cfp-fp", "-m", "nosuch", "--data", nowhere,
                      "--out", tmp_path / "o"), "unknown model 'nosuch'")
    _clean_error(_cli("compare", "-p", "nosuch", "--stem", "resnet18", "--data", nowhere,
                      "--out", tmp_path / "o"), "unknown protocol 'nosuch'")
    assert not (tmp_path / "o").exists()


def test_compare_refuses_a_protocol_path_that_escapes(tmp_path):
    from bench.runner.compare import compare_modes
    from bench.runner.run import RunConfig

    with pytest.raises(ConfigError, match="unknown model '../../x'"):
        compare_modes("cfp-fp", "../../x", ["naive", "stitch"],
                      RunConfig(protocol="cfp-fp", model="x", out=str(tmp_path)))


def _own_children() -> list[int]:
    return [c for task in Path(f"/proc/{os.getpid()}/task").iterdir()
            for c in _children_of_task(task)]


def _children_of_task(task: Path) -> list[int]:
    try:
        return [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        return []


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_sigint_of_train_exits_130_cleanly(manifest, tmp_path, monkeypatch, ctrl_c):
    """A real SIGINT while ``bench train`` trains (in this process, to spare a start-up)."""
    import threading

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "runs"
    before = set(_own_children())
    done = threading.Event()

    def interrupt():
        deadline = time.monotonic() + 60
        while not list(out.glob("*/log.json")) and time.monotonic() < deadline:
            if done.wait(0.05):
                return
        # log.json appears after the first epoch: training is under way. On a loaded
        # machine a signal can land before the handler is in place; one that changed
        # nothing in 30 s is sent again (at most twice more), so the test never trains on
        # for a quarter of an hour and fails only after that.
        for _ in range(3):
            if done.is_set():
                return
            os.kill(os.getpid(), signal.SIGINT)
            if done.wait(30):
                return

    thread = threading.Thread(target=interrupt, daemon=True)
    thread.start()
    try:
        res = _cli("train", "--model", TINY, "--mode", "naive", "--data", manifest, "--out", out,
                   "--device", "cpu", "--epochs", "1000", "--no-progress",
                   "--set", "classify.batch_size=8", "--set", "input_size=null",
                   "--set", "workers=1")
    finally:
        done.set()
        thread.join()
    assert res.exit_code == 130, res.output
    assert "Traceback" not in res.output
    assert res.stderr.splitlines()[-1].startswith("interrupted")
    assert set(_own_children()) <= before  # no worker left behind
    (run,) = out.iterdir()
    assert not (run / "model.pt").exists()  # nothing that looks finished
    assert not [p for p in run.iterdir() if ".tmp-" in p.name]


def test_sigint_of_run_while_writing_its_folder_leaves_nothing(tiny_synth, tmp_path,
                                                               monkeypatch, ctrl_c):
    """A real SIGINT at the worst moment: the run folder half written."""
    from bench.models import create_model
    from bench.models.weights import save_checkpoint
    from bench.report import plots

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    weights = save_checkpoint(create_model(TINY), tmp_path / "tiny.pt")
    real = plots.roc_by_yaw

    def interrupted(*args, **kwargs):
        real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # Python raises KeyboardInterrupt right here
        time.sleep(5)

    monkeypatch.setattr(plots, "roc_by_yaw", interrupted)
    out = tmp_path / "results"
    res = _cli("run", "-p", "cfp-fp", "-m", TINY, "--weights", weights, "--data", tiny_synth,
               "--out", out, "--device", "cpu", "--n-boot", "10", "--batch-size", "16")
    assert res.exit_code == 130, res.output
    assert res.stderr.splitlines()[-1].startswith("interrupted")
    assert list((out / "runs").iterdir()) == []  # neither a run folder nor its temporary
    assert not (out / "leaderboard.csv").exists()


# -- the property: malformed files give file:line or a correct result, never a traceback --------

_CELLS = st.sampled_from(["0.5", "1", "0", "-3", "400", "", "nan", "inf", "abc", "a,b",
                          '"x"', '"', "1e309", " 0.25", "é", "\t", "181", "-180"])


@st.composite
def _csv(draw, header):
    cols = draw(st.lists(st.sampled_from(header), min_size=1, max_size=len(header) + 1))
    rows = draw(st.lists(st.lists(_CELLS, min_size=0, max_size=len(cols) + 1), max_size=6))
    ending = draw(st.sampled_from(["\n", "\r\n", ""]))
    lines = [",".join(cols)] + [",".join(r) for r in rows]
    blank = draw(st.booleans())
    return "\n".join(lines[:2] + ([""] if blank else []) + lines[2:]) + ending


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_csv(["score", "label", "subject_a", "subject_b", "yaw_a", "yaw_b", "fold"]))
def test_property_malformed_score_files(tmp_path, text):
    p = tmp_path / "s.csv"
    p.write_text(text, encoding="utf-8")
    try:
        df = read_scores(p)
    except DataError as exc:
        assert str(exc).startswith(str(p))
        if exc.line is not None:
            assert 1 <= exc.line <= text.count("\n") + 1
        return
    # accepted: every row kept, each value from its own column (nothing shifted)
    import csv
    import io

    rows = [r for r in csv.reader(io.StringIO(text.replace("\r\n", "\n"))) if r]
    header, body = [h.strip() for h in rows[0]], rows[1:]
    assert len(df) == len(body)
    for col in ("score", "label"):
        i = header.index(col)
        np.testing.assert_array_equal(df[col].to_numpy(np.float64),
                                      [float(r[i]) for r in body])
    assert np.isfinite(df["score"]).all() and set(df["label"]) == {0, 1}
    for col in ("yaw_a", "yaw_b"):
        if col in df:
            assert (df[col].dropna().abs() <= 180).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from bench.evaluation import EvalPlan, evaluate_scores

        evaluate_scores(df, EvalPlan(n_boot=0))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_csv(["path", "yaw", "pitch", "roll", "source"]),
       lenient=st.booleans())
def test_property_malformed_yaw_files(tmp_path, text, lenient):
    from bench.data.skipped import SkippedRows
    from bench.data.yaw_file import apply_yaw_file

    text = text.replace("abc", "a.jpg", 2)
    p = tmp_path / "yaw.csv"
    p.write_text(text, encoding="utf-8")
    samples = _yaw_samples(tmp_path)
    try:
        n = apply_yaw_file(samples, p, SkippedRows(lenient=lenient))
    except DataError as exc:
        assert str(exc).startswith(str(p))
        return
    yaw = samples.samples["yaw"]
    assert 0 <= n <= 2
    assert (yaw.dropna().abs() <= 180).all()
    # accepted: a.jpg has the yaw its (consistent) rows give, from the yaw column itself
    import csv
    import io

    rows = [r for r in csv.reader(io.StringIO(text.replace("\r\n", "\n"))) if r]
    header = [h.strip().lower() for h in rows[0]]
    given = [r[header.index("yaw")].strip() for r in rows[1:]
             if len(r) == len(header) and r[header.index("path")].strip() == "a.jpg"]
    if given and not lenient:
        want = float("nan") if given[0].lower() in ("", "nan", "na") else float(given[0])
        np.testing.assert_equal(yaw.iloc[0], want)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(head=st.sampled_from([b"score,label\n", b"score,label,yaw_a,yaw_b\n", b"path,yaw\n", b""]),
       body=st.binary(max_size=60), lenient=st.booleans())
def test_property_arbitrary_bytes(tmp_path, head, body, lenient):
    """Any bytes at all (bad UTF-8, NUL, a broken gzip): a DataError naming the file, or a
    result."""
    from bench.data.skipped import SkippedRows
    from bench.data.yaw_file import apply_yaw_file

    for name in ("s.csv", "s.csv.gz"):
        p = tmp_path / name
        p.write_bytes(head + body)
        try:
            read_scores(p)
        except DataError as exc:
            assert str(exc).startswith(str(p))
    p = tmp_path / "yaw.csv"
    p.write_bytes(head + body)
    try:
        apply_yaw_file(_yaw_samples(tmp_path), p, SkippedRows(lenient=lenient))
    except DataError as exc:
        assert str(exc).startswith(str(p))


def test_5_a_cached_array_without_its_record_is_not_trusted(tmp_path):
    """Bug: an array whose .json record was gone (a cache copied in part, cleaned by hand)
    was loaded unchecked, against the module's promise that a cache is never trusted."""
    path = tmp_path / "key.npy"
    integrity.save_array(path, np.arange(6.0).reshape(3, 2))
    assert integrity.load_array(path, rows=3) is not None
    (tmp_path / "key.npy.json").unlink()
    with pytest.warns(integrity.CacheWarning, match="no record"):
        assert integrity.load_array(path, rows=3) is None
    assert not path.exists()


def test_3_a_dream_model_runs_images_without_yaw_through_its_stem_when_asked(manifest):
    """A face bench yaw did not find has no yaw, and a DREAM model refused the whole run
    for it (on real CFP, every DREAM comparison). With --unknown-yaw stem such an image
    gets gate 0 (the stem's own feature), the others their gate as before."""
    import copy

    import torch

    from bench.models import create_model
    from bench.runner.features import ExtractOptions, extract_features
    from bench.train.data import load_samples

    samples = load_samples(manifest).samples.copy()
    samples.loc[[1, 4], "yaw"] = np.nan  # YAWS[1] = 5, YAWS[4] = 60
    torch.manual_seed(0)
    model = create_model(f"{TINY}-dream").eval()
    with torch.no_grad():  # a block that moves features, so gate 0 is told apart
        for p in model.dream.parameters():
            p.normal_(0, 1)
    opts = ExtractOptions(device="cpu", batch_size=8, workers=1)
    with pytest.raises(DataError, match="no yaw"):
        extract_features(model, samples, opts)
    feats, info = extract_features(model, samples, dataclasses.replace(opts, unknown_yaw="stem"))
    assert info["unknown_yaw"]["n_images"] == 2
    assert info["unknown_yaw"]["images"] == samples["path"].iloc[[1, 4]].tolist()
    stem = copy.deepcopy(model)
    stem.dream = None
    plain, _ = extract_features(stem, samples, opts)
    np.testing.assert_allclose(feats[[1, 4]], plain[[1, 4]], rtol=1e-6, atol=1e-6)
    known = samples.drop(index=[1, 4]).reset_index(drop=True)
    gated, _ = extract_features(model, known, opts)
    np.testing.assert_allclose(np.delete(feats, [1, 4], axis=0), gated, rtol=1e-5, atol=1e-6)
    assert not np.allclose(feats[5], plain[5], atol=1e-3)  # yaw -70: the block moved it


def test_5_a_feature_cache_hit_names_this_run_s_list_lines(tmp_path):
    """Bug: two lists of the same images share their features (the key covers what a
    feature depends on), and a hit returned the first list's line numbers for the
    alignment fallbacks."""
    import cv2

    from bench.models import create_model
    from bench.runner.features import ExtractOptions, extract_features
    from bench.train.data import load_samples

    for name in ("a", "b"):
        cv2.imwrite(str(tmp_path / f"{name}.jpg"), np.full((40, 40, 3), 90, np.uint8))
    body = "a.jpg,s1,\nb.jpg,s2,\n"
    (tmp_path / "m1.csv").write_text("path,subject,yaw\n" + body)
    (tmp_path / "m2.csv").write_text("path,subject,yaw\n\n\n" + body)
    model = create_model(TINY)
    opts = ExtractOptions(device="cpu", batch_size=8, workers=1)
    lines = {}
    for name in ("m1", "m2"):
        samples = load_samples(tmp_path / f"{name}.csv").samples
        _, info = extract_features(model, samples, opts, tmp_path / "cache", "key")
        lines[name] = [f["listed_at"] for f in info["alignment"]["fallbacks"]]
        assert info["cache_hit"] == (name == "m2")
    assert lines["m1"] == [f"{tmp_path / 'm1.csv'}:2", f"{tmp_path / 'm1.csv'}:3"]
    assert lines["m2"] == [f"{tmp_path / 'm2.csv'}:4", f"{tmp_path / 'm2.csv'}:5"]
