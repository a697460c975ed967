"""Dataset readers, one module per on-disk format; each returns a :class:`bench.data.EvalSet`.

``READERS`` maps a protocol's ``format`` to the reader's ``read(path, ..., skipped=)``,
imported on first use so that listing protocols imports no reader.
"""

from __future__ import annotations

from ..registry import Registry

READERS: Registry = Registry("dataset format")
READERS.add_lazy("cfp", "bench.readers.cfp:read", description="CFP original layout (FF, FP)")
READERS.add_lazy("insightface_bin", "bench.readers.insightface_bin:read",
                 description="insightface verification .bin (pickle of JPEG bytes + issame)")
READERS.add_lazy("ijba", "bench.readers.ijba:read", description="IJB-A 11 and 1N sets")
READERS.add_lazy("manifest", "bench.readers.manifest:read",
                 description="manifest CSV or identity folders, with a comparison list")
READERS.add_lazy("yaw_split", "bench.readers.yaw_split:read",
                 description="yaw-binned identity-disjoint split built from any images")


def read_dataset(fmt: str, path, *, skipped, cache_dir=None, **options):
    """``READERS[fmt](path, ...)``, giving ``cache_dir`` to the readers that keep derived data.

    ``cache_dir`` None means :func:`bench.data.cache.reader_cache`: every caller (``bench run``,
    ``bench yaw``, ``bench protocols validate``) must find a .bin's images at the same paths.
    """
    import inspect

    from ..data.cache import reader_cache

    read = READERS.get(fmt)
    if "cache_dir" in inspect.signature(read).parameters:
        options["cache_dir"] = reader_cache() if cache_dir is None else cache_dir
    return read(path, skipped=skipped, **options)
