"""``bench perf``: benchmarks that measure and record figures under results/perf/.

Every option is checked before any benchmark runs (numbers by the types of
:mod:`bench.cli.params`), so a bad value is a usage error, not a traceback minutes in.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..perf import SUITES
from .params import POSITIVE, NameList

OUT = click.option("--out", default="results/perf", show_default=True,
                   type=click.Path(file_okay=False, path_type=Path),
                   help="Folder for the CSV + markdown files.")


@click.group()
def perf():
    """Measure speed and record it (CSV + markdown, named by device, precision, torch)."""


@perf.command("metrics")
@OUT
@click.option("--pairs", type=POSITIVE, default=15_658_489, show_default=True,
              help="Comparisons (IJB-C 1:1 size).")
@click.option("--genuine", type=POSITIVE, default=19_557, show_default=True,
              help="Genuine comparisons among them (fewer than --pairs).")
@click.option("--repeats", type=POSITIVE, default=3, show_default=True,
              help="Timed runs of ours (the fastest counts).")
def metrics_cmd(out, pairs, genuine, repeats):
    """ROC/AUC/EER/TAR@FAR at IJB-C scale vs scikit-learn; fold accuracy vs a grid."""
    from tabulate import tabulate

    from ..fileio import prepare_output_dir
    from ..perf import metrics_bench
    from ..perf.record import environment, write_records

    _check_genuine(pairs, genuine)
    prepare_output_dir(out)  # not after minutes of timing
    records = metrics_bench.run(metrics_bench.MetricsBenchConfig(
        n_pairs=pairs, n_genuine=genuine, repeats=repeats))
    click.echo(tabulate(records, headers="keys", tablefmt="github", floatfmt=".4g"))
    csv_path, md_path = write_records(records, "metrics", out, environment("cpu"), "fp64")
    click.echo(f"wrote {csv_path} and {md_path}")


def _check_genuine(pairs: int, genuine: int) -> None:
    """A ROC needs impostor comparisons too: fewer genuine ones than --pairs (the one
    check between two options, so not a param type)."""
    if genuine >= pairs:
        raise click.BadParameter(f"{genuine} is not below --pairs {pairs}: the ROC needs "
                                 "impostor comparisons too", param_hint="'--genuine'")


def _suite_options(fn):
    for option in reversed([
        OUT,
        click.option("--device", default="auto", show_default=True,
                     help="auto (CUDA when available), cpu or cuda[:N]."),
        click.option("--quick", is_flag=True,
                     help="Sizes that finish in minutes on a 2-core CPU."),
        click.option("--compile", "compile_", is_flag=True,
                     help="Also measure torch.compile'd models (CUDA)."),
        click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path),
                     help="Where temporary JPEGs and datasets go (default: the temp folder)."),
        click.option("--images", type=POSITIVE,
                     help="extract: JPEG files to extract (e.g. 469375, IJB-C's crop count)."),
        click.option("--models", type=NameList("bench.models:MODELS"), default=None,
                     help="extract: comma-separated models instead of resnet18,resnet50 "
                          "(e.g. sface, dlib-resnet)."),
    ]):
        fn = option(fn)
    return fn


def _echo(name: str, records: list[dict], paths) -> None:
    from tabulate import tabulate

    click.echo(f"\n## {name}")
    click.echo(tabulate(records, headers="keys", tablefmt="github", floatfmt=".4g"))
    click.echo(f"wrote {paths[0]} and {paths[1]}")


def _run(names, out, device, quick, compile_, work_dir, images, models=None) -> None:
    import torch

    from ..fileio import prepare_output_dir
    from ..perf.suite import SuiteOptions, machine_note, run_all
    from ..perf.timing import resolve

    prepare_output_dir(out)  # not after the first benchmark
    try:
        dev = resolve(device)
    except RuntimeError as exc:  # e.g. --device gpu
        raise click.BadParameter(str(exc), param_hint="--device") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("CUDA is not available here", param_hint="--device")
    if dev.type == "cuda" and dev.index not in (None, torch.cuda.current_device()):
        # the suites and the recorded GPU name follow the current device: pick it outside
        raise click.BadParameter(f"{device}: choose the GPU with CUDA_VISIBLE_DEVICES={dev.index}"
                                 " and --device cuda", param_hint="--device")
    note = machine_note(dev.type)
    if note:
        click.echo(f"note: {note}")
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    run_all(SuiteOptions(device=device, quick=quick, compile=compile_, images=images,
                         models=models), out, tuple(names), work_dir, echo=_echo)


def _single(name: str, doc: str):
    @perf.command(name, help=doc)
    @_suite_options
    def command(out, device, quick, compile_, work_dir, images, models):
        _run((name,), out, device, quick, compile_, work_dir, images, models)

    command.__name__ = f"{name}_cmd"
    return command


score_cmd = _single("score", "The whole `bench score` job (1,000-replicate CIs) from 10^4 pairs to "
                    "IJB-C's 15.7M, next to pandas read_csv + scikit-learn roc_curve/auc.")
search_cmd = _single("search", "What a 1:N run does after extraction at IJB-C's size (69M probe x "
                     "gallery scores): CMC/TPIR, the score table, its metrics with CIs, the "
                     "score file; time and peak memory per stage.")
extract_cmd = _single("extract", "Feature extraction from JPEG files end to end (images/s, "
                      "ResNet-18/50 at 112) next to decode-only and the bare model forward.")
train_cmd = _single("train", "Training images/s per mode (naive: stem, end2end: stem + DREAM) "
                    "next to the bare step on random tensors.")
dream_cmd = _single("dream", "DREAM block latency and FLOPs relative to the stem.")
synth_cmd = _single("synth", "Synthetic dataset generation images/s, one worker and several.")


@perf.command("all")
@_suite_options
@click.option("--only", multiple=True,
              type=click.Choice(SUITES),
              help="Run only these (repeatable); default: every benchmark.")
def all_cmd(out, device, quick, compile_, work_dir, images, models, only):
    """Every benchmark, each recorded under --out. On a CPU pass --quick.

    On a GPU machine: bench perf all --device cuda --compile
    """
    _run(only or SUITES, out, device, quick, compile_, work_dir, images, models)
