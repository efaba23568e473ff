"""The Jupyter layer: progress, exercises, widgets, tables, image lookup, published examples.

The top of the stack (it may import any layer; only the CLI and the package's
``__init__`` may import it).  Everything works without Jupyter: IPython and
ipywidgets are imported only when a widget is built, and each helper falls
back to plain text.

* :mod:`.progress` -- :func:`step_display`, the ``progress=True`` display of
  :class:`~smartos_lab.steps.StepEvent`\\ s (widget: steps, durations, the current one highlighted).
* :mod:`.exercises` -- :class:`Step` / :class:`Exercise`, Instruqt-style checked steps.
* :mod:`.tables` -- :func:`table`, :func:`figure_image`.
* :mod:`.widgets` -- :func:`console_widget`, :func:`checkpoint_buttons`.
* :mod:`.images` -- :func:`find_image` / :func:`require_image`: the SmartOS image a notebook boots.
* :mod:`.examples` -- :func:`published_example`: real output from the illumos/SmartOS docs.
* :mod:`.panel` -- :func:`lab_panel`: the live lab panel (a ``Lab`` shown as a cell's value is one).
* :mod:`.magics` -- ``%load_ext smartos_lab``: ``%lab``, ``%%sh``, ``%%zone``, ``%%dtrace``, ``%undo`` ...

Imported inside a Jupyter kernel, the package makes its widget the default
progress display (:func:`smartos_lab.steps.set_display`).
"""
from __future__ import annotations

from .. import steps as _steps
from .env import in_notebook
from .examples import PublishedExample, example_names, published_example
from .exercises import CheckOutcome, Exercise, SolveReport, Step
from .images import NO_IMAGE_HELP, NoImage, NotebookImage, find_image, require_image
from .panel import LabPanel, lab_facts
from .panel import panel as lab_panel
from .progress import StepDisplay, StepEntry, StepLog, step_display
from .tables import Table, figure_image, table
from .widgets import CheckpointActions, checkpoint_buttons, console_text, console_widget

__all__ = [
    "NO_IMAGE_HELP", "CheckOutcome", "CheckpointActions", "Exercise", "LabPanel", "NoImage",
    "NotebookImage", "lab_facts", "lab_panel",
    "PublishedExample", "SolveReport", "Step", "StepDisplay", "StepEntry", "StepLog", "Table",
    "checkpoint_buttons", "console_text", "console_widget", "example_names", "figure_image",
    "find_image", "in_notebook", "published_example", "require_image", "step_display", "table",
]


def install_display() -> None:
    """Make :func:`step_display` the subscriber that ``progress=True`` gets."""
    _steps.set_display(step_display)


if in_notebook():
    install_display()
