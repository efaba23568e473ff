"""Stand-ins for a cell's output stream."""
from __future__ import annotations

import io
import time


class Stamped(io.StringIO):
    """A cell's stdout that records when each piece arrived."""

    def __init__(self):
        super().__init__()
        self.times: list[tuple[float, str]] = []

    def write(self, text: str) -> int:
        self.times.append((time.monotonic(), text))
        return super().write(text)
