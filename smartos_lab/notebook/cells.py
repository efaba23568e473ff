"""What a magic cell shows: output streamed as the guest prints it, and short errors.

:class:`CellError` fails a cell with a few lines (IPython shows an exception's
``_render_traceback_`` instead of a traceback), so a failing guest command or a
lab error reads like the message it is, not like a wall of internal frames.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from ..errors import CommandFailed, LabError
from ..machine.result import CommandResult

STDERR_TAIL = 5             # lines of stderr a failed command's error shows
MAX_LINES = 15              # lines of a lab error's message a cell shows
RED, BOLD, RESET = "\x1b[31m", "\x1b[1m", "\x1b[0m"


class CellError(Exception):
    """Fails a cell with ``title`` and a few ``lines``, and no traceback."""

    def __init__(self, title: str, lines: list[str] | tuple[str, ...] = ()):
        self.title = title
        self.lines = list(lines)
        self.error: BaseException | None = None      # the lab error shown, if any
        super().__init__("\n".join([title, *self.lines]))

    def _render_traceback_(self) -> list[str]:
        return [f"{RED}{BOLD}{self.title}{RESET}", *self.lines]

    @classmethod
    def from_lab_error(cls, exc: LabError, max_lines: int = MAX_LINES) -> CellError:
        """``ErrorType: message`` (the message is written for people already), at most
        ``max_lines`` more lines; the error itself stays in ``.error``."""
        text = str(exc).rstrip() or type(exc).__name__
        first, *rest = text.split("\n")
        if len(rest) > max_lines:
            more = len(rest) - max_lines
            rest = rest[:max_lines] + [f"  ... {more} more lines (all in sys.last_value.error)"]
        made = cls(f"{type(exc).__name__}: {first}", rest)
        made.error = exc
        return made


def command_failed(result: CommandResult, stderr_tail: int = STDERR_TAIL) -> CellError:
    """The short error of a command that exited non-zero: command, status, stderr tail."""
    command = result.command if len(result.command) <= 200 else result.command[:197] + "..."
    lines = [f"  command: {line}" if i == 0 else f"           {line}"
             for i, line in enumerate(command.splitlines() or [""])]
    # over the console stderr is merged into stdout: its tail is the output's
    tail = (result.stderr or result.stdout).rstrip("\n").splitlines()[-stderr_tail:]
    if tail:
        lines.append("  stderr:" if result.stderr else "  last output:")
        lines += [f"    {line}" for line in tail]
    return CellError(f"exit status {result.exit_status} (via {result.transport})", lines)


@dataclass
class CellOutput:
    """The ``on_output(text, stream)`` of ``lab.sh`` writing into the cell.

    Pieces go to the cell's stdout as they arrive (``"stderr"`` ones to its
    stderr) and are flushed at once.  ``arrivals`` keeps (monotonic time, chunk)
    for measuring latency.
    """

    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    clock: Callable[[], float] = time.monotonic
    arrivals: list[tuple[float, str]] = field(default_factory=list)
    record: bool = False

    def __call__(self, text: str, stream: str = "stdout") -> None:
        out = self.stderr if stream == "stderr" else self.stdout
        out.write(text)
        out.flush()
        if self.record:
            self.arrivals.append((self.clock(), text))


def run_streamed(sh: Callable[..., CommandResult], command: str, *, timeout: float,
                 via: str | None, output: CellOutput) -> CommandResult:
    """Run ``command`` with ``sh`` (``lab.sh``) streaming into ``output``; a non-zero exit
    raises :class:`CellError`, a lab error becomes one too."""
    try:
        result = sh(command, timeout=timeout, via=via, on_output=output)
    except CommandFailed as exc:
        raise command_failed(exc.result) from None
    except LabError as exc:
        raise CellError.from_lab_error(exc) from None
    except KeyboardInterrupt:
        raise CellError("interrupted", [f"  command: {command}",
                                        "  the guest command was stopped; the shell is ready for "
                                        "the next cell"]) from None
    if result.exit_status != 0:
        raise command_failed(result)
    return result
