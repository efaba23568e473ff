"""Progress reporting for long steps (download, verify, decompress).

A progress object gets ``start(label, total)``, then ``update(done)`` any
number of times, then ``finish()``.  ``total`` is None when unknown.
"""
from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO


class Progress(Protocol):
    def start(self, label: str, total: int | None) -> None: ...
    def update(self, done: int) -> None: ...
    def finish(self) -> None: ...


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f}"


def describe(label: str, done: int, total: int | None, elapsed: float) -> str:
    """One status line: ``label 45% 180.0/400.0 MiB 12.3 MiB/s``."""
    rate = f"{done / elapsed / (1 << 20):.1f} MiB/s" if elapsed > 0.2 else ""
    if total:
        pct = min(100, done * 100 // total)
        return f"{label} {pct:3d}% {_mib(done)}/{_mib(total)} MiB {rate}".rstrip()
    return f"{label} {_mib(done)} MiB {rate}".rstrip()


class TerminalProgress:
    """A one-line bar on stderr, redrawn with ``\\r`` at most ``hz`` times a second.

    On a non-terminal stream it prints a line every 10 % instead.
    """

    def __init__(self, stream: TextIO | None = None, *, hz: float = 10.0, width: int = 30):
        self.stream = stream or sys.stderr
        self.interval = 1.0 / hz
        self.width = width
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._label = ""
        self._total: int | None = None
        self._done = 0
        self._t0 = self._last = 0.0
        self._last_decile = -1

    def start(self, label: str, total: int | None) -> None:
        self._label, self._total, self._done = label, total, 0
        self._t0 = time.monotonic()
        self._last = 0.0
        self._last_decile = -1
        self._draw(force=True)

    def update(self, done: int) -> None:
        self._done = done
        self._draw()

    def finish(self) -> None:
        self._draw(force=True)
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._tty:
            if not force and now - self._last < self.interval:
                return
            self._last = now
            status = describe(self._label, self._done, self._total, now - self._t0)
            self.stream.write(f"\r{self._bar()} {status}\x1b[K")
            self.stream.flush()
            return
        decile = self._done * 10 // self._total if self._total else -1
        if force or decile > self._last_decile:
            self._last_decile = decile
            self.stream.write(describe(self._label, self._done, self._total, now - self._t0) + "\n")
            self.stream.flush()

    def _bar(self) -> str:
        if not self._total:
            return "[" + "?" * self.width + "]"
        filled = min(self.width, self._done * self.width // self._total)
        return "[" + "#" * filled + "." * (self.width - filled) + "]"


class NotebookProgress:
    """An ipywidgets bar (IntProgress + Label); use :func:`notebook_progress` to get one."""

    _SCALE = 1000  # the bar counts per-mille, whatever the byte total

    def __init__(self):
        import ipywidgets
        from IPython.display import display

        self._bar = ipywidgets.IntProgress(min=0, max=self._SCALE, value=0)
        self._label = ipywidgets.Label("")
        self._text = ""
        self._total: int | None = None
        self._t0 = self._last = 0.0
        display(ipywidgets.HBox([self._bar, self._label]))

    def start(self, label: str, total: int | None) -> None:
        self._text, self._total = label, total
        self._t0 = time.monotonic()
        self._last = 0.0
        self._bar.value = 0
        self._bar.bar_style = "info"
        self._show(0, force=True)

    def update(self, done: int) -> None:
        self._show(done)

    def finish(self) -> None:
        self._bar.value = self._SCALE
        self._bar.bar_style = "success"

    def _show(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.2:
            return
        self._last = now
        if self._total:
            self._bar.value = min(self._SCALE, done * self._SCALE // self._total)
        self._label.value = describe(self._text, done, self._total, now - self._t0)


def notebook_progress() -> Progress:
    """A NotebookProgress if ipywidgets is importable, else a TerminalProgress."""
    try:
        return NotebookProgress()
    except ImportError:
        return TerminalProgress()


def auto_progress() -> Progress:
    """Notebook bar inside a Jupyter kernel, terminal bar elsewhere."""
    if "ipykernel" in sys.modules:
        return notebook_progress()
    return TerminalProgress()
