"""Integer types sized to what they hold: the per-row arrays of a large score table
(IJB-C's 1:N: 69M rows) take four bytes a row where eight are not needed."""

from __future__ import annotations

import numpy as np


def index_dtype(n: int) -> type[np.signedinteger]:
    """The type of indices into, or counts of, ``n`` items: int32 below 2^31, else int64."""
    return np.int32 if n < 2**31 else np.int64
