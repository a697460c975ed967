"""Generation as a whole: determinism, the yaw distributions, errors that leave nothing behind."""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.errors import ConfigError, DataError
from bench.synth import MANIFEST, SynthConfig, config_from_dict, generate, preset, render_preview
from bench.synth import train as train_part

# The module, not the function of the same name that bench.synth exports.
gen_module = importlib.import_module("bench.synth.generate")

TINY = {"train.identities": 2, "train.images_per_identity": 3, "cfp.identities": 4,
        "cfp.splits": 2, "cfp.frontal": 2, "cfp.profile": 1, "ijba.subjects": 6,
        "ijba.stills": 1, "ijba.videos": 2, "ijba.frames": 1, "ijba.splits": 2}


def tiny(seed: int = 0) -> SynthConfig:
    return preset("small", seed=seed, **TINY)


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".partial-" in p.name]


def test_same_seed_same_bytes_whatever_the_worker_count(tmp_path):
    a = generate(tmp_path / "a", tiny(), workers=1)
    b = generate(tmp_path / "b", tiny(), workers=2)
    da, db = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert da == db and len(da) > 50
    assert a["counts"] == b["counts"] and a["bytes"] == b["bytes"]
    c = generate(tmp_path / "c", tiny(seed=1), workers=1)
    dc = _digest(tmp_path / "c")
    assert dc.keys() == da.keys()
    assert sum(dc[k] != da[k] for k in da) > 0.9 * len(da) - 2  # all but fixed-layout files
    assert c["seed"] == 1
    assert config_from_dict(a["config"]) == tiny()


def test_train_yaws_are_web_like():
    config = preset("small", **{"train.identities": 40})
    jobs = train_part.plan(config)
    yaws = np.array([[abs(im.pose.yaw) for im in job.images] for job in jobs])
    assert (yaws < 30).mean() > 0.6 and (yaws > 60).mean() < 0.2
    assert (yaws.max(axis=1) >= 60).all()  # every identity has some profiles
    assert np.median(yaws) < 20


def test_refuses_non_empty_folder_and_bad_counts(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    with pytest.raises(DataError, match="not empty"):
        generate(out, tiny())
    with pytest.raises(DataError, match="not a synthetic dataset"):
        generate(out, tiny(), force=True)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    with pytest.raises(ConfigError, match="train.identities must be >= 1"):
        preset("small", **{"train.identities": -2})
    with pytest.raises(ConfigError, match="images_per_identity"):
        preset("small", **{"train.images_per_identity": 0})
    with pytest.raises(ConfigError, match="unknown train option"):
        preset("small", **{"train.idents": 3})
    with pytest.raises(ConfigError, match="unknown synth preset"):
        preset("huge")
    with pytest.raises(ConfigError, match="workers"):
        generate(tmp_path / "w", tiny(), workers=0)
    assert not (tmp_path / "w").exists() and not _leftovers(tmp_path)


def test_unwritable_target_gives_a_clear_error(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(DataError, match="cannot write"):
        generate(blocker / "sub" / "out", tiny())


def test_failure_midway_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = []

    def failing(job, difficulty, root):
        calls.append(job)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(job, difficulty, root)

    real = gen_module.run_job
    monkeypatch.setattr(gen_module, "run_job", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        generate(tmp_path / "out", tiny(), workers=1)
    assert list(tmp_path.iterdir()) == []


def test_force_replaces_a_previous_dataset(tmp_path):
    out = tmp_path / "out"
    generate(out, tiny(), workers=1)
    (out / "train" / "stale.txt").write_text("old")  # inside the dataset: replaced with it
    generate(out, tiny(seed=2), workers=1, force=True)
    assert not (out / "train" / "stale.txt").exists() and (out / MANIFEST).is_file()
    assert not _leftovers(tmp_path)


def test_cli_errors_and_preview(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["synth", str(tmp_path / "x"), "--identities", "-1"])
    assert res.exit_code == 2 and "'--identities': -1 is not in the range x>=1" in res.output
    assert not (tmp_path / "x").exists()
    res = runner.invoke(main, ["synth"])
    assert res.exit_code == 2 and "OUT" in res.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "a").write_text("a")
    res = runner.invoke(main, ["synth", str(tmp_path / "full")])
    assert res.exit_code == 2 and "not empty" in res.output
    png = tmp_path / "p.png"
    res = runner.invoke(main, ["synth", "--preview", str(png), "--preview-identities", "1"])
    assert res.exit_code == 0, res.output
    grid = cv2.imread(str(png))
    assert grid.shape[0] == 18 + 116 and grid.shape[1] == 7 * 116 - 4
    with pytest.raises(DataError, match="PNG"):
        render_preview(tmp_path / "p.jpg")
