"""One progress bar for every long stage (detection, alignment, extraction, pose).

Shown only on a terminal: in CI logs and redirected output a bar is noise, so ``tqdm``'s
``disable=None`` (off without a TTY) is the default, and ``--quiet`` turns it off for good.
The rate is shown in images per second.
"""

from __future__ import annotations

from tqdm.auto import tqdm


def progress_bar(iterable=None, *, enabled: bool = True, unit: str = "img", **kwargs) -> tqdm:
    return tqdm(iterable, disable=None if enabled else True, unit=unit, mininterval=0.5,
                dynamic_ncols=True, **kwargs)
