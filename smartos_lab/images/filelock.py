"""An exclusive lock file that is waited for, but not for ever."""
from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import ImageError

POLL = 0.2      # seconds between attempts


@contextmanager
def exclusive(lock: Path, *, timeout: float, busy: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock`` (created if missing).

    Another process holding it is waited for up to ``timeout`` seconds, then
    :class:`ImageError` says ``busy`` (what the other process is probably doing
    and what to do about it).
    """
    with open(lock, "a") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ImageError(busy) from None
                time.sleep(POLL)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
