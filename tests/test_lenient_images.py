"""``--lenient`` and images that do not decode.

A .bin's undecodable blob was skipped with its pair, but a CFP, IJB-A or manifest image that
does not decode failed the whole lenient run. Strict (the default) still stops at the list
line naming the image; lenient decodes every image before any work, leaves out each one that
fails (listed with the skipped rows), the templates it leaves empty and every comparison
using them, and says so in the run's notes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from bench.cli import main
from bench.protocols import load_eval_set


def _copy(tiny_synth: Path, tmp_path: Path, name: str) -> Path:
    data = tmp_path / "data"
    shutil.copytree(tiny_synth / name, data / name)
    shutil.copy(tiny_synth / "synth.json", data / "synth.json")
    return data


def _corrupt(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:40])  # a truncated download


def _run(data: Path, tmp_path: Path, protocol: str, *extra: str):
    return CliRunner().invoke(main, ["run", "-p", protocol, "-m", "sface", "--data", str(data),
                                     "--out", str(tmp_path / "results"), "--n-boot", "0",
                                     "--quiet", *extra],
                              env={"BENCH_CACHE": str(tmp_path / "cache")})


def _result(tmp_path: Path) -> tuple[dict, pd.DataFrame]:
    run_dir = next((tmp_path / "results" / "runs").iterdir())
    return (json.loads((run_dir / "result.json").read_text()),
            pd.read_csv(run_dir / "scores.csv.gz", dtype={"a": str, "b": str}))


def _pairs_with(data: Path, protocol: str, template: str) -> int:
    evalset, _ = load_eval_set(protocol, data)
    comp = evalset.comparisons
    return int(((comp["a"] == template) | (comp["b"] == template)).sum())


def test_cfp_strict_run_names_the_image_at_its_pair_list_line(sface_available, tiny_synth,
                                                              tmp_path):
    data = _copy(tiny_synth, tmp_path, "cfp")
    image = data / "cfp/Data/Images/002/frontal/02.jpg"  # F4: line 4 of Pair_list_F.txt
    _corrupt(image)
    res = _run(data, tmp_path, "cfp-fp")
    assert res.exit_code != 0
    assert f"{data / 'cfp/Protocol/Pair_list_F.txt'}:4: image {image}: cannot decode image" \
        in res.output, res.output
    assert not (tmp_path / "results" / "runs").exists()


def test_cfp_lenient_run_leaves_out_the_image_and_its_pairs(sface_available, tiny_synth,
                                                            tmp_path):
    data = _copy(tiny_synth, tmp_path, "cfp")
    n_pairs = len(load_eval_set("cfp-fp", data)[0].comparisons)
    with_f4 = _pairs_with(data, "cfp-fp", "F4")
    assert with_f4 > 0
    image = data / "cfp/Data/Images/002/frontal/02.jpg"  # F4
    _corrupt(image)
    res = _run(data, tmp_path, "cfp-fp", "--lenient")
    assert res.exit_code == 0, res.output
    result, scores = _result(tmp_path)
    assert "F4" not in set(scores["a"]) | set(scores["b"])
    assert len(scores) == n_pairs - with_f4 == result["metrics"]["n_pairs"]
    validation = result["data"]["validation"]
    listed = [r for r in validation["skipped"] if "cannot decode" in r["message"]]
    assert [(r["path"], r["line"]) for r in listed] == \
        [(str(data / "cfp/Protocol/Pair_list_F.txt"), 4)]
    assert str(image) in listed[0]["message"]
    assert validation["counts"]["pairs"] == n_pairs - with_f4
    note = (f"1 image that cannot be decoded skipped (lenient; each listed with the skipped "
            f"rows); 1 template left without an image (F4) dropped, with the {with_f4} "
            f"pair{'s' * (with_f4 != 1)} naming it")
    assert any(note in n for n in validation["notes"]), validation["notes"]
    printed = [line for line in res.output.splitlines() if line.startswith("notes:")]
    assert printed and note in printed[0], res.output


def test_ijba_lenient_run_drops_a_template_left_without_images(sface_available, tiny_synth,
                                                               tmp_path):
    """Template 7 of split 1 has one image (img/10.jpg): it goes with its pairs, said in
    the notes. Template 4 of split 1 (and 18 of split 2) keeps img/2.jpg when img/1.jpg,
    listed by both splits' metadata, does not decode: both list lines are reported."""
    data = _copy(tiny_synth, tmp_path, "ijba")
    n_pairs = len(load_eval_set("ijba-verify", data)[0].comparisons)
    with_7 = _pairs_with(data, "ijba-verify", "1:7")
    assert with_7 > 0
    images = data / "ijba/images"
    _corrupt(images / "img/10.jpg")
    _corrupt(images / "img/1.jpg")
    strict = _run(data, tmp_path, "ijba-verify")
    assert strict.exit_code != 0
    meta = data / "ijba/IJB-A_11_sets/split1/verify_metadata_1.csv"
    assert f"{meta}:2: image {images / 'img/1.jpg'}: cannot decode image" in strict.output, \
        strict.output

    res = _run(data, tmp_path, "ijba-verify", "--lenient")
    assert res.exit_code == 0, res.output
    result, scores = _result(tmp_path)
    assert "1:7" not in set(scores["a"]) | set(scores["b"])
    assert {"1:4", "2:18"} <= set(scores["a"]) | set(scores["b"])
    assert len(scores) == n_pairs - with_7
    validation = result["data"]["validation"]
    listed = sorted((Path(r["path"]).name, r["line"]) for r in validation["skipped"]
                    if "cannot decode" in r["message"])
    assert listed == [("verify_metadata_1.csv", 2), ("verify_metadata_1.csv", 9),
                      ("verify_metadata_2.csv", 2)]
    assert any(n.startswith("2 images that cannot be decoded skipped (lenient")
               and f"1 template left without an image (1:7) dropped, with the {with_7} pairs"
               in n and "2 templates pooled from the images left" in n
               for n in validation["notes"]), validation["notes"]


def test_validate_lenient_lists_the_image_and_strict_still_fails(tiny_synth, tmp_path):
    data = _copy(tiny_synth, tmp_path, "cfp")
    _corrupt(data / "cfp/Data/Images/002/frontal/02.jpg")
    args = ["protocols", "validate", "cfp-fp", "--data", str(data), "--cache-dir",
            str(tmp_path / "cache")]
    strict = CliRunner().invoke(main, args)
    assert strict.exit_code != 0 and "1 image(s) cannot be decoded" in strict.output
    lenient = CliRunner().invoke(main, [*args, "--lenient", "--json",
                                        str(tmp_path / "report.json")])
    assert lenient.exit_code == 0, lenient.output
    assert f"{data / 'cfp/Protocol/Pair_list_F.txt'}:4" in lenient.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert [r["line"] for r in report["skipped"]] == [4]


def test_validate_lenient_skips_an_undecodable_manifest_image(tmp_path):
    """A manifest's images feed a yaw-binned split: a pair using the image is left out."""
    from test_readers_fixtures import write_manifest

    path = write_manifest(tmp_path / "own", subjects=6, per_subject=4)
    image = tmp_path / "own" / "s00" / "0003.jpg"  # line 5 of the manifest
    image.write_bytes(b"not a jpeg")
    protocol = tmp_path / "own-bins.toml"
    protocol.write_text('name = "own-bins"\nextends = "yaw-bins"\n[reader]\npairs_per_cell = 2\n'
                        '[folds]\nkind = "identity-disjoint"\ncount = 2\n')
    args = ["protocols", "validate", str(protocol), "--data", str(path), "--cache-dir",
            str(tmp_path / "cache"), "--json", str(tmp_path / "report.json")]
    assert CliRunner().invoke(main, args).exit_code != 0
    res = CliRunner().invoke(main, [*args, "--lenient"])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert [(r["path"], r["line"]) for r in report["skipped"]] == [(str(path), 5)]
    evalset, _ = load_eval_set(str(protocol), path, cache_dir=tmp_path / "cache")
    comp = evalset.comparisons
    uses = int(((comp["a"] == "s00/0003.jpg") | (comp["b"] == "s00/0003.jpg")).sum())
    assert uses > 0 and report["counts"]["pairs"] == len(comp) - uses


def test_lenient_load_drops_the_pair_of_a_bin_jpeg_that_does_not_decode(tmp_path):
    """A .bin blob that starts like a JPEG passed the reader's check and failed the run."""
    from test_readers_fixtures import tiny_image

    from bench.readers.insightface_bin import write_bin

    blobs = [tiny_image(i) for i in range(6)]
    blobs[3] = blobs[3][:40]  # pair 2, truncated
    path = tmp_path / "cfp_fp.bin"
    write_bin(path, blobs, [True, False, True])
    evalset, report = load_eval_set("cfp-fp-bin", path, lenient=True, decode=True,
                                    cache_dir=tmp_path / "cache")
    assert evalset.comparisons["a"].tolist() == ["0", "4"]
    # image 2 decodes: it stays a sample, as images no pair uses do in other datasets
    assert sorted(evalset.samples.samples["template"]) == ["0", "1", "2", "4", "5"]
    assert [r["path"].endswith("000003.jpg") for r in report.skipped] == [True]


def test_without_samples_drops_emptied_templates_and_what_names_them(tmp_path):
    """Pure: the set given is left as it was. A gallery template left without images goes
    with its entry, and a probe whose only mate it was becomes a non-mated search."""
    from bench.data.evalset import EvalSet, Removal, without_samples
    from bench.data.samples import SampleSet, new_samples

    samples = new_samples(["g1.jpg", "g2a.jpg", "g2b.jpg", "p1.jpg", "p2.jpg"],
                          ["1", "2", "2", "1", "2"], template=["G1", "G2", "G2", "P1", "P2"])
    search = pd.DataFrame({"template": ["G1", "G2", "P1", "P2"], "subject": ["1", "2", "1", "2"],
                           "role": ["gallery", "gallery", "probe", "probe"], "fold": 1})
    evalset = EvalSet(SampleSet(tmp_path, samples, {"notes": ["read"]}), search=search)
    kept, removal = without_samples(evalset, [True, True, False, False, False])
    assert kept.search["template"].tolist() == ["G2", "P1", "P2"]
    assert kept.samples.samples["path"].tolist() == ["g2b.jpg", "p1.jpg", "p2.jpg"]
    assert removal == Removal(samples=2, templates=("G1",), shrunk=1, comparisons=1, unmated=1)
    assert len(evalset.samples.samples) == 5 and len(evalset.search) == 4

    pairs = pd.DataFrame({"a": ["G1", "G2", "P1"], "b": ["P1", "P2", "P2"], "label": [1, 1, 0],
                          "fold": 1})
    verify = EvalSet(SampleSet(tmp_path, samples), comparisons=pairs)
    kept, removal = without_samples(verify, [True, False, False, False, False])
    assert kept.comparisons[["a", "b"]].values.tolist() == [["G2", "P2"], ["P1", "P2"]]
    assert removal == Removal(samples=1, templates=("G1",), shrunk=0, comparisons=1, unmated=0)


def test_validate_failing_on_an_image_does_not_send_the_user_to_validate(tiny_synth, tmp_path):
    """Bug: the undecodable-image error ended "`bench protocols validate` checks every
    image" even when that was the command that had just failed; it must name the fix."""
    data = _copy(tiny_synth, tmp_path, "cfp")
    _corrupt(data / "cfp/Data/Images/002/frontal/02.jpg")
    res = CliRunner().invoke(main, ["protocols", "validate", "cfp-fp", "--data", str(data)],
                             env={"BENCH_CACHE": str(tmp_path / "cache")})
    assert res.exit_code != 0 and "cannot decode image" in res.output, res.output
    assert "bench protocols validate" not in res.output and "--lenient" in res.output


def test_a_lenient_run_that_left_images_out_never_replaces_the_complete_run(
        sface_available, tiny_synth, tmp_path):
    """Bug: the run id hashed the list files alone, so a lenient run on a copy with one
    damaged image took the complete run's id and replaced its folder and leaderboard row
    with fewer pairs under the same name (and the same data.sha256)."""
    data = _copy(tiny_synth, tmp_path, "cfp")
    assert _run(data, tmp_path, "cfp-fp").exit_code == 0
    (complete,) = (tmp_path / "results" / "runs").iterdir()
    whole = json.loads((complete / "result.json").read_text())
    _corrupt(data / "cfp/Data/Images/002/frontal/02.jpg")
    res = _run(data, tmp_path, "cfp-fp", "--lenient")
    assert res.exit_code == 0, res.output
    runs = sorted((tmp_path / "results" / "runs").iterdir())
    assert len(runs) == 2 and complete in runs
    assert json.loads((complete / "result.json").read_text()) == whole
    (partial,) = [r for r in runs if r != complete]
    cut = json.loads((partial / "result.json").read_text())
    assert cut["metrics"]["n_pairs"] < whole["metrics"]["n_pairs"]
    assert cut["data"]["sha256"] != whole["data"]["sha256"]
