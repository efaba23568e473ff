"""Widgets around a running lab: the live serial console and checkpoint buttons."""
from __future__ import annotations

import html
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import LabError
from .env import display, widgets
from .tables import Table, table


def console_text(lab, chars: int = 3000) -> str:
    """The last ``chars`` of the lab's serial console (from the serial log if the console is gone)."""
    try:
        return lab.console.tail(chars)
    except (LabError, OSError):
        pass
    try:
        data = Path(lab.serial_log).read_bytes()[-chars * 2:]
    except OSError as exc:
        return f"(no console output: {exc})"
    from ..machine.ansi import AnsiStripper
    return AnsiStripper().feed(data.decode("utf-8", "replace"))[-chars:]


def console_widget(lab, chars: int = 3000, *, follow_interval: float = 0.5):
    """The lab's console tail with a Refresh button and a Follow toggle (live updates)."""
    w = widgets()
    view = w.HTML(layout=w.Layout(max_height="24em", overflow="auto"))
    refresh = w.Button(description="Refresh", icon="refresh")
    follow = w.ToggleButton(description="Follow", icon="play",
                            tooltip="update as the console prints (at most every "
                                    f"{follow_interval:g} s; Refresh for the very latest)")
    state = {"last": 0.0}

    def render(_=None) -> None:
        text = console_text(lab, chars)
        view.value = ("<pre style='margin:0;font-size:85%;line-height:1.2'>"
                      + html.escape(text) + "</pre>")
        state["last"] = time.monotonic()

    def on_text(_text: str) -> None:            # called from the console's drain thread
        if time.monotonic() - state["last"] >= follow_interval:
            try:
                render()
            except Exception:                   # never disturb the drain thread
                pass

    def toggle(change) -> None:
        console = getattr(lab, "console", None)
        if console is None:
            return
        if change["new"]:
            console.add_listener(on_text)
            render()
        else:
            console.remove_listener(on_text)

    refresh.on_click(render)
    follow.observe(toggle, names="value")
    render()
    return w.VBox([w.HBox([refresh, follow]), view])


class CheckpointActions:
    """Save, restore and list a lab's checkpoints, each returning a line to show."""

    def __init__(self, lab):
        self.lab = lab

    def save(self, name: str) -> str:
        seconds = self.lab.checkpoint(name)
        return f"saved checkpoint {name!r} in {seconds:.1f} s"

    def restore(self, name: str) -> str:
        seconds = self.lab.restore(name)
        return f"restored checkpoint {name!r} in {seconds:.1f} s"

    def listing(self) -> Table | str:
        found = self.lab.checkpoints()
        if not found:
            return "no checkpoints yet"
        return table(found, ["name", "date", "vm_state_size"])


def checkpoint_buttons(lab, name: str = "known-good"):
    """Save / Restore / List buttons for a checkpoint name ("known good" in one click)."""
    w = widgets()
    actions = CheckpointActions(lab)
    text = w.Text(value=name, description="checkpoint")
    save = w.Button(description="Save", button_style="success", icon="save")
    restore = w.Button(description="Restore", button_style="danger", icon="undo")
    listing = w.Button(description="List", icon="list")
    out = w.Output()

    def run(action: Callable[[], Any]) -> Callable[[Any], None]:
        def handler(_button) -> None:
            out.clear_output()
            with out:
                try:
                    display(action())
                except LabError as exc:
                    print(f"{type(exc).__name__}: {exc}")
        return handler

    save.on_click(run(lambda: actions.save(text.value.strip())))
    restore.on_click(run(lambda: actions.restore(text.value.strip())))
    listing.on_click(run(actions.listing))
    return w.VBox([w.HBox([text, save, restore, listing]), out])
