"""Progress of a long operation (``Lab.up``) shown from :class:`~smartos_lab.steps.StepEvent`\\ s.

:class:`StepLog` folds the events into steps with their durations; the event
*kind* says when a step, or the whole operation, is done or failed (no
message text is matched).  :class:`StepDisplay` shows it as a widget in
Jupyter, the current step highlighted; outside Jupyter :func:`step_display`
gives the base layer's printed lines.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

from ..steps import StepEvent, StepKind, Subscriber, print_events
from .env import display, in_notebook, widgets


@dataclass
class StepEntry:
    """One step (or a note outside any step) and what happened in it."""

    name: str
    message: str
    started: float                  # seconds since the operation started
    duration: float | None = None   # set when the step is done
    failed: bool = False
    details: list[str] = field(default_factory=list)
    note: bool = False              # an INFO line outside any step


class StepLog:
    """The steps of one operation so far, built from its events."""

    def __init__(self) -> None:
        self.operation = ""
        self.steps: list[StepEntry] = []
        self.state = "working"          # "working" | "done" | "failed"
        self.outcome = ""               # the FINISHED / FAILED message
        self.elapsed = 0.0              # as of the last event

    @property
    def finished(self) -> bool:
        return self.state != "working"

    @property
    def current(self) -> StepEntry | None:
        """The step in progress (None when none is, or the operation ended)."""
        if self.finished:
            return None
        for entry in reversed(self.steps):
            if not entry.note:
                return entry if entry.duration is None else None
        return None

    def add(self, event: StepEvent) -> None:
        self.operation = self.operation or event.operation
        self.elapsed = event.elapsed
        kind = event.kind
        if kind is StepKind.STARTED:
            self.steps.append(StepEntry(event.step, event.message, event.elapsed))
        elif kind is StepKind.INFO:
            entry = self.current
            if entry is not None and entry.name == event.step:
                entry.details.append(event.message)
            else:
                self.steps.append(StepEntry(event.step, event.message, event.elapsed, 0.0, note=True))
        elif kind is StepKind.DONE:
            entry = self._open_step(event.step)
            if entry is not None:
                entry.duration = event.duration if event.duration is not None else \
                    event.elapsed - entry.started
        elif kind is StepKind.FINISHED:
            self.state, self.outcome = "done", event.message
        elif kind is StepKind.FAILED:
            entry = self._open_step(event.step)
            if entry is not None:
                entry.failed = True
                entry.duration = event.elapsed - entry.started
            self.state, self.outcome = "failed", event.message

    __call__ = add                      # a StepLog is itself a subscriber

    def _open_step(self, name: str) -> StepEntry | None:
        for entry in reversed(self.steps):
            if not entry.note and entry.name == name and entry.duration is None:
                return entry
        return None

    # --- rendering -------------------------------------------------------------------
    def lines(self) -> list[str]:
        """Plain text: ``>`` marks the current step, ``x`` a failed one."""
        current = self.current
        out = []
        for entry in self.steps:
            mark = ">" if entry is current else ("x" if entry.failed else " ")
            took = "" if entry is current or entry.note else f"  ({entry.duration:.1f} s)"
            out.append(f"{mark} [{entry.started:7.1f}s] {entry.message}{took}")
            out.extend(f"      {detail}" for detail in entry.details)
        if self.finished:
            out.append(f"{self.state}, {self.elapsed:.1f} s: {self.outcome}")
        return out

    def html(self) -> str:
        current = self.current
        rows = []
        for entry in self.steps:
            text = html.escape(entry.message)
            details = "".join(f"<div style='color:#666;padding-left:1.5em'>{html.escape(d)}</div>"
                              for d in entry.details)
            if entry is current:
                rows.append(f"<li style='font-weight:bold;color:#1f5fa8'>&#9654; {text} "
                            f"<span style='color:#888'>(since {entry.started:.1f} s)</span>{details}</li>")
            elif entry.failed:
                rows.append(f"<li style='color:#c62828'>&#10008; {text} <span style='color:#888'>"
                            f"({entry.duration:.1f} s)</span>{details}</li>")
            elif entry.note:
                rows.append(f"<li style='color:#666'>&middot; {text}</li>")
            else:
                rows.append(f"<li style='color:#444'>&#10003; {text} <span style='color:#888'>"
                            f"({entry.duration:.1f} s)</span>{details}</li>")
        colour = {"working": "#1f5fa8", "done": "#2e7d32", "failed": "#c62828"}[self.state]
        head = f"{self.state}, {self.elapsed:.1f} s"
        if self.outcome:
            head += ": " + self.outcome
        return (f"<div class='smartos-lab-steps' style='font-family:monospace;font-size:90%'>"
                f"<b style='color:{colour}'>{html.escape(head)}</b>"
                "<ul style='list-style:none;padding-left:0.5em;margin:0'>" + "".join(rows) + "</ul></div>")


class StepDisplay:
    """A :class:`StepEvent` subscriber showing the steps as a widget (Jupyter)."""

    def __init__(self, *, show: bool = True):
        w = widgets()
        self.log = StepLog()
        self.widget = w.HTML(self.log.html())
        if show:
            display(self.widget)

    def __call__(self, event: StepEvent) -> None:
        self.log.add(event)
        self.widget.value = self.log.html()


def step_display() -> Subscriber:
    """The subscriber for ``progress=True``: a widget in Jupyter, else printed lines."""
    if in_notebook():
        try:
            return StepDisplay()
        except ImportError:
            pass
    return print_events()
