"""The performance benchmarks on tiny sizes: their records, ratios and FLOP counts."""

from __future__ import annotations

import os

import pytest
import torch
from train_helpers import TINY

from bench.perf import dream_bench, extract_bench, synth_bench, timing


def test_timed_runs_warmup_then_repeats_and_keeps_the_fastest_round():
    calls = []
    seconds = timing.timed(lambda: calls.append(1), 3, torch.device("cpu"), warmup=2)
    assert len(calls) == 5 and seconds >= 0
    clock = iter([0.0, 5.0, 10.0, 12.0, 20.0, 29.0])  # rounds of 5, 2 and 9 seconds
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(timing.time, "perf_counter", lambda: next(clock))
        assert timing.timed(lambda: None, 4, torch.device("cpu"), warmup=0, rounds=3) == 2.0
    for bad in ({"repeats": 0}, {"repeats": 1, "rounds": 0}):
        with pytest.raises(ValueError):
            timing.timed(lambda: None, device=torch.device("cpu"), **bad)


def test_random_batch_is_deterministic_and_shaped():
    a = timing.random_batch(2, (8, 6), torch.device("cpu"), seed=1)
    assert a.shape == (2, 3, 8, 6) and torch.equal(a, timing.random_batch(2, (8, 6), "cpu", 1))


def test_replicate_links_distinct_files_cycling_the_base(tiny_synth, tmp_path):
    from bench.readers.manifest import read_samples

    base = read_samples(tiny_synth / "train").samples.head(3)
    rows = extract_bench.replicate(base, 7, tmp_path / "links")
    assert rows["path"].nunique() == 7
    assert rows["subject"].tolist() == base["subject"].tolist() * 2 + [base["subject"].iat[0]]
    assert os.path.samefile(rows["path"].iat[4], base["path"].iat[1])


def test_extract_bench_records_and_ratios(tiny_synth, tmp_path):
    cfg = extract_bench.ExtractBenchConfig(models=(TINY,), images=24, base_images=8,
                                           batch_size=8, workers=1, device="cpu",
                                           data=str(tiny_synth / "train"))
    records = extract_bench.run(cfg, tmp_path)
    assert [(r["what"], r["model"]) for r in records] == [
        ("decode", ""), ("bare_forward", TINY), ("extract", TINY)]
    decode, bare, extract = (r["images_per_s"] for r in records)
    assert min(decode, bare, extract) > 0
    row = records[2]
    assert row["ratio_to_decode"] == pytest.approx(extract / decode)
    assert row["ratio_to_bare"] == pytest.approx(extract / bare)
    assert row["ijbc_seconds"] == pytest.approx(extract_bench.IJBC_CROPS / extract)
    assert row["input"] == "16x16" and row["images"] == 24 and row["precision"] == "fp32"
    assert not row["channels_last"] and "meets_target" not in row  # targets are for CUDA
    # the pipeline decodes the same files and then does more: it cannot be much faster
    assert row["ratio_to_decode"] < 2


def test_dream_bench_flops_match_the_layer_shapes():
    records = dream_bench.run(dream_bench.DreamBenchConfig(
        models=(f"{TINY}-dream",), batch_size=4, steps=2, warmup=1, device="cpu"))
    by_part = {r["part"]: r for r in records}
    assert list(by_part) == ["stem", "dream_block", "model"]
    # tiny stem at 16x16: conv 3->8 (3x3, stride 2, 8x8 out), conv 8->16 (4x4 out), fc 16->16
    stem = 2 * (8 * 8 * 8 * 3 * 9 + 16 * 4 * 4 * 8 * 9 + 16 * 16)
    block = 2 * 2 * 16 * 16  # two 16x16 fc layers
    assert by_part["stem"]["gflops_per_image"] * 1e9 == pytest.approx(stem)
    assert by_part["dream_block"]["gflops_per_image"] * 1e9 == pytest.approx(block)
    assert by_part["dream_block"]["flops_vs_stem"] == pytest.approx(block / stem)
    assert by_part["model"]["flops_vs_stem"] == pytest.approx(1 + block / stem)
    assert by_part["stem"]["time_vs_stem"] == 1.0
    assert by_part["dream_block"]["time_vs_stem"] == pytest.approx(
        by_part["dream_block"]["ms_per_batch"] / by_part["stem"]["ms_per_batch"])
    assert isinstance(by_part["dream_block"]["meets_target"], bool)


def test_dream_bench_refuses_a_model_without_block():
    with pytest.raises(ValueError, match="no DREAM block"):
        dream_bench.run(dream_bench.DreamBenchConfig(models=(TINY,), batch_size=2, steps=1,
                                                     device="cpu"))


def test_synth_bench_counts_what_the_generator_wrote(tmp_path):
    from conftest import TINY_SYNTH

    records = synth_bench.run(synth_bench.SynthBenchConfig(changes=TINY_SYNTH, workers=(1,)),
                              tmp_path)
    (row,) = records
    # TINY_SYNTH: train 6 x 8, CFP 8 x (2 + 1), IJB-A 6 x (2 stills + 1 video x 2 frames)
    assert row["images"] == 48 + 24 + 24
    assert row["images_per_s"] == pytest.approx(row["images"] / row["seconds"])
    assert row["ratio_to_linear"] == 1.0 and row["bytes_per_image"] > 100
    assert not any(tmp_path.iterdir())  # the generated data is removed


@pytest.mark.gpu
def test_extract_bench_on_cuda_uses_bf16_channels_last(tmp_path):
    records = extract_bench.run(extract_bench.ExtractBenchConfig(
        models=("resnet18",), images=4096, base_images=64, batch_size=512, device="cuda"),
        tmp_path)
    extract = records[-1]
    assert extract["precision"] == "bf16" and extract["channels_last"]
    assert 0.05 < extract["ratio_to_decode"] < 1.2 and extract["ratio_to_bare"] < 1.2
    assert isinstance(extract["meets_target"], bool)


@pytest.mark.gpu
def test_dream_bench_on_cuda_block_is_small_beside_the_stem():
    records = dream_bench.run(dream_bench.DreamBenchConfig(
        models=("resnet18-dream",), batch_size=256, steps=10, warmup=3, device="cuda"))
    block = next(r for r in records if r["part"] == "dream_block")
    assert block["precision"] == "bf16" and block["flops_vs_stem"] < 1e-3
    assert block["time_vs_stem"] < 0.2


def test_search_bench_times_every_stage_of_a_1n_run(tmp_path):
    from bench.perf.search_bench import SearchBenchConfig, run

    records = run(SearchBenchConfig(galleries=(5, 4), probes=12, subjects=10, dim=8,
                                    n_boot=10), tmp_path)
    assert [r["task"].split()[0] for r in records] == ["identification", "identification",
                                                       "probe", "metrics", "write"]
    assert "CI with 10 probe-subject resamples" in records[1]["task"]
    assert all(r["score_rows"] == 9 * 12 and r["seconds"] >= 0 for r in records)
    assert records[-1]["file_mb"] > 0 and records[-1]["peak_rss_gib_so_far"] > 0
