"""Environment description and atomic CSV + markdown output of benchmark figures."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from ..fileio import atomic_write


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str = "cpu") -> dict:
    """What a figure depends on: machine, device, library versions, date."""
    import numpy
    import torch

    env = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "host_cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        # other processes' load at the start: on a shared machine the figures are noisy
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else "",
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else "",
    }
    try:
        import sklearn

        env["sklearn"] = sklearn.__version__
    except ImportError:  # pragma: no cover
        pass
    return env


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower()


def write_records(records: list[dict], suite: str, out_dir: str | Path, env: dict,
                  precision: str = "fp32", note: str = "") -> tuple[Path, Path]:
    """Write ``<suite>-<device>-<precision>-torch<ver>.{csv,md}`` (timm-style names).

    ``note`` (e.g. how noisy the machine was) goes under the environment in the markdown."""
    out_dir = Path(out_dir)
    device = env["gpu"] or f"cpu{env['cpu_count']}"
    stem = f"{suite}-{_slug(device)}-{precision}-torch{_slug(env['torch'].split('+')[0])}"
    df = pd.DataFrame(records)
    for k, v in env.items():
        df[k] = v
    csv_path, md_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.md"
    with atomic_write(csv_path) as f:
        df.to_csv(f, index=False, float_format="%.6g")
    shown = pd.DataFrame(records)
    env_lines = "\n".join(f"- {k}: {v}" for k, v in env.items() if v != "")
    with atomic_write(md_path) as f:
        f.write(f"# {suite} benchmark\n\n{env_lines}\n\n")
        if note:
            f.write(f"{note}\n\n")
        f.write(tabulate(shown, headers="keys", tablefmt="github", showindex=False,
                         floatfmt=".4g"))
        f.write("\n")
    return csv_path, md_path
