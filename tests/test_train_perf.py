"""The training benchmark runs the real step on CPU and reports both rates."""

from __future__ import annotations

import pytest
from train_helpers import TINY

from bench.perf.train_bench import TrainBenchConfig, run


def test_train_bench_reports_bare_and_pipeline_rates():
    records = run(TrainBenchConfig(model=TINY, input_size=(16, 16), batch_size=8, images=32,
                                   classes=4, steps=6, warmup=1, device="cpu"))
    assert [r["what"] for r in records] == ["bare", "pipeline"]
    assert all(r["images_per_s"] > 0 and r["precision"] == "fp32" for r in records)
    ratio = records[1]["ratio_to_bare"]
    assert ratio == pytest.approx(records[1]["images_per_s"] / records[0]["images_per_s"])


@pytest.mark.gpu
def test_train_bench_on_cuda_uses_bf16_and_channels_last():
    records = run(TrainBenchConfig(batch_size=64, images=512, steps=5, warmup=2))
    assert records[0]["precision"] == "bf16" and records[0]["channels_last"]
    assert records[1]["ratio_to_bare"] > 0.5


@pytest.mark.gpu
def test_training_step_never_waits_for_the_host():
    import torch

    from bench.perf.train_bench import _setup
    from bench.train.data import stream_batches

    runner, sampler, data, device = _setup(TrainBenchConfig(
        batch_size=32, images=256, input_size=(64, 64), steps=1, warmup=1))
    flips = sampler.flips(0).to(device)
    batches = list(stream_batches(data, sampler, 0, 0, workers=0))
    runner.train_batch(data, *batches[0], flips)  # allocations, cuDNN choices
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for idx, crops in batches[1:]:
            runner.train_batch(data, idx, crops, flips)
    finally:
        torch.cuda.set_sync_debug_mode("default")
