"""HTTP downloads with resume, checksum verification and bounded waits (stdlib only).

``download(url, dest)`` streams into ``dest.part``, resumes it with an HTTP
Range request after a broken connection (or on the next call), verifies the
checksum and only then renames it to ``dest``.  Connecting is bounded by
``connect_timeout`` (so no network fails within seconds), each read by
``timeout``.
"""
from __future__ import annotations

import errno
import functools
import http.client
import os
import re
import socket
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from ..atomic import replace_durably
from ..errors import ChecksumMismatch, DownloadError
from .checksums import Checksum, hash_file
from .progress import Progress

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
CHUNK = 1 << 20
USER_AGENT = "smartos-lab (python urllib)"
_RETRYABLE_STATUS = {408, 429, 500, 502, 503, 504}
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class _Broken(Exception):
    """A transfer broke off in a way a new (resumed) attempt may fix."""


# --- connections: connect timeout first, then the read timeout ----------------
class _ReadTimeout:
    """Connection mixin: connecting is bounded by ``timeout``, each read by ``read_timeout``."""

    def __init__(self, *args, read_timeout: float, **kwargs):
        super().__init__(*args, **kwargs)
        self._read_timeout = read_timeout

    def connect(self):
        super().connect()
        self.sock.settimeout(self._read_timeout)


class _TimedHTTPConnection(_ReadTimeout, http.client.HTTPConnection):
    pass


class _TimedHTTPSConnection(_ReadTimeout, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, read_timeout: float):
        super().__init__()
        self._read_timeout = read_timeout

    def http_open(self, req):
        return self.do_open(functools.partial(_TimedHTTPConnection, read_timeout=self._read_timeout), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, read_timeout: float):
        super().__init__(context=ssl.create_default_context())
        self._read_timeout = read_timeout

    def https_open(self, req):
        return self.do_open(functools.partial(_TimedHTTPSConnection, read_timeout=self._read_timeout),
                            req, context=self._context)


def http_error(url: str, status: int, reason: str) -> DownloadError:
    """A DownloadError for an HTTP status; ``err.http_status`` holds the code."""
    err = DownloadError(f"HTTP {status} {reason} for {url}")
    err.http_status = status
    return err


def open_url(url: str, *, headers: dict[str, str] | None = None,
             timeout: float = READ_TIMEOUT, connect_timeout: float = CONNECT_TIMEOUT):
    """Open ``url`` (http/https); return the response.

    Raises DownloadError naming the URL when the host cannot be reached or
    the server answers with an error status (``err.http_status`` set).  A 416
    answer is returned as ``urllib.error.HTTPError`` so callers that sent a
    Range header can look at it.
    """
    scheme = urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise DownloadError(f"not an http(s) URL: {url}")
    opener = urllib.request.build_opener(_HTTPHandler(timeout), _HTTPSHandler(timeout))
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
    try:
        return opener.open(req, timeout=connect_timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416:
            return e
        e.close()
        raise http_error(url, e.code, e.reason) from None
    except urllib.error.URLError as e:
        raise DownloadError(f"cannot reach {urlsplit(url).netloc} for {url}: {_reason(e.reason)}") from None
    except (OSError, http.client.HTTPException) as e:
        raise DownloadError(f"cannot reach {urlsplit(url).netloc} for {url}: {_reason(e)}") from None


def _reason(e: object) -> str:
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "timed out"
    return str(e) or type(e).__name__


def fetch_text(url: str, *, timeout: float = READ_TIMEOUT, connect_timeout: float = CONNECT_TIMEOUT,
               max_bytes: int = 1 << 20) -> str:
    """GET a small text object (``latest``, ``sha256sums.txt``)."""
    resp = open_url(url, timeout=timeout, connect_timeout=connect_timeout)
    with resp:
        if resp.status == 416:
            raise http_error(url, 416, "Range Not Satisfiable")
        try:
            data = resp.read(max_bytes + 1)
        except (OSError, http.client.HTTPException) as e:
            raise DownloadError(f"reading {url} failed: {_reason(e)}") from None
    if len(data) > max_bytes:
        raise DownloadError(f"{url} is larger than {max_bytes} bytes; not a text object")
    return data.decode("utf-8", errors="replace")


# --- download -----------------------------------------------------------------
def download(url: str, dest: str | os.PathLike, *, expected: Checksum | None = None,
             progress: Progress | None = None, timeout: float = READ_TIMEOUT,
             connect_timeout: float = CONNECT_TIMEOUT, attempts: int = 3,
             retry_delay: float = 1.0) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``) and verify it.

    Returns ``dest``.  Raises DownloadError (HTTP error, unreachable host,
    transfer broken ``attempts`` times, disk full) or ChecksumMismatch.  On a
    mismatch or a full disk the ``.part`` file is deleted; after a broken
    transfer it is kept so the next call resumes.  ``dest`` is replaced
    atomically and only by verified data.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, attempts + 1):
        try:
            _transfer(url, part, progress, timeout, connect_timeout)
            break
        except _Broken as e:
            if attempt == attempts:
                raise DownloadError(
                    f"download of {url} broke off {attempts} times (last: {e}); "
                    f"{_part_note(part)}") from None
            time.sleep(retry_delay * attempt)
    if expected is not None:
        actual = hash_file(part, expected.algo, progress=progress)
        if not expected.matches(actual):
            part.unlink(missing_ok=True)
            raise ChecksumMismatch(
                f"checksum mismatch for {url}: expected {expected.algo} {expected.hex}, "
                f"got {actual}; the downloaded file was deleted")
    replace_durably(part, dest)
    return dest


def _part_note(part: Path) -> str:
    if part.exists():
        return f"the partial file {part} is kept; run again to resume"
    return "nothing was kept"


def _transfer(url: str, part: Path, progress: Progress | None, timeout: float,
              connect_timeout: float) -> None:
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        resp = open_url(url, headers=headers, timeout=timeout, connect_timeout=connect_timeout)
    except DownloadError as e:
        if getattr(e, "http_status", None) in _RETRYABLE_STATUS:
            raise _Broken(str(e)) from None
        raise
    with resp:
        if resp.status == 416:
            total = _content_range_total(resp.headers.get("Content-Range", ""))
            if offset and total == offset:
                return  # the .part already holds the whole file
            part.unlink(missing_ok=True)
            raise _Broken(f"server refused to resume at byte {offset}; starting over")
        if resp.status == 206 and offset:
            start, total = _content_range(resp.headers.get("Content-Range", ""))
            if start != offset:
                part.unlink(missing_ok=True)
                raise _Broken(f"server resumed at byte {start}, not {offset}; starting over")
            mode = "ab"
        else:
            # 200: a fresh download, or a server that ignored the Range header.
            offset, mode = 0, "wb"
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        _copy_body(url, resp, part, mode, offset, total, progress)


def _copy_body(url, resp, part: Path, mode: str, offset: int, total: int | None,
               progress: Progress | None) -> None:
    done = offset
    if progress:
        progress.start(f"downloading {Path(urlsplit(url).path).name}", total)
        progress.update(done)
    with open(part, mode, buffering=0) as out:
        while True:
            try:
                chunk = resp.read(CHUNK)
            except (OSError, http.client.HTTPException) as e:
                raise _Broken(f"connection lost after {done} bytes: {_reason(e)}") from None
            if not chunk:
                break
            write_all(out, chunk, part)
            done += len(chunk)
            if progress:
                progress.update(done)
    if progress:
        progress.finish()
    if total is not None and done != total:
        raise _Broken(f"got {done} of {total} bytes")


def write_all(out, data: bytes, path: Path) -> None:
    """Write ``data`` to the unbuffered file ``out``; on a full disk delete
    ``path`` and raise DownloadError."""
    view = memoryview(data)
    try:
        while view:
            view = view[out.write(view):]
    except OSError as e:
        if e.errno not in _DISK_FULL:
            raise
        out.close()
        path.unlink(missing_ok=True)
        raise DownloadError(
            f"no space left on the disk holding {path.parent} ({os.strerror(e.errno)}); "
            f"the partial file {path.name} was deleted. Free some space or point "
            "SMARTOS_LAB_CACHE at a larger disk") from None


_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _content_range(value: str) -> tuple[int, int | None]:
    """(first byte, full length or None) from ``bytes 100-199/1000``."""
    m = _RANGE.match(value.strip())
    if not m:
        raise _Broken(f"bad Content-Range {value!r}")
    return int(m[1]), (None if m[3] == "*" else int(m[3]))


def _content_range_total(value: str) -> int | None:
    m = re.match(r"bytes\s+\*/(\d+)", value.strip())
    return int(m[1]) if m else None
