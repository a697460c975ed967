"""Protocol files: every shipped one validates; extends, data location, counts, reports."""

from __future__ import annotations

import json
import os
import tomllib

import numpy as np
import pytest
from test_readers_fixtures import write_bin, write_cfp, write_ijba, write_manifest

from bench.errors import ConfigError, DataError
from bench.protocols import PROTOCOLS, Protocol, load_eval_set, load_protocol, locate_data
from bench.protocols.dataset import reader_kwargs
from bench.protocols.loading import dump_toml, load_file, shipped_dir, shipped_files
from bench.protocols.protocol import protocol_from_dict

REQUIRED = ("cfp-fp", "cfp-ff", "cfp-fp-bin", "ijba-verify", "ijba-search", "yaw-bins")


def test_required_protocols_ship_with_the_package():
    assert set(REQUIRED) <= set(PROTOCOLS.names())
    assert (shipped_dir() / "cfp-fp.toml").is_file()


@pytest.mark.parametrize("name", PROTOCOLS.names())
def test_shipped_protocol_is_valid(name):
    p = load_protocol(name)
    assert p.name == name and p.source.endswith(f"{name}.toml")
    assert p.main_score in p.metrics and p.folds.count >= 1
    assert p.yaw.bins[0] == 0 and list(p.yaw.bins) == sorted(p.yaw.bins)
    reader_kwargs(p)  # [reader] options are options of the format's reader
    # the resolved definition, written as TOML, loads back to the same protocol
    text = dump_toml(p.to_file_dict())
    again = protocol_from_dict(tomllib.loads(text), source=p.source)
    assert again == Protocol(**{**p.__dict__, "extends": None})


def test_extends_overrides_and_merges():
    fp, ff = load_protocol("cfp-fp"), load_protocol("cfp-ff")
    assert ff.extends == "cfp-fp" and ff.reader == {"pairs": "FF"}
    assert ff.counts["images"] == 5000 and ff.counts["subjects"] == fp.counts["subjects"] == 500
    assert ff.metrics == fp.metrics and ff.folds.count == fp.folds.count
    assert ff.folds.description != fp.folds.description
    fp_bin = load_protocol("cfp-fp-bin")  # another format: reader options and counts restart
    assert fp_bin.reader == {} and "subjects" not in fp_bin.counts
    assert load_protocol("ijba-search").reader == {"task": "search", "images": "auto"}


def _toml(path, text):
    path.write_text(text)
    return path


def test_user_protocol_file_extending_a_shipped_one(tmp_path):
    path = _toml(tmp_path / "cfp-fp-fine.toml",
                 'name = "cfp-fp-fine"\nextends = "cfp-fp"\n[yaw]\nbins = [0, 15, 30, 45, 60, 90]\n')
    p = load_protocol(str(path))
    assert p.yaw.bins == (0, 15, 30, 45, 60, 90) and p.format == "cfp"


@pytest.mark.parametrize("text, message", [
    ('name = "bad"\nextends = "cfp-fp"\ncolour = 1\n', "unknown protocol keys"),
    ('name = "bad"\nextends = "nope"\n', "extends unknown protocol 'nope'"),
    ('name = "bad"\nextends = "bad.toml"\n', "loops back"),
    ('name = "other"\nextends = "cfp-fp"\n', "must match the file name"),
    ('name = "bad"\nextends = "cfp-fp"\n[metrics]\nmain = "rank1"\n', "main_score 'rank1'"),
    ('name = "bad"\nextends = "cfp-fp"\n[metrics]\nreport = ["acc"]\nmain = "acc"\n',
     "unknown metric"),
    ('name = "bad"\nextends = "cfp-fp"\n[yaw]\nbins = [10, 20]\n', "must start at 0"),
    ('name = "bad"\nextends = "cfp-fp"\n[yaw]\npair_rule = "mean"\n', "pair_rule"),
    ('name = "bad"\nextends = "cfp-fp"\n[folds]\nkind = "random"\n', "folds.kind"),
    ('name = "bad"\nextends = "cfp-fp"\n[pooling]\nflip = "yes"\n', "pooling.flip"),
    ('name = "bad"\nextends = "cfp-fp"\n[counts]\nfaces = 3\n', "unknown counts"),
    ('name = "bad"\nformat = "cfp"\n', r"missing required protocol keys \['data'\]"),
    ('name = "bad"\nformat = "cfp"\ndata = ""\n', "data must be a non-empty string"),
    ('name = "bad"\nextends = "cfp-fp"\ntask = "search"\n', "unknown metric"),
    ('name = "bad\n', "not valid TOML"),
])
def test_bad_protocol_files(tmp_path, text, message):
    path = _toml(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError, match=message):
        load_file(path, shipped_files())


def test_unknown_reader_option_is_named(tmp_path):
    path = _toml(tmp_path / "bad.toml", 'name = "bad"\nextends = "cfp-fp"\n[reader]\npair = "FF"\n')
    with pytest.raises(ConfigError, match=r"\['pair'\] are not options of the 'cfp' reader"):
        reader_kwargs(load_file(path))


def test_unknown_protocol_suggests_names():
    with pytest.raises(ConfigError, match="Did you mean cfp-fp"):
        load_protocol("cfp-pf")


# ------------------------------------------------------------------ where the data is

def test_data_location_precedence(tmp_path, monkeypatch):
    p = load_protocol("cfp-fp")
    for name in ("root", "env_root", "cfp_env", "default"):
        (tmp_path / name / "cfp").mkdir(parents=True)
    monkeypatch.delenv("BENCH_DATA", raising=False)
    monkeypatch.delenv("BENCH_CFP", raising=False)
    with pytest.raises(ConfigError, match="pass --data DIR or set \\$BENCH_CFP or \\$BENCH_DATA"):
        locate_data(p)
    assert locate_data(p, default=tmp_path / "default").dataset == tmp_path / "default/cfp"
    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "env_root"))
    assert locate_data(p, default=tmp_path / "default").dataset == tmp_path / "env_root/cfp"
    monkeypatch.setenv("BENCH_CFP", str(tmp_path / "cfp_env/cfp"))
    assert locate_data(p).dataset == tmp_path / "cfp_env/cfp"
    got = locate_data(p, tmp_path / "root")
    assert got.dataset == tmp_path / "root/cfp" and got.root == tmp_path / "root"
    # --data may also name the dataset itself
    assert locate_data(p, tmp_path / "root/cfp").dataset == tmp_path / "root/cfp"
    with pytest.raises(DataError, match="data folder not found"):
        locate_data(p, tmp_path / "absent")


# ------------------------------------------------------------------ load_eval_set

@pytest.fixture()
def data_root(tmp_path):
    """A data root laid out like the synthetic one: cfp/, ijba/, cfp_fp.bin, synth.json."""
    root = tmp_path / "data"
    write_cfp(root / "cfp", subjects=4, folds=2)
    write_ijba(root / "ijba", splits=2)
    write_bin(root / "cfp_fp.bin", n_pairs=10)
    write_manifest(root / "people", subjects=8, per_subject=4)
    return root


def _protocol(name, **changes):
    p = load_protocol(name)
    folds = changes.pop("folds", None)
    if folds is not None:
        changes["folds"] = type(p.folds)(kind=p.folds.kind, count=folds)
    return Protocol(**{**p.__dict__, **changes})


def test_cfp_fp_report_counts_folds_and_yaw_cells(data_root, tmp_path):
    (data_root / "synth.json").write_text(json.dumps({"protocol_counts": {"cfp-fp": {
        "images": 20, "subjects": 4, "pairs": 8, "genuine": 4, "impostor": 4, "folds": 2}}}))
    ev, ev_report = load_eval_set(_protocol("cfp-fp", folds=2), data_root,
                                  cache_dir=tmp_path / "c")
    r = ev_report
    assert r.counts["images"] == 20 and r.counts["pairs"] == 8 and not r.mismatches
    assert r.count_source == str(data_root / "synth.json")
    assert r.per_fold == [{"fold": 1, "genuine": 2, "impostor": 2},
                          {"fold": 2, "genuine": 2, "impostor": 2}]
    # every pair is frontal (|yaw| 3) vs profile (|yaw| 71): cell [0,30) x [60,90]
    assert r.yaw["cells"] == ["[0,30)", "[30,60)", "[60,90]"]
    assert r.yaw["genuine"] == [[0, 0, 4], [0, 0, 0], [0, 0, 0]]
    assert r.yaw["impostor"] == [[0, 0, 4], [0, 0, 0], [0, 0, 0]]
    assert r.yaw["by_rule"] == {"bins": ["[0,30)", "[30,60)", "[60,90]"], "genuine": [0, 0, 4],
                                "impostor": [0, 0, 4]}
    text = r.format()
    assert "images 20" in text and "expected counts" in text and "all match" in text
    json.dumps(r.to_dict())  # plain data


def test_count_mismatch_strict_lenient_and_real_counts(data_root, tmp_path):
    (data_root / "synth.json").write_text(json.dumps({"protocol_counts": {"cfp-fp": {
        "images": 7000}}}))
    p = _protocol("cfp-fp", folds=2)
    with pytest.raises(DataError, match="count mismatch .* images: expected 7000, found 20"):
        load_eval_set(p, data_root)
    ev, ev_report = load_eval_set(p, data_root, lenient=True)
    assert ev_report.mismatches == ["images: expected 7000, found 20"]
    assert load_eval_set(Protocol(**{**p.__dict__, "strict_counts": False}), data_root)[1] \
        .mismatches
    # without synth.json the protocol's own (real dataset) counts apply
    (data_root / "synth.json").unlink()
    with pytest.raises(DataError, match="pairs: expected 7000, found 8"):
        load_eval_set(p, data_root)
    (data_root / "synth.json").write_text("{}")
    ev, ev_report = load_eval_set(p, data_root)
    assert ev_report.expected == {} and "declares no counts" in ev_report.count_source


def test_lenient_report_lists_each_skipped_row(data_root):
    (data_root / "synth.json").write_text("{}")
    same = data_root / "cfp/Protocol/Split/FP/02/same.txt"
    with open(same, "a") as f:
        f.write("3,999\n")
    with pytest.raises(DataError, match="index out of range"):
        load_eval_set(_protocol("cfp-fp", folds=2), data_root)
    ev, ev_report = load_eval_set(_protocol("cfp-fp", folds=2), data_root, lenient=True)
    assert [(s["path"], s["line"], s["text"]) for s in ev_report.skipped] == \
        [(str(same), 3, "3,999")]
    assert "skipped rows (lenient): 1" in ev_report.format()


def test_every_format_through_load_eval_set(data_root, tmp_path):
    (data_root / "synth.json").write_text("{}")
    cache = tmp_path / "cache"
    ff, ff_report = load_eval_set(_protocol("cfp-ff", folds=2), data_root)
    assert ff_report.counts["images"] == 12
    fp_bin, fp_bin_report = load_eval_set(_protocol("cfp-fp-bin", folds=2), data_root,
                                          cache_dir=cache)
    assert fp_bin_report.counts["pairs"] == 10 and fp_bin_report.counts["subjects"] == 0
    assert fp_bin_report.yaw["cells"][-1] == "unknown"
    verify, verify_report = load_eval_set(_protocol("ijba-verify", folds=2), data_root)
    assert verify_report.counts["pairs"] == 16 and verify_report.counts["templates"] == 24
    search, search_report = load_eval_set(_protocol("ijba-search", folds=2), data_root)
    assert search_report.counts["mated"] == 6 and search_report.counts["non_mated"] == 2
    assert search_report.per_fold[0] == {"fold": 1, "gallery": 3, "probes": 4, "mated": 3,
                                         "non_mated": 1}
    assert "templates per yaw bin" in search_report.format()
    bins, bins_report = load_eval_set(_protocol("yaw-bins", folds=2, data="people"), data_root,
                         cache_dir=cache)
    assert bins_report.counts["genuine"] == bins_report.counts["impostor"] > 0
    assert bins.samples.provenance["split_sha256"]


def test_dataset_itself_as_data_and_what_was_looked_for(data_root, tmp_path):
    (data_root / "synth.json").write_text("{}")
    ev, ev_report = load_eval_set(_protocol("cfp-fp", folds=2), data_root / "cfp")
    assert ev_report.dataset == str(data_root / "cfp")
    assert "synth.json" in ev_report.count_source  # found above the dataset folder
    with pytest.raises(DataError, match="also looked for .*empty/cfp_fp.bin"):
        (tmp_path / "empty").mkdir()
        load_eval_set(_protocol("cfp-fp-bin"), tmp_path / "empty")


@pytest.mark.parametrize("written_via_link", [False, True])
def test_yaw_file_matches_through_a_symlinked_data_folder(tmp_path, written_via_link):
    """/data -> /mnt/disk/data: a yaw file written through one path applies to the dataset
    read through the other (the same files), and a yaw file for other images is still
    refused without a data-root hint."""
    real = tmp_path / "disk" / "photos"
    write_manifest(real, subjects=4, per_subject=2).unlink()
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    written, read = (link, real) if written_via_link else (real, link)
    images = sorted(written.glob("*/*.jpg"))
    _write_yaw_file(tmp_path / "yaw.csv", images, [10.0] * len(images))
    p = _protocol("yaw-bins", folds=2)
    ev, report = load_eval_set(p, read, cache_dir=tmp_path / "c", yaw_file=tmp_path / "yaw.csv")
    assert report.yaw["known_images"] == len(images) == 8
    _write_yaw_file(tmp_path / "other.csv", [tmp_path / "elsewhere.jpg"], [10.0])
    with pytest.raises(DataError, match="none of the 8 images") as err:
        load_eval_set(p, read, cache_dir=tmp_path / "c", yaw_file=tmp_path / "other.csv")
    assert "also looked for" not in str(err.value)


def test_error_inside_a_dataset_file_gets_no_data_root_hint(tmp_path):
    """--data naming the manifest itself: a bad line in it is the error, shown with that
    line last; no 'also looked for MANIFEST/cfp', a path that cannot exist under a file."""
    manifest = write_manifest(tmp_path / "own", subjects=4, per_subject=2)
    manifest.write_text(manifest.read_text() + "s00/0000.jpg,s00,1,2,3,extra\n")
    with pytest.raises(DataError) as err:
        load_eval_set(_protocol("yaw-bins", folds=2), manifest, cache_dir=tmp_path / "c")
    assert err.value.line == 10 and "also looked for" not in str(err.value)
    assert str(err.value).endswith("s00/0000.jpg,s00,1,2,3,extra")


# ------------------------------------------------------------------ yaw file

def _write_yaw_file(path, image_paths, yaws, relative=False):
    base = path.parent
    rows = ["path,yaw,pitch,roll,source"]
    rows += [f"{os.path.relpath(p, base) if relative else p},{y},0,0,image:test"
             for p, y in zip(image_paths, yaws, strict=True)]
    path.write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize("relative", [False, True])
def test_yaw_file_gives_a_bin_its_yaw_bins(data_root, tmp_path, relative):
    p = Protocol(**{**_protocol("cfp-fp-bin").__dict__, "strict_counts": False})
    plain, plain_report = load_eval_set(p, data_root, cache_dir=tmp_path / "c")
    assert np.isnan(plain.samples.samples["yaw"]).all()
    paths = plain.samples.samples["path"].tolist()
    yaw_csv = tmp_path / "poses" / "yaw.csv"
    yaw_csv.parent.mkdir()
    # pair i is images 2i and 2i+1: a frontal beside a profile
    _write_yaw_file(yaw_csv, paths, [5.0 if i % 2 == 0 else -80.0 for i in range(len(paths))],
                    relative=relative)
    ev, ev_report = load_eval_set(p, data_root, cache_dir=tmp_path / "c", yaw_file=yaw_csv)
    s = ev.samples.samples
    assert (s["yaw_source"] == "image:test").all()
    assert ev.samples.provenance["files"]["yaw.csv"]
    assert ev_report.yaw["by_rule"]["genuine"] == [0, 0, 5]
    assert ev_report.yaw["by_rule"]["impostor"] == [0, 0, 5]


def test_yaw_file_errors_name_the_file_and_line(data_root, tmp_path):
    p = Protocol(**{**_protocol("cfp-fp-bin").__dict__, "strict_counts": False})
    other = tmp_path / "other.csv"
    _write_yaw_file(other, [tmp_path / "not-this-dataset.jpg"], [10.0])
    with pytest.raises(DataError, match="none of the 20 images") as err:
        load_eval_set(p, data_root, cache_dir=tmp_path / "c", yaw_file=other)
    assert str(other) in str(err.value)
    bad = tmp_path / "bad.csv"
    bad.write_text("path,yaw\nx.jpg,10\ny.jpg,left\n")
    with pytest.raises(DataError, match=r"bad\.csv:3"):
        load_eval_set(p, data_root, cache_dir=tmp_path / "c", yaw_file=bad)
    with pytest.raises(DataError, match="missing.csv"):
        load_eval_set(p, data_root, cache_dir=tmp_path / "c", yaw_file=tmp_path / "missing.csv")


def test_yaw_file_bins_identity_folders_for_yaw_bins(tmp_path, monkeypatch):
    """A folder of photos has no yaw: ``bench run -p yaw-bins --yaw-file`` must build its
    split on the file's poses (the split is made while reading, before any later step)."""
    root = tmp_path / "photos"
    manifest = write_manifest(root, subjects=4, per_subject=2)
    manifest.unlink()  # identity folders: root/<subject>/<image>, yaw unknown
    images = sorted(root.glob("*/*.jpg"))
    _write_yaw_file(tmp_path / "yaw.csv", images, [10.0 if i % 2 else 70.0
                                                   for i in range(len(images))])
    monkeypatch.chdir(tmp_path / "photos")  # a relative --yaw-file is the cwd's
    p = _protocol("yaw-bins", folds=2)
    ev, report = load_eval_set(p, root, cache_dir=tmp_path / "c", yaw_file="../yaw.csv")
    assert ev.samples.samples["yaw"].notna().all() and len(ev.comparisons) > 0
    assert report.yaw["known_images"] == len(images)
    assert ev.samples.provenance["files"]["yaw.csv"]
    other = tmp_path / "other.csv"
    _write_yaw_file(other, [tmp_path / "not-this-dataset.jpg"], [10.0])
    with pytest.raises(DataError, match="none of the 8 images") as err:
        load_eval_set(p, root, cache_dir=tmp_path / "c", yaw_file=other)
    assert str(other) in str(err.value)


def test_a_found_dataset_with_too_little_in_it_gets_no_data_root_hint(tmp_path):
    """--data naming the dataset folder itself: an error about what is in it (too few
    identities for the folds) is not about where the dataset is, so no 'also looked for
    DIR/...: not found' after it; the hint stays for files that are missing."""
    own = tmp_path / "own"
    write_manifest(own, subjects=4, per_subject=2)
    with pytest.raises(DataError, match="too few") as err:
        load_eval_set(_protocol("yaw-bins"), own, cache_dir=tmp_path / "c")
    assert "also looked for" not in str(err.value)
