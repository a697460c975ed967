"""IJB-A and IJB-B/C readers on hand-made variants of the real releases' files."""

from __future__ import annotations

import pytest
from test_readers_fixtures import write_ijba, write_ijbc

from bench.data import SkippedRows
from bench.errors import DataError
from bench.protocols import load_eval_set
from bench.readers import ijba, ijbc


def test_a_search_list_template_without_crops_is_named_by_its_line(tmp_path):
    """A 1:N list naming a template the face list lacks (a truncated face list, or the other
    release's lists) was dropped in silence, even in strict mode."""
    root = tmp_path / "IJBC"
    write_ijbc(root)
    probes = root / "meta" / "ijbc_1N_probe_mixed.csv"
    n_lines = len(probes.read_text().splitlines())
    with open(probes, "a") as f:
        f.write("999,9,img/999.jpg\n")
    with pytest.raises(DataError, match=rf"ijbc_1N_probe_mixed.csv:{n_lines + 1}: template "
                                        "999 .*ijbc_face_tid_mid.txt"):
        ijbc.read(root, task="search", cache_dir=tmp_path / "cache")
    skipped = SkippedRows(lenient=True)
    ev = ijbc.read(root, task="search", skipped=skipped, cache_dir=tmp_path / "cache")
    assert "999" not in set(ev.search["template"])
    assert [(r["line"], r["text"]) for r in skipped.as_records()] == \
        [(n_lines + 1, "999,9,img/999.jpg")]
    # the 1:1 set only takes subjects from these lists: nothing to reject there
    assert len(ijbc.read(root, cache_dir=tmp_path / "cache").comparisons) > 0


def _corrupt(path):
    path.write_bytes(path.read_bytes()[:40])  # a truncated download


def test_a_corrupt_ijba_image_is_named_with_its_metadata_line(tmp_path):
    """A file that does not decode was named alone: which metadata row to drop was left to
    a search through 20 CSV files."""
    from bench.align import align_samples

    root = tmp_path / "ijba"
    write_ijba(root)
    _corrupt(root / "images" / "frame" / "1111_2.png")  # template 111 of split 1: line 7
    samples = ijba.read(root, folds=2).samples.samples
    with pytest.raises(DataError) as err:
        align_samples(samples, "arcface112", "cpu")
    meta = root / "IJB-A_11_sets" / "split1" / "verify_metadata_1.csv"
    assert (err.value.path, err.value.line) == (str(meta), 7), str(err.value)
    assert "frame/1111_2.png" in str(err.value) and "cannot decode" in str(err.value)


def test_a_corrupt_ijbc_crop_is_named_with_its_face_list_line(tmp_path):
    from bench.align import align_samples

    root = tmp_path / "IJBC"
    write_ijbc(root)
    _corrupt(root / "loose_crop" / "6.jpg")
    samples = ijbc.read(root, cache_dir=tmp_path / "cache").samples.samples
    with pytest.raises(DataError) as err:
        align_samples(samples, "arcface112", "cpu")
    face_list = root / "meta" / "ijbc_face_tid_mid.txt"
    assert (err.value.path, err.value.line) == (str(face_list), 6), str(err.value)
    assert "6.jpg" in str(err.value)


def test_validate_names_a_corrupt_image_with_its_list_line(tmp_path):
    from click.testing import CliRunner

    from bench.cli import main

    root = tmp_path / "IJBC"
    write_ijbc(root)
    _corrupt(root / "loose_crop" / "6.jpg")
    args = ["protocols", "validate", "ijbc-verify", "--data", str(root), "--cache-dir",
            str(tmp_path / "cache")]
    listed_at = f"{root / 'meta' / 'ijbc_face_tid_mid.txt'}:6"
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert listed_at in result.output, result.output
    # --lenient lists it at that line and leaves it out (it failed the command before)
    result = CliRunner().invoke(main, [*args, "--lenient"])
    assert result.exit_code == 0, result.output
    assert f"{listed_at}: image {root / 'loose_crop' / '6.jpg'}: cannot decode" \
        in result.output, result.output


def test_the_retina_five_points_variant_is_named_and_can_be_chosen(tmp_path):
    """Copies that carry only ``*_name_5pts_score_retina.txt`` failed with "missing five
    points" and no way to read the variant they hold."""
    root = tmp_path / "IJBC"
    write_ijbc(root)
    meta = root / "meta"
    retina = meta / "ijbc_name_5pts_score_retina.txt"
    (meta / "ijbc_name_5pts_score.txt").rename(retina)
    with pytest.raises(DataError, match=r"ijbc_name_5pts_score_retina.txt.*"
                                        r"five_points = \"name_5pts_score_retina\""):
        ijbc.read(root, cache_dir=tmp_path / "cache")
    protocol = tmp_path / "ijbc-retina.toml"
    protocol.write_text('name = "ijbc-retina"\nextends = "ijbc-verify"\nstrict_counts = false\n'
                        '[reader]\nfive_points = "name_5pts_score_retina"\n')
    ev, _ = load_eval_set(str(protocol), root, cache_dir=tmp_path / "cache")
    assert "meta/ijbc_name_5pts_score_retina.txt" in ev.samples.provenance["files"]
    assert ev.samples.samples["landmarks"].notna().all()


def test_images_of_an_ijba_root_count_split_folders_not_names(tmp_path):
    """``bench yaw/detect/align`` counted ``split*`` entries, so an archive left beside the
    folders (split1.zip) asked for a split that never existed."""
    from bench.readers import read_images_of

    root = tmp_path / "ijba"
    info = write_ijba(root)
    (root / "IJB-A_11_sets" / "split1.zip").write_bytes(b"PK")
    images = read_images_of(root, skipped=SkippedRows())
    assert len(images.samples) == 2 * info["rows_per_split"]


def test_spaces_at_line_ends_and_lines_of_spaces_in_the_ijbc_meta_files(tmp_path):
    """A line holding only spaces or a tab (a trailing "   " line left by an editor), or a
    space at a line's end, made a malformed line, so a strict read of the whole release
    failed on an invisible difference (the CSV lists skip blank lines, and insightface's
    readers take trailing spaces)."""
    root = tmp_path / "IJBC"
    info = write_ijbc(root)
    pairs = root / "meta" / "ijbc_template_pair_label.txt"
    lines = pairs.read_text().splitlines()
    pairs.write_text("\n".join([lines[0] + " ", "  \t", *lines[1:]]) + "\n   \n\t\n")
    ev = ijbc.read(root, cache_dir=tmp_path / "cache")
    assert len(ev.comparisons) == info["pairs"]
    with open(pairs, "a") as f:
        f.write("10 11 7\n")  # still named at its own line
    with pytest.raises(DataError, match=rf"ijbc_template_pair_label.txt:{len(lines) + 4}: label 7"):
        ijbc.read(root, cache_dir=tmp_path / "cache")
