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
READERS.add_lazy("ijbc", "bench.readers.ijbc:read",
                 description="IJB-B / IJB-C in insightface's release layout (1:1 and 1:N)")
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


#: Layouts :func:`read_images_of` tells apart (``auto`` looks at the path).
IMAGE_LAYOUTS = ("auto", "manifest", "cfp", "ijba", "ijbc", "insightface_bin")


def read_images_of(path, fmt: str = "auto", *, skipped, cache_dir=None):
    """The images (a :class:`bench.data.SampleSet`) of a dataset in any layout, for the
    commands that work on images rather than a protocol (``bench detect``, ``yaw``,
    ``align``); with a lenient ``skipped``, without the images that do not decode.
    ``auto``: an insightface ``.bin`` file, an IJB-A root (its 1:1 metadata), else a CFP
    root, a manifest CSV, a folder with ``metadata.csv`` or identity folders.
    One function, so every command reads a dataset (and names a .bin's images) alike.
    """
    from ..errors import ConfigError
    from ..fileio import absolute

    if fmt not in IMAGE_LAYOUTS:
        raise ConfigError(f"unknown layout {fmt!r}; layouts: {', '.join(IMAGE_LAYOUTS)}")
    path = absolute(path)
    if fmt == "auto" and path.suffix.lower() == ".bin" and path.is_file():
        fmt = "insightface_bin"
    elif fmt == "auto" and (path / "IJB-A_11_sets").is_dir():
        fmt = "ijba"
    elif fmt == "auto" and (path / "meta").is_dir() and (path / "loose_crop").is_dir():
        fmt = "ijbc"
    from ..data.decode_check import without_undecodable

    if fmt in ("auto", "manifest", "cfp"):
        from .yaw_split import read_source

        samples = read_source(path, fmt, skipped)
    else:
        options = {"task": "verify"} if fmt in ("ijba", "ijbc") else {}
        if fmt == "ijba":  # the reader counts split folders: a split1.zip beside them is none
            options["folds"] = None
        samples = read_dataset(fmt, path, skipped=skipped, cache_dir=cache_dir,
                               **options).samples
    return without_undecodable(samples, skipped)
