"""Write a whole synthetic dataset: plan, render in worker processes, write the protocols.

Everything goes into a temporary sibling folder that is renamed to ``out`` only when
complete, so a failure or an interrupt leaves no half-written dataset behind.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

from .. import __version__
from ..errors import ConfigError, DataError
from ..face3d import LANDMARK_NAMES
from ..fileio import atomic_write, clean_stale_temps, dump_json
from ..lifecycle import die_with_parent
from . import cfp, ijba, ijbc, train
from .config import GENERATOR_VERSION, SynthConfig
from .jobs import IdentityJob, IdentityResult, run_job
from .render import FOCAL_PX, IMAGE_SIZE, PRINCIPAL

MANIFEST = "synth.json"
#: What a generated dataset holds at its top level (``--force`` replaces nothing else).
DATASET_ENTRIES = frozenset({MANIFEST, "train", "cfp", "ijba", "IJBC", "cfp_fp.bin",
                             "cfp_ff.bin"})


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _check_target(out: Path, force: bool, force_name: str) -> None:
    if out.exists() and not out.is_dir():
        raise DataError("exists and is not a folder", out)
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise DataError(f"folder is not empty; pass {force_name} to replace it", out)
        if not (out / MANIFEST).is_file():
            raise DataError(f"folder is not empty and holds no {MANIFEST}: refusing to replace "
                            "something that is not a synthetic dataset", out)
        foreign = sorted(p.name for p in out.iterdir() if p.name not in DATASET_ENTRIES)
        if foreign:
            raise DataError(f"{force_name} would delete {', '.join(foreign[:5])}"
                            f"{' ...' if len(foreign) > 5 else ''}, which a synthetic dataset "
                            "does not hold: move them away first", out)


def _make_staging(out: Path) -> Path:
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(parent)  # the staging folders of killed runs
        staging = parent / f".{out.name}.partial-{os.getpid()}"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
    except OSError as exc:
        raise DataError(f"cannot write the dataset here: {exc.strerror or exc}", parent) from None
    if not os.access(staging, os.W_OK):  # e.g. running as root on a read-only mount
        shutil.rmtree(staging, ignore_errors=True)
        raise DataError("cannot write the dataset here: folder is not writable", parent)
    return staging


def _pool_context():
    # fork starts workers instantly and needs no importable __main__; elsewhere spawn.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


@contextlib.contextmanager
def _results(jobs: list[IdentityJob], config: SynthConfig, root: Path,
             workers: int) -> Iterator[Iterator[IdentityResult]]:
    """Results in job order (deterministic whichever worker ran a job), pooled or inline.

    A worker that dies raises ``BrokenProcessPool`` here instead of hanging the run.
    """
    work = partial(run_job, difficulty=config.difficulty, root=str(root))
    if workers <= 1 or len(jobs) <= 1:
        yield map(work, jobs)
        return
    pool = ProcessPoolExecutor(min(workers, len(jobs)), mp_context=_pool_context(),
                               initializer=die_with_parent, initargs=(os.getpid(),))
    try:
        yield pool.map(work, jobs, chunksize=1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def generate(out: str | Path, config: SynthConfig | None = None, *, force: bool = False,
             workers: int | None = None,
             progress: bool | Callable[[int], None] = False,
             preset_name: str | None = None, force_name: str = "force=True") -> dict:
    """Generate the dataset into ``out``; returns the ``synth.json`` content plus timings.

    ``progress``: True for a tqdm bar, or a callable given the number of images just written.
    ``force_name``: how the caller's user asks for ``force``, named when ``out`` is refused
    (a command line passes its flag, ``"--force"``).
    """
    config = config if config is not None else SynthConfig()
    out = Path(out).absolute()
    _check_target(out, force, force_name)
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")

    started = time.perf_counter()
    train_jobs = train.plan(config)
    cfp_jobs = cfp.plan(config)
    ijba_plan = ijba.plan(config)
    jobs = train_jobs + cfp_jobs + ijba_plan.jobs
    total = sum(len(j.images) for j in jobs)

    tick = progress if callable(progress) else None
    bar = None
    staging = _make_staging(out)
    try:
        cfp_results, ijba_results = [], []
        with atomic_write(staging / train.FOLDER / "metadata.csv") as stream, \
                _results(jobs, config, staging, workers) as results:
            if progress is True:  # after the fork: no bar thread in the workers
                from ..progress import progress_bar
                bar = progress_bar(total=total, desc="synth", leave=False)
                tick = bar.update
            manifest = train.ManifestWriter(stream)
            for k, (job, result) in enumerate(zip(jobs, results, strict=True)):
                if k < len(train_jobs):
                    manifest.add(job, result)
                elif k < len(train_jobs) + len(cfp_jobs):
                    cfp_results.append(result)
                else:
                    ijba_results.append(result)
                if tick is not None:
                    tick(len(job.images))
        cfp_counts = cfp.write_protocol(staging, config)
        cfp.write_poses(staging, cfp_jobs)
        bin_counts = cfp.write_bins(staging)
        ijba_counts = ijba.write_protocol(staging, config, ijba_plan, ijba_results)
        ijbc_counts = ijbc.write_layout(staging, config, ijba_plan, ijba_results)
        summary = _summary(config, preset_name, staging, {
            "train": {"identities": len(train_jobs), "images": manifest.rows},
            "cfp": {"identities": len(cfp_jobs), "frontal": config.cfp.frontal * len(cfp_jobs),
                    "profile": config.cfp.profile * len(cfp_jobs), **cfp_counts},
            "ijba": {"subjects": len(ijba_plan.jobs), "images": len(ijba_plan.records),
                     "media": sum(len(m) for m in ijba_plan.media.values()),
                     **ijba_counts},
            "ijbc": ijbc_counts,
            "bins": bin_counts,
            "images": total,
        })
        dump_json(summary, staging / MANIFEST)
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    summary = dict(summary, path=str(out), seconds=round(time.perf_counter() - started, 2))
    return summary


def protocol_counts(counts: dict) -> dict[str, dict[str, int]]:
    """What each shipped protocol must find in the dataset, from what the generator wrote.

    ``synth.json`` declares them as ``protocol_counts``, so the runner checks the synthetic
    set as strictly as a real one (a truncated list or a lost image is a count mismatch).
    """
    cfp_c, ijba_c = counts["cfp"], counts["ijba"]
    out = {}
    for name, proto, images in (("cfp-fp", "FP", cfp_c["frontal"] + cfp_c["profile"]),
                                ("cfp-ff", "FF", cfp_c["frontal"])):
        same, diff = cfp_c["pairs"][proto]["same"], cfp_c["pairs"][proto]["diff"]
        out[name] = {"images": images, "subjects": cfp_c["identities"],
                     "folds": cfp_c["splits"], "pairs": same + diff, "genuine": same,
                     "impostor": diff}
    for name, file in (("cfp-fp-bin", "cfp_fp.bin"), ("cfp-ff-bin", "cfp_ff.bin")):
        b = counts["bins"][file]
        out[name] = {"images": 2 * b["pairs"], "pairs": b["pairs"], "genuine": b["genuine"],
                     "impostor": b["pairs"] - b["genuine"]}
    genuine, impostor = sum(ijba_c["genuine"]), sum(ijba_c["impostor"])
    out["ijba-verify"] = {"folds": ijba_c["splits"], "pairs": genuine + impostor,
                          "genuine": genuine, "impostor": impostor}
    if "ijbc" in counts:  # datasets of generator version 4 on
        c = counts["ijbc"]
        out["ijbc-verify"] = {k: c[k] for k in ("images", "templates", "pairs", "genuine",
                                                "impostor")}
        out["ijbc-search"] = {"subjects": c["subjects"]}
    return out


def _summary(config: SynthConfig, preset_name: str | None, root: Path, counts: dict) -> dict:
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    return {
        "generator": "bench.synth",
        "version": GENERATOR_VERSION,
        "bench_version": __version__,
        "seed": config.seed,
        "preset": preset_name,
        "config": config.to_dict(),
        "counts": counts,
        "protocol_counts": protocol_counts(counts),
        "bytes": size,
        "image_size": [IMAGE_SIZE, IMAGE_SIZE],
        "camera": {"focal_px": FOCAL_PX, "principal_point": list(PRINCIPAL),
                   "pixel_centres": "integer coordinates (OpenCV)",
                   "model": "pinhole, R(yaw, pitch, roll) @ p + t as in bench.face3d"},
        "landmarks": list(LANDMARK_NAMES),
        "pose_convention": "bench.face3d: R = Rz(roll) Rx(pitch) Ry(yaw), degrees; positive "
                           "yaw turns the nose towards the image's left",
    }
