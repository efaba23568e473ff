"""The live lab panel: what a lab is doing, its checkpoints, and its console, at a glance.

:func:`lab_facts` reads a lab without running anything in the guest (QMP,
the run directory and the console's buffer only), so the panel can refresh
from a background thread while a cell runs.  :class:`LabPanel` shows the facts
as ipywidgets (Save / Restore buttons act in a background thread, so the
kernel never waits for them); :func:`panel_text` is the same as text.
"""
from __future__ import annotations

import html
import re
import threading
import time
from dataclasses import dataclass, field

from ..errors import LabError
from .env import display, in_notebook, widgets
from .widgets import console_text

REFRESH_SECONDS = 3.0
CONSOLE_LINES = 12
_PAUSED = {"paused", "prelaunch", "suspended", "inmigrate", "postmigrate", "save-vm",
           "restore-vm", "finish-migrate", "debug", "watchdog", "colo"}
_CRASHED = {"guest-panicked", "internal-error", "io-error"}
_FRAMING = re.compile(r"__sl_\w+__")     # the console shell's command framing (machine/shell.py)
STATE_COLOURS = {"running": "#2e7d32", "paused": "#ef6c00", "stopped": "#616161", "crashed": "#c62828",
                 "kmdb": "#6a1b9a"}


@dataclass(frozen=True)
class CheckpointRow:
    name: str
    date: str
    state_bytes: int


@dataclass(frozen=True)
class LabFacts:
    """What the panel shows."""

    name: str
    state: str                          # running | paused | stopped | crashed | kmdb
    detail: str                         # QEMU's own status, or why crashed
    accel: str
    accel_reason: str
    uptime: float | None                # seconds since QEMU started
    memory_mib: int
    cpus: int
    platform: str
    transport: str
    serial_log: str
    checkpoints: list[CheckpointRow] = field(default_factory=list)
    console: str = ""


def lab_facts(lab, console_lines: int = CONSOLE_LINES) -> LabFacts:
    """Gather a lab's facts from the host side (never types into the guest)."""
    machine = lab.machine
    checkpoints: list[CheckpointRow] = []
    if not machine.alive():
        state, detail = "stopped", "QEMU is not running"
    else:
        crash = lab.console.crash
        try:
            status = machine.qmp.status()
            checkpoints = [CheckpointRow(c.name, c.date.strftime("%Y-%m-%d %H:%M:%S"), c.vm_state_size)
                           for c in lab.checkpoints()]
        except LabError as exc:
            status = f"QMP did not answer: {exc}"
        if lab.kmdb.active():
            state, detail = "kmdb", "stopped in kmdb: lab.kmdb to look around, lab.resume() goes on"
        elif crash is not None:
            state, detail = "crashed", str(crash).split("\n", 1)[0]
        elif status in _CRASHED:
            state, detail = "crashed", status
        elif status in _PAUSED:
            state, detail = "paused", status
        elif status == "running":
            state, detail = "running", status
        else:
            state, detail = "stopped", status
    config = lab.config
    platform = config.release if config.strategy == "smartos" else f"{config.strategy} guest"
    tail = [line for line in console_text(lab, 4000).rstrip("\n").splitlines()
            if not _FRAMING.search(line)][-console_lines:]
    return LabFacts(
        name=lab.name, state=state, detail=detail, accel=lab.accel.accel,
        accel_reason=lab.accel.reason, uptime=_uptime(machine), memory_mib=machine.spec.memory_mib,
        cpus=machine.spec.cpus, platform=platform or "-", transport=lab.shell.transport,
        serial_log=str(lab.serial_log), checkpoints=checkpoints, console="\n".join(tail))


def _uptime(machine) -> float | None:
    try:
        started = machine.run_dir.read_meta().get("started_ts")
    except (OSError, ValueError, LabError):
        return None
    return None if started is None else max(0.0, time.time() - float(started))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return (f"{hours}h " if hours else "") + f"{rest // 60}m {rest % 60:02d}s"


def _fact_rows(f: LabFacts) -> list[tuple[str, str]]:
    return [("state", f"{f.state} ({f.detail})" if f.detail != f.state else f.state),
            ("accelerator", f.accel_reason or f.accel),
            ("uptime", _duration(f.uptime)),
            ("memory / CPUs", f"{f.memory_mib} MiB / {f.cpus}"),
            ("platform", f.platform),
            ("transport", f.transport),
            ("serial log", f.serial_log)]


def panel_text(f: LabFacts) -> str:
    """The panel as plain text (outside Jupyter)."""
    lines = [f"lab {f.name}"] + [f"  {k + ':':13} {v}" for k, v in _fact_rows(f)]
    lines.append("  checkpoints:  " + (", ".join(
        f"{c.name} ({c.state_bytes / 2**20:.1f} MiB, {c.date})" for c in f.checkpoints) or "none"))
    if f.console:
        lines += ["  console (last lines):"] + [f"    {line}" for line in f.console.splitlines()]
    return "\n".join(lines)


class LabPanel:
    """The lab as a live ipywidgets panel.  Build with :func:`panel`."""

    def __init__(self, lab, *, refresh_seconds: float = REFRESH_SECONDS):
        w = widgets()
        self.lab = lab
        self.refresh_seconds = refresh_seconds
        self.header = w.HTML()
        self.facts = w.HTML()
        self.checkpoint_rows = w.VBox()
        self.name = w.Text(value="known-good", description="checkpoint",
                           layout=w.Layout(width="20em"))
        self.save_button = w.Button(description="Save checkpoint", button_style="success", icon="save")
        self.message = w.HTML()
        self.console = w.HTML(layout=w.Layout(max_height="16em", overflow="auto"))
        self.widget = w.VBox([self.header, self.facts, w.HTML("<b>Checkpoints</b>"),
                              self.checkpoint_rows, w.HBox([self.name, self.save_button]),
                              self.message, w.HTML("<b>Console</b>"), self.console])
        self.widget.add_class("smartos-lab-panel")
        self._shown: tuple[str, ...] | None = None      # checkpoint names drawn
        self.save_button.on_click(lambda _b: self._act(self._save))
        self._busy = threading.Lock()
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self.refresh()

    # --- drawing -------------------------------------------------------------------------
    def refresh(self) -> LabFacts:
        f = lab_facts(self.lab)
        colour = STATE_COLOURS.get(f.state, "#444")
        self.header.value = (f"<div style='font-size:110%'><b>lab {html.escape(f.name)}</b> "
                             f"<span class='smartos-lab-state' style='color:white;background:{colour};"
                             f"padding:0 0.5em;border-radius:0.3em'>{f.state}</span></div>")
        self.facts.value = "<table style='font-size:90%'>" + "".join(
            f"<tr><td style='text-align:left;color:#555;padding-right:1em'>{html.escape(k)}</td>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>" for k, v in _fact_rows(f)) + "</table>"
        self._draw_checkpoints(f)
        self.console.value = ("<pre style='margin:0;font-size:80%;line-height:1.2'>"
                              + html.escape(f.console) + "</pre>")
        return f

    def _draw_checkpoints(self, f: LabFacts) -> None:
        w = widgets()
        names = tuple(c.name for c in f.checkpoints)
        if names == self._shown:
            return
        self._shown = names
        rows = []
        for c in f.checkpoints:
            label = w.HTML(f"<code>{html.escape(c.name)}</code> "
                           f"<span style='color:#777'>{c.date}, {c.state_bytes / 2**20:.1f} MiB</span>",
                           layout=w.Layout(width="26em"))
            button = w.Button(description="Restore", icon="undo", button_style="warning",
                              tooltip=f"return the lab to checkpoint {c.name}")
            button.on_click(lambda _b, name=c.name: self._act(lambda: self._restore(name)))
            row = w.HBox([label, button])
            row._checkpoint = c.name
            row.add_class("smartos-lab-checkpoint")
            rows.append(row)
        if not rows:
            rows = [w.HTML("<i style='color:#777'>none yet</i>")]
        self.checkpoint_rows.children = rows

    # --- actions (in a thread: the kernel never waits for them) --------------------------
    def _act(self, action) -> None:
        if not self._busy.acquire(blocking=False):
            self.message.value = "<i>busy with the last action...</i>"
            return

        def run() -> None:
            try:
                self.message.value = f"<i>{html.escape(action.__doc__ or 'working')}...</i>"
                self.message.value = html.escape(action(), quote=False)
            except (LabError, ValueError) as exc:
                self.message.value = (f"<span style='color:#c62828'>{type(exc).__name__}: "
                                      f"{html.escape(str(exc).splitlines()[0])}</span>")
            finally:
                self._busy.release()
                try:
                    self.refresh()
                except Exception:                   # the next timer tick tries again
                    pass
        threading.Thread(target=run, name=f"panel:{self.lab.name}", daemon=True).start()

    def _save(self) -> str:
        """saving"""
        name = self.name.value.strip()
        seconds = self.lab.checkpoint(name)
        return f"saved checkpoint {name!r} in {seconds:.1f} s"

    def _restore(self, name: str) -> str:
        seconds = self.lab.restore(name)
        return f"restored checkpoint {name!r} in {seconds:.1f} s"

    # --- live refresh --------------------------------------------------------------------
    def start(self) -> LabPanel:
        """Refresh every ``refresh_seconds`` in a daemon thread until :meth:`stop` or the lab stops."""
        if self._timer is None or not self._timer.is_alive():
            self._stop.clear()
            self._timer = threading.Thread(target=self._tick, name=f"panel-timer:{self.lab.name}",
                                           daemon=True)
            self._timer.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _tick(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            if self._busy.locked():
                continue
            try:
                if self.refresh().state == "stopped":
                    return
            except Exception:                       # a refresh must never kill the kernel
                continue

    def _ipython_display_(self) -> None:
        display(self.widget)


_LIVE: dict[str, LabPanel] = {}      # the panel of each lab that refreshes itself


def panel(lab, *, live: bool = True):
    """The lab's panel: a live widget in Jupyter, else the text of :func:`panel_text`.

    Only the newest panel of a lab refreshes on its timer (a re-run cell replaces
    the one before); the others still refresh after their own buttons.
    """
    if in_notebook():
        try:
            shown = LabPanel(lab)
        except ImportError:
            return PanelText(lab_facts(lab))
        if not live:
            return shown
        previous = _LIVE.get(lab.name)
        if previous is not None:
            previous.stop()
        _LIVE[lab.name] = shown
        return shown.start()
    return PanelText(lab_facts(lab))


@dataclass(frozen=True)
class PanelText:
    facts: LabFacts

    def __str__(self) -> str:
        return panel_text(self.facts)

    __repr__ = __str__


def show_lab(lab) -> None:
    """Display hook for a :class:`~smartos_lab.lab.Lab` as a cell's value (registered in Jupyter)."""
    shown = panel(lab)
    if isinstance(shown, LabPanel):
        display(shown.widget)
    else:
        print(shown)
