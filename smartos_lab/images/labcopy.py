"""Copy a (large, mostly empty) image for one lab: reflink if the filesystem can,
else a sparse copy that skips holes (``cp --reflink=auto --sparse=always`` semantics)."""
from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from ..atomic import open_atomic
from ..errors import ImageError

_FICLONE = 0x40049409  # linux/fs.h _IOW(0x94, 9, int)
_CHUNK = 8 << 20


def copy_for_lab(src: str | os.PathLike, dst: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Copy ``src`` to ``dst`` and return ``dst``; the original is only read.

    The copy appears atomically (temporary file + rename).  Raises ImageError
    if ``dst`` exists and ``overwrite`` is false, or if the copy fails (a
    failed copy leaves nothing behind).
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise ImageError(f"cannot copy {src}: not a file")
    if dst.exists() and not overwrite:
        raise ImageError(f"{dst} already exists; not overwriting it")
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(src, "rb") as s, open_atomic(dst) as d:
            size = os.fstat(s.fileno()).st_size
            if not _reflink(s.fileno(), d.fileno()):
                _sparse_copy(s.fileno(), d.fileno(), size)
                os.ftruncate(d.fileno(), size)
    except OSError as e:
        raise ImageError(f"copying {src} to {dst} failed: {e}") from None
    return dst


def _reflink(sfd: int, dfd: int) -> bool:
    try:
        fcntl.ioctl(dfd, _FICLONE, sfd)
        return True
    except OSError:
        return False


def _data_extents(fd: int, size: int):
    """(start, end) byte ranges holding data; the whole file if holes can't be found."""
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:        # only a hole is left
                return
            if e.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                yield pos, size
                return
            raise
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, end
        pos = end


def _sparse_copy(sfd: int, dfd: int, size: int) -> None:
    for start, end in _data_extents(sfd, size):
        pos = start
        while pos < end:
            n = min(_CHUNK, end - pos)
            try:
                copied = os.copy_file_range(sfd, dfd, n, pos, pos)
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                data = os.pread(sfd, n, pos)
                copied = os.pwrite(dfd, data, pos)
            if copied == 0:
                raise OSError(errno.EIO, f"source shrank while copying (at byte {pos})")
            pos += copied
