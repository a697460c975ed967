"""Atomic writes, temporary folders, output guards, file locks and content hashes.

A killed process never leaves a half-written result: files and folders are built under a
hidden temporary name that carries the owner's pid and host (``.NAME.tmp-PID@HOST-XXXX``)
and renamed into place when complete; :func:`clean_stale_temps` removes the ones whose
owner is gone, so the next start cleans up after a SIGKILL. Everything is created with the
process umask (0644 files and 0755 folders under umask 022), never the 0600/0700 of
``tempfile``. :func:`prepare_output_dir` and :func:`check_output_file` check an output
before any work: not a file where a folder is wanted, writable, and not one of the inputs
or of the files read from them, such as a dataset's images and lists (nor inside or around
one).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gzip
import hashlib
import io
import json
import math
import os
import re
import secrets
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import BenchError, ConfigError

_UMASK_LOCK = threading.Lock()


def absolute(path: str | Path) -> Path:
    """``path`` made absolute with its ``..`` and ``.`` folded away (links kept, unlike
    ``resolve``): the one spelling of a dataset's root, so that its listed files, which
    readers normalise, stay inside it (``Path.absolute`` keeps ``x/../cfp``)."""
    return Path(os.path.abspath(path))


def current_umask() -> int:
    """The process umask (read from /proc where possible: setting it to read it races)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _temp_tag() -> str:
    """``tmp-PID@HOST-`` : what :func:`clean_stale_temps` reads back."""
    return f"tmp-{os.getpid()}@{_host_tag()}-"


_STALE = re.compile(r"(?:\.tmp-|\.partial-)(\d+)(?:@([0-9a-f]{8}))?(?:-[^/]*)?$")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temps(parent: str | Path) -> list[Path]:
    """Remove hidden temporary entries of ``parent`` whose owner process is gone.

    Entries are those this module names ``.NAME.tmp-PID@HOST-XXXX`` (and the older
    ``.NAME.partial-PID`` of ``bench synth``); one is stale when its pid no longer runs on
    this host (a folder shared between hosts keeps the other hosts' entries). Returns the
    removed paths.
    """
    parent = Path(parent)
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    host = _host_tag()
    for entry in entries:
        if not entry.name.startswith("."):
            continue
        m = _STALE.search(entry.name)
        if m is None or (m.group(2) is not None and m.group(2) != host):
            continue
        if _pid_alive(int(m.group(1))):
            continue
        _restore_swapped_out(entry, entry.name[1:m.start()])
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
        removed.append(entry)
    return removed


#: :func:`staged_dir` moves a replaced output into a temp folder of this suffix first.
SWAPPED_OUT = ".old"


def _restore_swapped_out(entry: Path, name: str) -> None:
    """A writer killed between :func:`staged_dir`'s two renames left the previous output
    in ``.NAME.old.tmp-*/old`` and NAME missing: put it back rather than delete it."""
    if not name.endswith(SWAPPED_OUT) or entry.is_symlink():
        return
    target = entry.parent / name[:-len(SWAPPED_OUT)]
    if (entry / "old").is_dir() and not target.exists():
        with contextlib.suppress(OSError):
            (entry / "old").rename(target)


def make_temp_dir(parent: str | Path, name: str) -> Path:
    """A new hidden folder ``parent/.NAME.tmp-PID@HOST-XXXX`` with the umask's mode."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        path = parent / f".{name}.{_temp_tag()}{secrets.token_hex(4)}"
        try:
            path.mkdir()  # mode 0o777 & ~umask
            return path
        except FileExistsError:
            continue


#: Failures of the machine, not of the code: a full disk, a read-only or forbidden place.
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES,
                                errno.EPERM, errno.EFBIG})


def output_error(exc: OSError, path: str | Path | None = None,
                 hint: str = "free some space or choose another output folder") -> BenchError:
    """A one-line user error for a failed write (full disk, permission, read-only...)."""
    where = path if path is not None else exc.filename
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason += f" ({hint})"
    return BenchError(f"cannot write {where}: {reason}" if where else f"cannot write: {reason}")


def _resolved_each(paths: Iterable[str | Path | None]) -> Iterator[tuple[str | Path, str]]:
    """``(path, its resolved form)`` for each path but None. A dataset lists 10^5 images
    in a few folders, and resolving walks every component of a path (an lstat each, some
    microseconds): each folder is resolved once and read once for its links, and a file
    is resolved itself only when it is a link."""
    folders: dict[str, tuple[str, frozenset[str]]] = {}
    for item in paths:
        if item is None:
            continue
        head, _, name = os.path.abspath(os.path.expanduser(item)).rpartition(os.sep)
        head = head or os.sep  # "/x" splits into "" and "x"
        if head not in folders:
            folders[head] = _as_folder(os.path.realpath(head)), _links_in(head)
        folder, links = folders[head]
        yield item, os.path.realpath(folder + name) if name in links else folder + name


def _links_in(folder: str) -> frozenset[str]:
    """Names of the symbolic links in ``folder`` (none when it cannot be read)."""
    try:
        with os.scandir(folder) as entries:
            return frozenset(entry.name for entry in entries if entry.is_symlink())
    except OSError:
        return frozenset()


def _as_folder(path: str) -> str:
    """``path`` ending in one separator: what the paths under it start with (text, not
    Path objects, for 10^5 images)."""
    return path.rstrip(os.sep) + os.sep


def _check_not_input(path: Path, inputs: Iterable[str | Path | None], what: str,
                     inside: bool = True, contains: bool = True) -> None:
    [(_, target)] = _resolved_each([path])
    around = _as_folder(target)
    for item, source in _resolved_each(inputs):
        if target == source:
            raise ConfigError(f"{what} {path} is the input {item}: refusing to write over it; "
                              "choose another path")
        if inside and target.startswith(_as_folder(source)):
            raise ConfigError(f"{what} {path} is inside the input {item}: refusing to write "
                              "into an input; choose a folder outside it")
        if contains and source.startswith(around):
            raise ConfigError(f"{what} {path} contains the input {item}: refusing to write "
                              "over an input; choose another folder")


def _existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists():
        path = path.parent
    return path


def _probe_writable(folder: Path) -> None:
    """Create and delete a file in ``folder`` (os.access is wrong on some mounts)."""
    fd, probe = tempfile.mkstemp(dir=folder, prefix=f".bench-probe.{_temp_tag()}")
    os.close(fd)
    os.unlink(probe)


def _check_writable(folder: Path, what: str, shown: Path) -> None:
    if not folder.is_dir():
        raise ConfigError(f"{what} {shown}: {folder} is a file, not a folder")
    try:
        _probe_writable(folder)
    except OSError as exc:
        raise ConfigError(f"{what} {shown} is not writable: {exc.strerror or exc}") from None


def prepare_output_dir(path: str | Path, inputs: Iterable[str | Path | None] = (),
                       what: str = "--out", *, owned: Iterable[str] | None = None,
                       read: Iterable[str | Path | None] = ()) -> Path:
    """Check an output folder before any work; nothing is created.

    Refuses a path that is a file, that is (or is inside, or contains) one of ``inputs``
    or of the files ``read`` from them (a dataset's images and lists: see
    :func:`check_output_file`), or whose folder (or nearest existing parent) is not
    writable. Errors are ConfigErrors (``error: ...``, exit 2 from the CLI). A shared
    results folder that a command writes only at some names (``owned``, e.g. ``runs`` and
    ``leaderboard.csv``) may hold inputs elsewhere (a yaw table beside the runs); those
    names may not hold or be one.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path} is a file, not a folder")
    inputs = [*inputs, *read]  # a folder is replaced whole: a file read is an input like DATA
    _check_not_input(path, inputs, what, contains=owned is None)
    for name in owned or ():
        _check_not_input(path / name, inputs, what, inside=False)
    _check_writable(_existing_ancestor(path), what, path)
    return path


def check_output_file(path: str | Path, inputs: Iterable[str | Path | None] = (),
                      what: str = "--out", *, read: Iterable[str | Path | None] = ()) -> Path:
    """Like :func:`prepare_output_dir` for an output file: not a folder, not an input, its
    folder writable. A new file inside an input folder is allowed (a yaw table beside the
    images), so ``read`` names the files the command reads inside (or outside) the inputs:
    the images a dataset lists, its manifest and lists; the output may not be one of them
    (nor lie inside or contain one: a folder of point files is read whole)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder, not a file")
    _check_not_input(path, inputs, what, inside=False)
    _check_not_input(path, read, what)
    _check_writable(_existing_ancestor(path.parent), what, path)
    return path


@contextlib.contextmanager
def staged_dir(out: str | Path, marker: str | None = None) -> Iterator[Path]:
    """Build a whole output folder in a hidden sibling and swap it in at the end.

    Yields the temporary folder; on success it replaces ``out`` (an earlier output is
    removed only then), on any error or interrupt it is deleted and ``out`` is untouched.
    An existing non-empty ``out`` is replaced only if it holds ``marker`` (a file this
    command writes), so nothing else is ever deleted.
    """
    out = Path(os.path.abspath(out))
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and (marker is None or not (out / marker).is_file()):
        raise ConfigError(f"{out} is not empty and holds no {marker}: refusing to replace it "
                          "(choose a new or empty folder)")
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(out.parent)
    tmp = make_temp_dir(out.parent, out.name)
    try:
        yield tmp
        if out.exists():
            trash = make_temp_dir(out.parent, f"{out.name}{SWAPPED_OUT}")
            out.rename(trash / "old")
            tmp.rename(out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
            raise output_error(exc, exc.filename or out) from None
        raise


_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=-]*")


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created, with its folder, when missing) for the
    block: processes that share the file take turns, and the kernel releases a lock whose
    holder died."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def safe_name(name: str, what: str = "name") -> str:
    """``name`` if it can be used as one path component (no separator, no ``..``, no
    hidden or empty name); else a ConfigError."""
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or ".." in name:
        raise ConfigError(f"{what} {name!r} cannot be used in a file name: use letters, "
                          "digits and . _ - + = only, starting with a letter or digit")
    return name


#: temporary files of this process's unfinished atomic writes
_OPEN_TEMPS: set[str] = set()


def remove_open_temps() -> list[str]:
    """Remove the temporary files of this process's unfinished atomic writes (the CLI's
    Ctrl-C handler calls it): an interrupt can land after a temporary file is created and
    before, or while, its own handler removes it. Returns the paths removed."""
    removed = []
    for tmp in list(_OPEN_TEMPS):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
            removed.append(tmp)
        _OPEN_TEMPS.discard(tmp)
    return removed


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8",
                 durable: bool = True) -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it over ``path`` only on success.

    The rename is atomic on POSIX, so readers see either the old or the new file, never a
    half-written one. A ``.gz`` suffix gzips the content deterministically (no timestamp).
    ``durable=False`` skips the fsync: for many small cache entries whose reader checks
    them and recomputes a damaged one (an fsync each costs more than the work cached).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # registered before it exists, so that a Ctrl-C landing anywhere after its creation
    # (even before the handler below is set up, or inside it) leaves it to remove_open_temps
    tmp = str(path.parent / f".{path.name}.{_temp_tag()}{secrets.token_hex(6)}")
    _OPEN_TEMPS.add(tmp)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchmod(fd, 0o666 & ~current_umask())  # as mkstemp, 0600 whatever the umask
        with os.fdopen(fd, "wb") as raw:
            # level 1: level 9 costs as much as formatting a score CSV (69M IJB-C 1:N rows:
            # 1,352 s against 543 s) for files 5-15 % smaller
            sink: IO = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=1) \
                if path.suffix == ".gz" else raw
            out: IO = sink if "b" in mode else io.TextIOWrapper(sink, encoding=encoding, newline="")
            yield out
            out.flush()
            if out is not sink:
                out.detach()
            if sink is not raw:
                sink.close()
            raw.flush()
            if durable:
                os.fsync(raw.fileno())
        os.replace(tmp, path)
        _OPEN_TEMPS.discard(tmp)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        _OPEN_TEMPS.discard(tmp)
        if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
            raise output_error(exc, path) from None  # a write error names no file itself
        raise


def json_safe(obj: Any) -> Any:
    """Replace NaN and +-inf by None recursively: JSON never holds them."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:  # numpy scalars
        return json_safe(obj.item())
    if hasattr(obj, "tolist"):
        return json_safe(obj.tolist())
    return obj


def dump_json(obj: Any, path: str | Path | None = None, indent: int | None = 2,
              durable: bool = True) -> str:
    """Serialise with NaN/inf as null; write atomically when ``path`` is given."""
    text = json.dumps(json_safe(obj), indent=indent, sort_keys=False, allow_nan=False) + "\n"
    if path is not None:
        with atomic_write(path, durable=durable) as f:
            f.write(text)
    return text


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
