"""Atomic file writes: a reader sees the old file or the whole new one, never a part.

A base-layer module (imports nothing else of the package).  Every write goes to
a hidden temporary file in the destination's directory (``.<name>.<random>.tmp``),
created with its final mode before any data lands (0600 for a secret is never
readable by others, not even briefly); the data is fsynced, the temporary file
renamed over the destination with :func:`os.replace`, and the directory fsynced
so the rename survives a crash.  On any failure (an error, a full disk, Ctrl-C)
the temporary file is removed and an existing destination is left as it was.

- :func:`write_atomic` writes bytes or text in one go (configs, sidecars, secrets);
- :func:`open_atomic` yields the binary file object for a stream (downloads,
  decompression, copies); the file appears when the ``with`` block ends;
- :func:`replace_durably` puts a file written elsewhere in place (a verified
  ``.part`` download, a staged file);
- :func:`staged_dir` builds a directory beside its final place and renames it
  there whole (an extracted platform).
"""
from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_NAME_ROOM = 200        # of a file name's 255 bytes, leave room for the temporary's affixes


def write_atomic(path: str | os.PathLike, data: bytes | str, *, mode: int | None = None) -> Path:
    """Replace ``path`` with ``data`` (text is written as UTF-8) atomically; return ``path``.

    ``mode`` (e.g. ``0o600``) is set exactly, before the data is written; without it the
    file gets the mode a new file gets from :func:`open` (``0o666`` less the umask).
    """
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    with open_atomic(path, mode=mode) as f:
        f.write(payload)
    return Path(path)


@contextmanager
def open_atomic(path: str | os.PathLike, *, mode: int | None = None,
                buffering: int = -1) -> Iterator[BinaryIO]:
    """A binary file open for writing that replaces ``path`` when the block ends without error.

    ``buffering=0`` gives the raw file (``write`` returns the count, ``seek`` makes
    holes in a sparse file).  Do not close the file inside the block.  ``mode`` as
    in :func:`write_atomic`.
    """
    path = Path(path)
    fd, tmp = _create_temp(path, mode)
    try:
        with os.fdopen(fd, "wb", buffering=buffering) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    _fsync_dir(path.parent)


def replace_durably(src: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """``os.replace(src, dest)`` after fsyncing ``src``, then fsync ``dest``'s directory.

    For a file completed elsewhere (a verified ``.part`` download, a staged copy):
    ``dest`` is the old file or the whole new one, also after a crash.
    """
    src, dest = Path(src), Path(dest)
    fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(src, dest)
    _fsync_dir(dest.parent)
    return dest


@contextmanager
def staged_dir(path: str | os.PathLike) -> Iterator[Path]:
    """A new, empty, hidden directory beside ``path`` that becomes ``path`` when the block ends.

    Its files are fsynced and it is renamed into place only if the block ends
    without error (OSError if ``path`` is by then a directory that is not empty:
    one is never replaced); on any failure it is removed with all it holds.
    """
    path = Path(path)
    for _ in range(100):
        staging = _temp_name(path)
        try:
            staging.mkdir()
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"cannot create a staging directory beside {path}: every name tried exists")
    try:
        yield staging
        _fsync_tree(staging)
        os.rename(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_dir(path.parent)


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name[:_NAME_ROOM]}.{secrets.token_hex(4)}.tmp")


def _create_temp(path: Path, mode: int | None) -> tuple[int, Path]:
    """Create a new, hidden temporary file beside ``path`` with its final mode."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    for _ in range(100):
        tmp = _temp_name(path)
        try:
            fd = os.open(tmp, flags, 0o600 if mode is not None else 0o666)
        except FileExistsError:
            continue
        if mode is not None:
            try:
                os.fchmod(fd, mode)         # exactly this mode, whatever the umask
            except BaseException:
                os.close(fd)
                _remove(tmp)
                raise
        return fd, tmp
    raise FileExistsError(f"cannot create a temporary file beside {path}: every name tried exists")


def _remove(tmp: Path) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def _fsync_tree(root: Path) -> None:
    """fsync every regular file and directory under ``root`` (links are not followed)."""
    for where, _dirs, files in os.walk(root):
        for name in files:
            file = os.path.join(where, name)
            if os.path.isfile(file) and not os.path.islink(file):
                fd = os.open(file, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        _fsync_dir(Path(where))


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (where the filesystem supports it)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass                    # e.g. EINVAL: this filesystem cannot sync a directory
    finally:
        os.close(fd)
