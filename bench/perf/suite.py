"""Every benchmark with sizes for the device it runs on, recorded under ``results/perf/``.

``full`` sizes are the issue's (batch 512, tens of thousands of images: meant for a GPU);
``quick`` sizes finish in a few minutes on a 2-core CPU. Each suite writes
``<suite>-<device>-<precision>-torch<version>.{csv,md}`` through :mod:`.record`.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..modes import model_for_mode
from . import SUITES, timing
from .record import environment, write_records

#: training modes that run an identification step (stitch trains the block on cached
#: features, retrain = end2end then stitch): the stem alone, and stem + DREAM block
TRAIN_MODES = ("naive", "end2end")


@dataclass(frozen=True)
class SuiteOptions:
    device: str = "auto"
    quick: bool = False
    compile: bool = False
    images: int | None = None   # extraction: files to extract instead of the default count
    models: tuple[str, ...] | None = None  # extraction: models instead of ResNet-18/50


def machine_note(device: str) -> str:
    """Said beside CPU figures: they come from a machine other people's jobs share."""
    if device == "cuda":
        return ""
    return ("CPU figures on a shared 2-core machine (see load_avg_1m): other processes "
            "compete for the cores, so they are noisy and only their order of magnitude "
            "and ratios carry over.")


def _metrics(opts: SuiteOptions, device, work_dir: Path) -> tuple[list[dict], str, str]:
    from . import metrics_bench

    cfg = metrics_bench.MetricsBenchConfig(repeats=1 if opts.quick else 3)
    return metrics_bench.run(cfg), "cpu", "fp64"


def _score(opts: SuiteOptions, device, work_dir: Path) -> tuple[list[dict], str, str]:
    from . import score_bench

    cfg = score_bench.ScoreBenchConfig()
    if opts.quick:
        cfg = score_bench.ScoreBenchConfig(sizes=(10_000, 100_000, 1_000_000),
                                           subject_sizes=(1_000_000,))
    return score_bench.run(cfg, work_dir), "cpu", "fp64"


def _extract(opts: SuiteOptions, device, work_dir: Path) -> tuple[list[dict], str, str]:
    from . import extract_bench

    if device.type == "cuda":
        cfg = extract_bench.ExtractBenchConfig(device="cuda", compile=opts.compile)
    elif opts.quick:
        cfg = extract_bench.ExtractBenchConfig(images=256, base_images=64, batch_size=64,
                                               workers=2, device="cpu")
    else:
        cfg = extract_bench.ExtractBenchConfig(images=2048, batch_size=256, workers=2,
                                               device="cpu")
    if opts.images is not None:
        cfg = dataclasses.replace(cfg, images=opts.images)
    if opts.models:
        cfg = dataclasses.replace(cfg, models=tuple(opts.models))
    return extract_bench.run(cfg, work_dir), device.type, timing.precision(device)


def _train(opts: SuiteOptions, device, work_dir: Path) -> tuple[list[dict], str, str]:
    from .train_bench import TrainBenchConfig, run

    if device.type == "cuda":
        stems, sizes = ("resnet18", "resnet50"), {"batch_size": 512, "images": 16_384}
    elif opts.quick:
        stems = ("resnet18",)
        sizes = {"batch_size": 16, "images": 64, "classes": 16, "steps": 3, "warmup": 1}
    else:
        stems = ("resnet18",)
        sizes = {"batch_size": 64, "images": 512, "classes": 64, "steps": 10, "warmup": 2}
    records = []
    for stem in stems:
        for mode in TRAIN_MODES:
            cfg = TrainBenchConfig(model=model_for_mode(stem, mode), device=device.type,
                                   compile=opts.compile and device.type == "cuda", **sizes)
            records += [{"mode": mode, **r} for r in run(cfg)]
    return records, device.type, timing.precision(device)


def _dream(opts: SuiteOptions, device, work_dir: Path) -> tuple[list[dict], str, str]:
    from .dream_bench import DreamBenchConfig, run

    if device.type == "cuda":
        cfg = DreamBenchConfig(device="cuda", compile=opts.compile)
    elif opts.quick:
        cfg = DreamBenchConfig(batch_size=16, steps=2, warmup=1, device="cpu")
    else:
        cfg = DreamBenchConfig(batch_size=64, steps=5, warmup=2, device="cpu")
    return run(cfg), device.type, timing.precision(device)


def _synth(opts: SuiteOptions, device, work_dir: Path) -> tuple[list[dict], str, str]:
    from .synth_bench import SynthBenchConfig, run

    changes = {}
    if opts.quick:  # about 200 images across the three parts
        changes = {"train.identities": 8, "train.images_per_identity": 10,
                   "cfp.identities": 8, "cfp.splits": 2, "cfp.frontal": 4, "cfp.profile": 2,
                   "ijba.subjects": 8, "ijba.stills": 3, "ijba.videos": 1, "ijba.frames": 3,
                   "ijba.splits": 2}
    return run(SynthBenchConfig(changes=changes), work_dir), "cpu", "fp32"


def _search(opts: SuiteOptions, device, work_dir: Path) -> tuple[list[dict], str, str]:
    from .search_bench import SearchBenchConfig, run

    # quick: a tenth of each side, a hundredth of the 69M score rows
    cfg = SearchBenchConfig(galleries=(177, 176), probes=1_959) if opts.quick \
        else SearchBenchConfig()
    return run(cfg, work_dir), "cpu", "fp64"


RUNNERS: dict[str, Callable] = {"metrics": _metrics, "score": _score, "search": _search,
                                "extract": _extract, "train": _train, "dream": _dream,
                                "synth": _synth}


def run_suite(name: str, opts: SuiteOptions, out_dir: str | Path,
              work_dir: str | Path | None = None) -> tuple[list[dict], tuple[Path, Path]]:
    """Run one suite and write its records; returns them and the (csv, md) paths."""
    if name not in RUNNERS:
        raise ValueError(f"unknown benchmark {name!r}; available: {', '.join(SUITES)}")
    device = timing.resolve(opts.device)
    with tempfile.TemporaryDirectory(prefix=f"bench-perf-{name}-",
                                     dir=work_dir) as tmp:
        env_device = "cuda" if device.type == "cuda" else "cpu"
        env = environment(env_device)  # before the run: the load it met
        records, ran_on, precision = RUNNERS[name](opts, device, Path(tmp))
    if ran_on != env_device:
        env = environment(ran_on) | {"load_avg_1m": env["load_avg_1m"]}
    # other models than a suite's defaults get their own files: never overwrite its figures
    stem = name if not opts.models else f"{name}-{'-'.join(opts.models)}"
    return records, write_records(records, stem, out_dir, env, precision, machine_note(ran_on))


def run_all(opts: SuiteOptions, out_dir: str | Path, names: tuple[str, ...] = SUITES,
            work_dir: str | Path | None = None,
            echo: Callable[[str, list[dict], tuple[Path, Path]], None] | None = None) -> dict:
    """Every suite in ``names``, in order; ``echo(name, records, paths)`` after each."""
    written = {}
    for name in names:
        records, paths = run_suite(name, opts, out_dir, work_dir)
        written[name] = paths
        if echo is not None:
            echo(name, records, paths)
    return written
