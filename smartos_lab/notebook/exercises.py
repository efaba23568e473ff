"""Lab exercises in the style of Instruqt and Katacoda.

Each :class:`Step` has instructions, a ``check`` (a shell command run in the
lab: exit 0 passes), a ``solution`` that can be shown, and ``solve`` to
fast-forward; an :class:`Exercise` draws its steps with Check / Show solution /
Solve buttons in Jupyter.
"""
from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import CommandTimeout, LabError
from ..machine.result import CommandResult, CommandRunner
from .env import display, in_notebook, widgets


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
        w = widgets()
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
            display(Markdown(step.instructions))
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
            display(self.check(index))

        def do_show() -> None:
            from IPython.display import Markdown
            display(Markdown("```sh\n" + step.solution_text() + "\n```"))

        def do_solve() -> None:
            reports = self.solve(index)
            if not reports:
                display(CheckOutcome(True, f"Step {index + 1} already passes its check: "
                                            "nothing to solve."))
            for report in reports:
                for result in report.results:
                    print(f"$ {result.command}   (exit {result.exit_status})")
                display(report.outcome)

        check.on_click(guarded(do_check))
        show.on_click(guarded(do_show))
        solve.on_click(guarded(do_solve))
        return w.VBox([title, instructions, w.HBox([check, show, solve]), out])

    def show(self) -> None:
        """Display the exercise (widgets in Jupyter, text elsewhere)."""
        if in_notebook():
            try:
                display(self.widget())
                return
            except ImportError:
                pass
        print(self)
        for i, step in enumerate(self.steps):
            print(f"\n{i}. {step.title}\n{step.instructions}")
        print("\nUse .check(i), .solution(i) and .solve(i).")
