"""``bench synth`` messages speak the command line's language (``--force``), the library's
speak Python's (``force=True``); OUT and --preview are two separate uses of the command."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.errors import DataError
from bench.synth import MANIFEST, generate, preset


def _synth(*args):
    return CliRunner().invoke(main, ["synth", *map(str, args)])


@pytest.fixture()
def photos(tmp_path):
    """A folder of the user's own files: not a synthetic dataset."""
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "me.jpg").write_bytes(b"not an image")
    return folder


@pytest.fixture()
def dataset_with_extra(tmp_path):
    """A synthetic dataset's folder that also holds a file the dataset never writes."""
    folder = tmp_path / "s1"
    folder.mkdir()
    (folder / MANIFEST).write_text("{}")
    (folder / "notes.txt").write_text("mine")
    return folder


def test_cli_names_its_flag_for_a_folder_that_is_not_empty(photos):
    res = _synth(photos)
    assert res.exit_code == 2
    assert "folder is not empty; pass --force to replace it" in res.output
    assert "force=True" not in res.output


def test_cli_names_its_flag_for_files_force_would_delete(dataset_with_extra):
    res = _synth(dataset_with_extra, "--force")
    assert res.exit_code == 2
    assert "--force would delete notes.txt" in res.output and "force=True" not in res.output
    assert (dataset_with_extra / "notes.txt").read_text() == "mine"


def test_library_names_its_keyword(photos, dataset_with_extra):
    with pytest.raises(DataError, match=r"pass force=True to replace it") as err:
        generate(photos, preset("small"))
    assert "--force" not in str(err.value)
    with pytest.raises(DataError, match=r"force=True would delete notes.txt"):
        generate(dataset_with_extra, preset("small"), force=True)


def test_out_and_preview_are_refused_together_and_nothing_is_written(tmp_path):
    """--preview writes a preview *instead of* the dataset (its help says so): given both,
    the command refuses before writing either."""
    res = _synth(tmp_path / "s1", "--preview", tmp_path / "sp2.png")
    assert res.exit_code == 2
    assert "give either OUT or --preview FILE.png, not both" in res.output
    assert not (tmp_path / "s1").exists() and not (tmp_path / "sp2.png").exists()


def test_help_gives_the_two_usages():
    res = _synth("--help")
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    assert "bench synth OUT [--preset small|full]" in text
    assert "bench synth --preview FILE.png [--preview-identities N]" in text
