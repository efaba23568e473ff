"""Jupyter UX: boot progress, Instruqt-style exercises, tables, console and checkpoint widgets.

Everything here works without Jupyter: ipywidgets and IPython are imported
only when a widget is built, and each helper falls back to plain text.

* :func:`step_display` -- the :meth:`Lab.up <smartos_lab.lab.Lab.up>` progress
  callback: the steps seen so far with their durations, the current one highlighted.
* :class:`Step` / :class:`Exercise` -- a lab exercise in the style of Instruqt and
  Katacoda: each step has instructions, a ``check`` (a shell command run in the
  lab: exit 0 passes), a ``solution`` that can be shown, and ``solve`` to fast-forward.
* :func:`table` -- rows of dataclasses, dicts or tuples as an HTML/text table;
  :func:`figure_image` -- a toolkit plot as an image.
* :func:`console_widget`, :func:`checkpoint_buttons` -- the live serial console,
  and saving/restoring a "known good" lab in one click.
* :func:`find_image` / :func:`require_image` -- the SmartOS image a notebook boots.
"""
from __future__ import annotations

import dataclasses
import html
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CommandTimeout, ImageError, LabError
from .machine.result import CommandResult, CommandRunner

# ============================================================================ environment


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where widgets can be shown)."""
    if "IPython" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _widgets():
    """The ipywidgets module, or ImportError with the fix."""
    try:
        import ipywidgets
    except ImportError as exc:
        raise ImportError("this needs ipywidgets: pip install 'smartos-lab[notebook]'") from exc
    return ipywidgets


def _display(obj) -> None:
    from IPython.display import display
    display(obj)


# ============================================================================ images

NO_IMAGE_HELP = """\
No SmartOS image for this notebook.  Notebooks 01-06 boot a real SmartOS; give them one of:

  * export SMARTOS_LAB_IMAGE=/path/to/smartos-<TS>-USB.img.gz   (or a platform-<TS>.tgz,
    a smartos-<TS>.iso, or a build's output/platform-<TS>/ folder), then restart the
    notebook kernel;
  * put it in the cache:  smartos-lab images add /path/to/file   (offline workshops), or
    ImageCache().add(path) from Python (see 00-start-here.ipynb);
  * download the latest release (needs Internet; the USB image is about 1.9 GB once
    decompressed): ImageCache().fetch("latest") in 00-start-here.ipynb.

The USB image boots through its own loader; a platform tarball, folder or ISO is booted
directly (its unix and boot_archive are copied out; an ISO's loader is not used)."""


@dataclass(frozen=True)
class NotebookImage:
    """The SmartOS image a notebook boots: pass ``str(path)`` as ``Lab.up(image=...)``."""

    path: Path
    kind: str                   # "usb" | "iso" | "platform" | "platform-dir"
    release: str | None
    source: str                 # "SMARTOS_LAB_IMAGE" or "cache"

    def __str__(self) -> str:
        return f"{self.path} ({self.kind}, release {self.release or 'unknown'}, from {self.source})"


def find_image(env: Mapping[str, str] | None = None, cache=None) -> NotebookImage | None:
    """``$SMARTOS_LAB_IMAGE`` if set, else the newest bootable image in the cache, else None.

    A ``SMARTOS_LAB_IMAGE`` that is not a usable SmartOS image raises
    :class:`ImageError` (a typo should not silently boot something else).
    """
    env = os.environ if env is None else env
    named = env.get("SMARTOS_LAB_IMAGE", "").strip()
    if named:
        from .images.local import identify
        info = identify(named)
        return NotebookImage(info.path, info.kind, info.release, "SMARTOS_LAB_IMAGE")
    if cache is None:
        from .images.cache import ImageCache
        cache = ImageCache()
    for image in cache.list():                       # newest release first, then usb, platform, iso
        if Path(image.path).exists():
            return NotebookImage(Path(image.path), image.kind, image.release, "cache")
    return None


def require_image(env: Mapping[str, str] | None = None, cache=None) -> NotebookImage:
    """Like :func:`find_image` but raise :class:`ImageError` explaining what to do when there is none."""
    image = find_image(env, cache)
    if image is None:
        raise ImageError(NO_IMAGE_HELP)
    return image


# ============================================================================ published examples

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


@dataclass(frozen=True)
class PublishedExample:
    """Real command output as published in illumos/SmartOS documentation (``tests/fixtures``)."""

    source: str             # where it was published
    command: str            # the command that printed it
    text: str               # the output, verbatim

    def __str__(self) -> str:
        return f"$ {self.command}\n{self.text}\n(source: {self.source})"


def published_example(relpath: str) -> PublishedExample:
    """``tests/fixtures/<relpath>`` of a source checkout, without its header lines."""
    path = FIXTURES / relpath
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: published examples come with a source "
                                "checkout of smartos-lab (tests/fixtures)")
    lines = path.read_text().splitlines(keepends=True)
    meta: dict[str, str] = {}
    while lines and lines[0].startswith("# ") and ":" in lines[0]:
        key, _, value = lines.pop(0)[2:].partition(":")
        meta.setdefault(key.strip(), value.strip())
    return PublishedExample(meta.get("source", "?"), meta.get("command", "?"), "".join(lines))


# ============================================================================ boot progress

_FINAL = re.compile(r"\bis ready$")


@dataclass
class StepEntry:
    message: str
    started: float
    ended: float | None = None

    def seconds(self, now: float) -> float:
        return (self.ended if self.ended is not None else now) - self.started


class StepLog:
    """The steps reported so far; each new step ends the one before.

    A message ending in ``is ready`` (``Lab.up``'s last) ends the log.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.started = clock()
        self.steps: list[StepEntry] = []
        self.finished = False

    def add(self, message: str) -> None:
        now = self.clock()
        if self.steps and self.steps[-1].ended is None:
            self.steps[-1].ended = now
        entry = StepEntry(str(message), now)
        self.steps.append(entry)
        if _FINAL.search(entry.message):
            entry.ended = now
            self.finished = True

    @property
    def current(self) -> StepEntry | None:
        """The step in progress (None when finished or empty)."""
        if self.finished or not self.steps:
            return None
        return self.steps[-1]

    def lines(self, now: float | None = None) -> list[str]:
        now = self.clock() if now is None else now
        out = []
        for entry in self.steps:
            mark = ">" if entry is self.current else " "
            out.append(f"{mark} [{entry.started - self.started:7.1f}s] {entry.message}"
                       + ("" if entry is self.current else f"  ({entry.seconds(now):.1f} s)"))
        return out

    def html(self, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        rows = []
        for entry in self.steps:
            at = f"{entry.started - self.started:.1f} s"
            text = html.escape(entry.message)
            if entry is self.current:
                rows.append(f"<li style='font-weight:bold;color:#1f5fa8'>&#9654; {text} "
                            f"<span style='color:#888'>(since {at})</span></li>")
            else:
                rows.append(f"<li style='color:#444'>&#10003; {text} <span style='color:#888'>"
                            f"({entry.seconds(now):.1f} s)</span></li>")
        total = (self.steps[-1].ended if self.finished else now) - self.started
        state = "done" if self.finished else "working"
        return (f"<div style='font-family:monospace;font-size:90%'><b>{state}, "
                f"{total:.1f} s</b><ul style='list-style:none;padding-left:0.5em;margin:0'>"
                + "".join(rows) + "</ul></div>")


class PrintSteps:
    """Progress as printed lines with the elapsed time (outside Jupyter)."""

    def __init__(self, stream=None, clock: Callable[[], float] = time.monotonic):
        self.stream = stream
        self.log = StepLog(clock)

    def __call__(self, message: str) -> None:
        self.log.add(message)
        entry = self.log.steps[-1]
        print(f"[{entry.started - self.log.started:7.1f}s] {entry.message}",
              file=self.stream or sys.stderr, flush=True)


class StepDisplay:
    """Progress as a widget: steps with durations, the current one highlighted."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, show: bool = True):
        widgets = _widgets()
        self.log = StepLog(clock)
        self.widget = widgets.HTML(self.log.html())
        if show:
            _display(self.widget)

    def __call__(self, message: str) -> None:
        self.log.add(message)
        self.widget.value = self.log.html()


def step_display() -> Callable[[str], None]:
    """A progress callback for ``Lab.up(progress=...)``: a widget in Jupyter, else printed lines."""
    if in_notebook():
        try:
            return StepDisplay()
        except ImportError:
            pass
    return PrintSteps()


# ============================================================================ tables


class Table:
    """Rows shown as an HTML table in Jupyter and as aligned text elsewhere."""

    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence[str]]):
        self.columns = list(columns)
        self.rows = [list(r) for r in rows]

    def __str__(self) -> str:
        data = [self.columns] + self.rows
        widths = [max(len(r[i]) for r in data) for i in range(len(self.columns))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in data)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{html.escape(v)}</td>"
                                        for v in r) + "</tr>" for r in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def table(rows: Iterable[Any], columns: Sequence[str] | None = None, *,
          limit: int | None = None) -> Table:
    """A :class:`Table` of dataclass instances, dicts, objects or tuples.

    ``columns`` picks fields (default: every dataclass field / dict key of the
    first row; tuples need ``columns``).  Tuple values (aggregation keys, stacks)
    are joined with ``, ``; None shows as ``-``.
    """
    rows = list(rows)
    if limit is not None:
        rows = rows[:limit]
    if columns is None:
        columns = _default_columns(rows[0]) if rows else []
    return Table(columns, [[_cell(_value(row, c, i)) for i, c in enumerate(columns)] for row in rows])


def _default_columns(row: Any) -> list[str]:
    if dataclasses.is_dataclass(row):
        return [f.name for f in dataclasses.fields(row) if f.name not in ("raw", "fields")]
    if isinstance(row, Mapping):
        return [str(k) for k in row]
    raise TypeError(f"give columns for rows of type {type(row).__name__}")


def _value(row: Any, column: str, index: int) -> Any:
    if isinstance(row, Mapping):
        return row.get(column)
    if isinstance(row, (tuple, list)):
        return row[index] if index < len(row) else None
    return getattr(row, column, None)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def figure_image(fig, *, dpi: int = 100):
    """A matplotlib Figure as an ``IPython.display.Image`` (shown as a cell's last value).

    The toolkit's plots are pyplot-free Figures, which Jupyter would show only as text.
    """
    from IPython.display import Image

    from .toolkits.plots import to_png
    return Image(data=to_png(fig, dpi=dpi), format="png")


# ============================================================================ exercises


@dataclass(frozen=True)
class CheckOutcome:
    """The result of a step's check: ``passed``, what to tell the learner, and the command result."""

    passed: bool
    message: str
    hint: str = ""
    result: CommandResult | None = None

    def __str__(self) -> str:
        return self.message + (f"\nHint: {self.hint}" if self.hint and not self.passed else "")

    def _repr_html_(self) -> str:
        colour, mark = ("#2e7d32", "&#10004;") if self.passed else ("#c62828", "&#10008;")
        parts = [f"<div style='color:{colour}'><b>{mark} "
                 + html.escape(self.message).replace("\n", "<br>") + "</b></div>"]
        if self.hint and not self.passed:
            parts.append(f"<div><i>Hint:</i> {html.escape(self.hint)}</div>")
        return "".join(parts)


@dataclass(frozen=True)
class SolveReport:
    """What :meth:`Step.solve` ran (in order) and the check afterwards."""

    results: list[CommandResult]
    outcome: CheckOutcome

    def __str__(self) -> str:
        lines = [f"$ {r.command}   (exit {r.exit_status})" for r in self.results]
        return "\n".join(lines + [str(self.outcome)])


OUTPUT_LINES = 15


@dataclass
class Step:
    """One step of an exercise.

    ``check`` is a shell command run in the lab: exit status 0 means done.
    ``solution`` is the command(s) that complete the step, shown on request and
    run in order by :meth:`solve`.  ``failure`` replaces the default "not yet"
    message; ``hint`` is shown with it.
    """

    title: str
    instructions: str
    check: str
    solution: Sequence[str] | str = ()
    hint: str = ""
    success: str = ""
    failure: str = ""
    timeout: float = 120.0

    def __post_init__(self) -> None:
        if isinstance(self.solution, str):
            self.solution = (self.solution,)
        self.solution = tuple(self.solution)
        if not self.check.strip():
            raise ValueError(f"step {self.title!r} needs a check command")

    def run_check(self, runner: CommandRunner) -> CheckOutcome:
        """Run the check in the lab and say whether the step is done."""
        try:
            result = runner.run(self.check, timeout=self.timeout)
        except CommandTimeout:
            return CheckOutcome(False, f"Not yet: the check did not finish within "
                                       f"{self.timeout:g} s ({self.check})", self.hint)
        if result.exit_status == 0:
            return CheckOutcome(True, self.success or f"Done: {self.title}", result=result)
        message = self.failure or (f"Not yet: the check `{self.check}` exited with status "
                                   f"{result.exit_status}.")
        output = _last_lines(result.stdout + result.stderr, OUTPUT_LINES)
        if output:
            message += "\n" + output
        return CheckOutcome(False, message, self.hint, result)

    def solution_text(self) -> str:
        return "\n".join(self.solution) if self.solution else "(this step has no solution commands)"

    def solve(self, runner: CommandRunner) -> SolveReport:
        """Run the solution commands in order (stopping at the first that fails), then the check."""
        results: list[CommandResult] = []
        for command in self.solution:
            result = runner.run(command, timeout=self.timeout)
            results.append(result)
            if result.exit_status != 0:
                output = _last_lines(result.stdout + result.stderr, OUTPUT_LINES)
                return SolveReport(results, CheckOutcome(
                    False, f"The solution command `{command}` failed with exit status "
                           f"{result.exit_status}." + (f"\n{output}" if output else ""),
                    result=result))
        return SolveReport(results, self.run_check(runner))


def _last_lines(text: str, n: int) -> str:
    lines = text.replace("\r\n", "\n").rstrip("\n").split("\n")
    return "\n".join(lines[-n:]) if text.strip() else ""


class Exercise:
    """Steps checked in a lab (``runner``: a :class:`~smartos_lab.lab.Lab` or any
    :class:`~smartos_lab.machine.result.CommandRunner`).

    In Jupyter, :meth:`show` draws each step with Check / Show solution / Solve
    buttons; elsewhere use :meth:`check`, :meth:`solution` and :meth:`solve`.
    """

    def __init__(self, title: str, steps: Sequence[Step], runner: CommandRunner):
        if not steps:
            raise ValueError("an exercise needs at least one step")
        self.title = title
        self.steps = list(steps)
        self.runner = runner
        self.passed: set[int] = set()

    def _step(self, index: int) -> Step:
        if not 0 <= index < len(self.steps):
            raise IndexError(f"exercise {self.title!r} has steps 0..{len(self.steps) - 1}")
        return self.steps[index]

    def check(self, index: int) -> CheckOutcome:
        outcome = self._step(index).run_check(self.runner)
        (self.passed.add if outcome.passed else self.passed.discard)(index)
        return outcome

    def solution(self, index: int) -> str:
        return self._step(index).solution_text()

    def solve(self, index: int) -> list[SolveReport]:
        """Fast-forward to the end of step ``index``.

        Nothing is run when step ``index`` passes already.  Otherwise every step
        up to it is solved in order, except those recorded as passed and those
        whose check passes now; it stops at the first step whose solution fails.
        """
        reports: list[SolveReport] = []
        self._step(index)
        if self.check(index).passed:
            return reports
        for i in range(index + 1):
            if i in self.passed or (i < index and self.check(i).passed):
                continue
            report = self.steps[i].solve(self.runner)
            reports.append(report)
            (self.passed.add if report.outcome.passed else self.passed.discard)(i)
            if not report.outcome.passed:
                break
        return reports

    def progress(self) -> str:
        return f"{len(self.passed)}/{len(self.steps)} steps done"

    def __str__(self) -> str:
        lines = [f"{self.title} ({self.progress()})"]
        for i, step in enumerate(self.steps):
            lines.append(f"  {'[x]' if i in self.passed else '[ ]'} {i}. {step.title}")
        return "\n".join(lines)

    # -- widgets -------------------------------------------------------------------------
    def widget(self):
        """The exercise as an ipywidgets box (built, not displayed)."""
        w = _widgets()
        header = w.HTML()

        def refresh_header() -> None:
            header.value = (f"<h3 style='margin:0.2em 0'>{html.escape(self.title)}</h3>"
                            f"<div style='color:#555'>{self.progress()}</div>")

        refresh_header()
        boxes = [header]
        for i, step in enumerate(self.steps):
            boxes.append(self._step_widget(w, i, step, refresh_header))
        return w.VBox(boxes)

    def _step_widget(self, w, index: int, step: Step, on_change: Callable[[], None]):
        title = w.HTML(f"<h4 style='margin:0.6em 0 0.2em'>Step {index + 1}: "
                       f"{html.escape(step.title)}</h4>")
        instructions = w.Output()
        with instructions:
            from IPython.display import Markdown
            _display(Markdown(step.instructions))
        check = w.Button(description="Check", button_style="primary", icon="check")
        show = w.Button(description="Show solution", icon="eye")
        solve = w.Button(description="Solve", button_style="warning", icon="forward",
                         tooltip="run the solution of this step (and of earlier unsolved steps)")
        out = w.Output()

        def guarded(action: Callable[[], None]) -> Callable[[Any], None]:
            def handler(_button) -> None:
                out.clear_output()
                with out:
                    try:
                        action()
                    except LabError as exc:
                        print(f"{type(exc).__name__}: {exc}")
                    finally:
                        on_change()
            return handler

        def do_check() -> None:
            _display(self.check(index))

        def do_show() -> None:
            from IPython.display import Markdown
            _display(Markdown("```sh\n" + step.solution_text() + "\n```"))

        def do_solve() -> None:
            reports = self.solve(index)
            if not reports:
                _display(CheckOutcome(True, f"Step {index + 1} already passes its check: "
                                            "nothing to solve."))
            for report in reports:
                for result in report.results:
                    print(f"$ {result.command}   (exit {result.exit_status})")
                _display(report.outcome)

        check.on_click(guarded(do_check))
        show.on_click(guarded(do_show))
        solve.on_click(guarded(do_solve))
        return w.VBox([title, instructions, w.HBox([check, show, solve]), out])

    def show(self) -> None:
        """Display the exercise (widgets in Jupyter, text elsewhere)."""
        if in_notebook():
            try:
                _display(self.widget())
                return
            except ImportError:
                pass
        print(self)
        for i, step in enumerate(self.steps):
            print(f"\n{i}. {step.title}\n{step.instructions}")
        print("\nUse .check(i), .solution(i) and .solve(i).")


# ============================================================================ console and checkpoints


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
    from .machine.ansi import AnsiStripper
    return AnsiStripper().feed(data.decode("utf-8", "replace"))[-chars:]


def console_widget(lab, chars: int = 3000, *, follow_interval: float = 0.5):
    """The lab's console tail with a Refresh button and a Follow toggle (live updates)."""
    w = _widgets()
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
    w = _widgets()
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
                    _display(action())
                except LabError as exc:
                    print(f"{type(exc).__name__}: {exc}")
        return handler

    save.on_click(run(lambda: actions.save(text.value.strip())))
    restore.on_click(run(lambda: actions.restore(text.value.strip())))
    listing.on_click(run(actions.listing))
    return w.VBox([w.HBox([text, save, restore, listing]), out])
