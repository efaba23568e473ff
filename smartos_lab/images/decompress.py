"""Stream-gunzip a file into place: sparse output, atomic rename, no half files."""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

from ..atomic import open_atomic
from ..errors import ImageError
from .progress import Progress

_CHUNK = 1 << 20
_BLOCK = 64 << 10
_ZEROS = bytes(_BLOCK)


def gunzip(src: str | os.PathLike, dest: str | os.PathLike, *,
           progress: Progress | None = None) -> Path:
    """Decompress ``src`` (gzip) into ``dest`` and return ``dest``.

    Runs of zero bytes become holes (the 1.9 GB SmartOS USB image is mostly
    empty).  Output goes to a temporary file next to ``dest`` that is renamed
    only when the whole stream decompressed and its CRC matched; a truncated
    or corrupt stream, or a full disk, raises ImageError and leaves nothing.
    """
    src, dest = Path(src), Path(dest)
    total = src.stat().st_size
    if progress:
        progress.start(f"decompressing {src.name}", total)
    try:
        with open(src, "rb") as raw, gzip.GzipFile(fileobj=raw) as gz, \
                open_atomic(dest, buffering=0) as out:
            size = 0
            while chunk := gz.read(_CHUNK):
                _write_sparse(out, chunk)
                size += len(chunk)
                if progress:
                    progress.update(raw.tell())
            out.truncate(size)
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise ImageError(f"{src} is not a complete gzip file ({e}); "
                         "it is truncated or corrupt: download or copy it again") from None
    except OSError as e:
        raise ImageError(f"decompressing {src} into {dest.parent} failed: {e}") from None
    if progress:
        progress.finish()
    return dest


def _write_sparse(out, chunk: bytes) -> None:
    for i in range(0, len(chunk), _BLOCK):
        block = chunk[i:i + _BLOCK]  # bytes compare is memcmp; memoryview's is slow
        if block == _ZEROS[:len(block)]:
            out.seek(len(block), os.SEEK_CUR)
            continue
        view = memoryview(block)
        while view:
            view = view[out.write(view):]
