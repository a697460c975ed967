"""Worker processes that never outlive their parent.

A pool worker calls :func:`die_with_parent` first (as the pool's initializer): on Linux the
kernel sends it SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)``), even when the
parent itself was SIGKILLed and could run no clean-up; elsewhere, and as a fallback, a
daemon thread polls the parent pid and exits the worker once it changes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1


def _set_pdeathsig(sig: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int, interval: float) -> None:
    while True:
        time.sleep(interval)
        if os.getppid() != parent:
            os._exit(1)  # the parent is gone: no clean-up is owed to anyone


def die_with_parent(parent: int, interval: float = 1.0) -> None:
    """Make the calling (worker) process exit when process ``parent`` dies."""
    _set_pdeathsig(signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch, args=(parent, interval), daemon=True,
                     name="parent-watchdog").start()
    # a Ctrl-C reaches the whole process group: the parent handles it and stops the pool
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
