"""Progress as typed events: what a long operation (``Lab.up``, a clone, a download) is doing.

A base-layer module (imports nothing else of the package), after labgrid's
``step.py``: the code doing the work *emits* :class:`StepEvent`\\ s through a
:class:`Steps` reporter, and whoever shows progress *subscribes* to it: plain
printed lines by default (:func:`print_events`), a notebook widget from the
notebook layer, a test's list.  Nothing decides "done" by matching message text.

Kinds, in the order a run produces them::

    STARTED  step "boot"       (a milestone begins; the step before it is done)
    INFO     step "boot"       (a detail of the current step; does not end it)
    DONE     step "boot"       (the step ended; ``duration`` set)
    FINISHED                   (the whole operation succeeded; ``elapsed`` is its total)
    FAILED                     (the operation ended with an error; ``message`` says which)
"""
from __future__ import annotations

import enum
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO


class StepKind(enum.Enum):
    STARTED = "started"
    INFO = "info"
    DONE = "done"
    FINISHED = "finished"
    FAILED = "failed"


@dataclass(frozen=True)
class StepEvent:
    """One progress event.  ``elapsed`` counts from the start of the operation."""

    kind: StepKind
    operation: str          # e.g. "up workshop"
    step: str               # the milestone, e.g. "starting QEMU"; "" for FINISHED/FAILED
    message: str            # one human line
    elapsed: float          # seconds since the operation started
    duration: float | None = None   # DONE: how long the step took

    @property
    def final(self) -> bool:
        """True for the event that ends an operation (FINISHED or FAILED)."""
        return self.kind in (StepKind.FINISHED, StepKind.FAILED)


Subscriber = Callable[[StepEvent], None]


class Steps:
    """Emits the events of one operation to its subscribers.

    ``step(name)`` starts a milestone (ending the current one), ``info`` adds a
    detail line, ``finish``/``fail`` end the operation.  A subscriber that
    raises is dropped from this reporter (progress must never break the work).
    """

    def __init__(self, operation: str, subscribers: list[Subscriber] | tuple[Subscriber, ...] = (),
                 *, clock: Callable[[], float] = time.monotonic):
        self.operation = operation
        self._subscribers: list[Subscriber] = list(subscribers)
        self._clock = clock
        self._start = clock()
        self._current: str | None = None
        self._current_start = self._start
        self.ended = False

    # --- subscribers ---------------------------------------------------------------------
    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    # --- emitting ------------------------------------------------------------------------
    @property
    def current(self) -> str | None:
        """The step in progress, or None."""
        return self._current

    def step(self, name: str, message: str | None = None) -> None:
        """Begin milestone ``name`` (the current one, if any, is done)."""
        self._end_current()
        self._current = name
        self._current_start = self._clock()
        self._emit(StepKind.STARTED, name, message or name)

    def info(self, message: str) -> None:
        """A detail of the current step (it stays current)."""
        self._emit(StepKind.INFO, self._current or "", message)

    def finish(self, message: str = "done") -> None:
        if self.ended:
            return
        self._end_current()
        self.ended = True
        self._emit(StepKind.FINISHED, "", message)

    def fail(self, error: BaseException | str) -> None:
        if self.ended:
            return
        self.ended = True
        text = error if isinstance(error, str) else (str(error) or type(error).__name__)
        self._emit(StepKind.FAILED, self._current or "", text)
        self._current = None

    def __enter__(self) -> Steps:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None:
            self.fail(exc)
        else:
            self.finish()

    def _end_current(self) -> None:
        if self._current is None:
            return
        now = self._clock()
        name, self._current = self._current, None
        self._emit(StepKind.DONE, name, name, duration=now - self._current_start)

    def _emit(self, kind: StepKind, step: str, message: str, duration: float | None = None) -> None:
        event = StepEvent(kind, self.operation, step, message, self._clock() - self._start, duration)
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception:       # a broken display must not break a boot
                self.unsubscribe(subscriber)


def print_events(stream: TextIO | None = None) -> Subscriber:
    """A subscriber printing ``[   1.2s] message`` lines (to stderr by default)."""

    def show(event: StepEvent) -> None:
        if event.kind is StepKind.DONE:
            return
        prefix = "FAILED: " if event.kind is StepKind.FAILED else ""
        print(f"[{event.elapsed:7.1f}s] {prefix}{event.message}", file=stream or sys.stderr,
              flush=True)
    return show


def collect(events: list[StepEvent]) -> Subscriber:
    """A subscriber appending every event to ``events`` (tests, logs)."""
    return events.append


# --- the default display ------------------------------------------------------------------
# An upper layer (the notebook package, when a Jupyter kernel imports it) installs a factory
# here; lower layers ask for ``default_display()`` and never import that layer.
_display_factory: Callable[[], Subscriber] | None = None


def set_display(factory: Callable[[], Subscriber] | None) -> None:
    """Make ``factory()`` the subscriber that ``progress=True`` gets (None: printed lines)."""
    global _display_factory
    _display_factory = factory


def default_display() -> Subscriber:
    """A new subscriber for ``progress=True``: the installed display, else :func:`print_events`."""
    if _display_factory is not None:
        try:
            return _display_factory()
        except Exception:           # e.g. ipywidgets missing: fall back to text
            pass
    return print_events()
