"""A Ctrl-C during an atomic write leaves no temporary file, wherever it lands: the CLI's
interrupt handler removes what the write's own handler could not."""

import os

import pytest

from bench import fileio
from bench.fileio import atomic_write, remove_open_temps


def _temps(folder):
    return [p.name for p in folder.iterdir() if ".tmp-" in p.name]


def test_an_interrupt_right_after_the_temp_file_is_created(tmp_path, monkeypatch):
    """Bug (a flaky SIGINT test of `bench train`): the signal landed after the temporary
    file was created and before the handler that removes it was set up, so a hidden
    `.log.json.tmp-...` stayed in the run folder."""
    real_open = os.open

    def created_then_interrupted(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        os.close(fd)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "open", created_then_interrupted)
    with pytest.raises(KeyboardInterrupt), atomic_write(tmp_path / "log.json") as f:
        f.write("{}")
    monkeypatch.undo()
    remove_open_temps()  # as the CLI's Ctrl-C handler does
    assert _temps(tmp_path) == [] and not (tmp_path / "log.json").exists()


def test_a_second_interrupt_during_the_cleanup(tmp_path, monkeypatch):
    real_unlink = os.unlink
    calls = []

    def interrupted_once(path, *args, **kwargs):
        if not calls:
            calls.append(path)
            raise KeyboardInterrupt
        return real_unlink(path, *args, **kwargs)

    with pytest.raises(KeyboardInterrupt), atomic_write(tmp_path / "x.json") as f:
        f.write("{")
        monkeypatch.setattr(os, "unlink", interrupted_once)
        raise KeyboardInterrupt
    monkeypatch.undo()
    assert len(_temps(tmp_path)) == 1
    remove_open_temps()
    assert _temps(tmp_path) == []


def test_finished_writes_are_not_tracked(tmp_path):
    with atomic_write(tmp_path / "a.json") as f:
        f.write("{}")
    with pytest.raises(ValueError), atomic_write(tmp_path / "b.json") as f:
        raise ValueError("failed write")
    assert not fileio._OPEN_TEMPS and remove_open_temps() == []
    assert (tmp_path / "a.json").read_text() == "{}" and _temps(tmp_path) == []


def test_sigterm_cleans_up_as_ctrl_c_does(tmp_path):
    """Bug: only Ctrl-C ran the clean-up; `timeout` or a scheduler's SIGTERM left the
    staged output (and a preallocated crop cache file) on disk."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "synth"
    proc = subprocess.Popen([sys.executable, "-m", "bench", "synth", str(out), "--preset",
                             "small"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "BENCH_CACHE": str(tmp_path / "cache")})
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".") for p in tmp_path.iterdir()):  # staging has begun
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert b"terminated: nothing was written" in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
