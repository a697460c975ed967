"""A mistake in a user's protocol file is reported with the file's path and the table/key,
in the harness's words (never a Python ``__init__()`` message), and an unknown key lists
the allowed ones with the closest as a suggestion."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.errors import ConfigError
from bench.protocols import Folds, Protocol, load_protocol
from bench.protocols.dataset import reader_kwargs

HEAD = 'name = "my-bins"\nextends = "yaw-bins"\n'


def _write(tmp_path, body):
    path = tmp_path / "my-bins.toml"
    path.write_text(HEAD + body)
    return path


def _error(path) -> str:
    with pytest.raises(ConfigError) as err:
        load_protocol(str(path))
    return str(err.value)


@pytest.mark.parametrize("body, table, words", [
    ('[folds]\ncount = "two"\n', "[folds]", "folds.count must be a positive integer, got 'two'"),
    ("[folds]\ncount = 0\n", "[folds]", "folds.count must be a positive integer, got 0"),
    ("[folds]\ncount = true\n", "[folds]", "folds.count must be a positive integer, got True"),
    ('[metrics]\nreport = "accuracy"\n', "[metrics]", "report must be a list of metrics"),
    ("[yaw]\nbins = [0, 60, 30]\n", "[yaw]", "must start at 0 and increase"),
    ('[yaw]\npair_rule = "mean"\n', "[yaw]", "yaw.pair_rule"),
    ('[pooling]\nflip = "yes"\n', "[pooling]", "pooling.flip"),
    ('task = "both"\n', "task", "task must be one of"),
    ('[metrics]\nmain = "rank1"\n', "main_score", "is not one of the reported metrics"),
    ('[metrics]\nreport = ["acc"]\nmain = "acc"\n', "metric", "unknown metric"),
    ("[counts]\nimages = -1\n", "counts", "non-negative integers"),
])
def test_value_errors_name_the_file_and_table(tmp_path, body, table, words):
    path = _write(tmp_path, body)
    message = _error(path)
    assert message.startswith(f"{path}: "), message
    assert table in message and words in message


@pytest.mark.parametrize("body, table, typo, closest", [
    ("[folds]\ncuont = 2\n", "[folds]", "cuont", "count"),
    ("[yaw]\nbin = [0, 45, 90]\n", "[yaw]", "bin", "bins"),
    ("[pooling]\nflipp = true\n", "[pooling]", "flipp", "flip"),
    ('[metrics]\nmian = "accuracy"\n', "[metrics]", "mian", "main"),
    ("[counts]\nimage = 3\n", "unknown counts", "image", "images"),
    ("fromat = 1\n", "unknown protocol keys", "fromat", "format"),
])
def test_unknown_key_lists_allowed_and_suggests_the_closest(tmp_path, body, table, typo,
                                                            closest):
    path = _write(tmp_path, body)
    message = _error(path)
    assert message.startswith(f"{path}: "), message
    assert "__init__" not in message and "unexpected keyword" not in message
    assert "unknown" in message and table in message and "allowed: " in message
    assert f"did you mean {closest!r} for {typo!r}?" in message


def test_unknown_key_without_a_close_one_still_lists_the_allowed(tmp_path):
    message = _error(_write(tmp_path, "[folds]\nzzz = 2\n"))
    assert "did you mean" not in message
    assert "[folds] unknown keys: 'zzz' (allowed: count, description, kind)" in message


@pytest.mark.parametrize("body", ["folds = 3\n", "reader = 3\n", "counts = 3\n"])
def test_a_table_given_as_a_value_is_named(tmp_path, body):
    path = _write(tmp_path, body)
    message = _error(path)
    key = body.split(" ")[0]
    assert message == f"{path}: [{key}] must be a table (a [{key}] section), got 3"


def test_unknown_reader_option_suggests_the_closest(tmp_path):
    path = tmp_path / "my-fp.toml"
    path.write_text('name = "my-fp"\nextends = "cfp-fp"\n[reader]\npair = "FF"\n')
    with pytest.raises(ConfigError) as err:
        reader_kwargs(load_protocol(str(path)))
    assert str(err.value).startswith(f"{path}: [reader]")
    assert "did you mean 'pairs' for 'pair'?" in str(err.value)


def test_dataclasses_built_directly_keep_their_own_messages():
    """Outside a file (code building a Protocol) the messages stay as they were: no file."""
    with pytest.raises(ConfigError, match=r"^folds.count must be a positive integer"):
        Folds(count=0)
    p = load_protocol("yaw-bins")
    with pytest.raises(ConfigError, match=r"^yaw-bins: task must be one of"):
        Protocol(**{**p.__dict__, "source": "", "task": "both"})


@pytest.mark.parametrize("command", ["validate", "show"])
def test_cli_prints_the_file_for_count_two(tmp_path, command):
    path = _write(tmp_path, '[folds]\ncount = "two"\n')
    result = CliRunner().invoke(main, ["protocols", command, str(path)])
    assert result.exit_code == 2
    assert (f"error: {path}: [folds] folds.count must be a positive integer, got 'two'"
            in result.output)
