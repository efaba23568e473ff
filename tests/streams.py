"""Stand-ins for a cell's output stream."""
from __future__ import annotations

import io
import time
from collections.abc import Callable


class Stamped(io.StringIO):
    """A cell's stdout that records when each piece arrived, by ``clock``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.clock = clock
        self.times: list[tuple[float, str]] = []

    def write(self, text: str) -> int:
        self.times.append((self.clock(), text))
        return super().write(text)
