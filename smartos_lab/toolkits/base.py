"""What every toolkit shares (pytest-testinfra's ``Module`` shape): a runner and a timeout.

A toolkit builds command lines, runs them through ``runner`` (any
:class:`~smartos_lab.machine.result.CommandRunner`: the lab's shell, SSH, a
test's recorder) and parses what they print.  ``timeout`` bounds every command
that does not give its own.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..machine.result import CommandResult, CommandRunner
from . import _cmd


class Toolkit:
    """Commands in the guest through ``runner``, each bounded by ``timeout`` seconds."""

    def __init__(self, runner: CommandRunner, *, timeout: float = 120.0):
        self.runner = runner
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.runner!r}, timeout={self.timeout})"

    def _run(self, command: str, timeout: float | None = None) -> CommandResult:
        """Run ``command``; the result whatever its exit status."""
        return self.runner.run(command, timeout=self.timeout if timeout is None else timeout)

    def _ok(self, command: str, timeout: float | None = None) -> CommandResult:
        """Run ``command``; :class:`~smartos_lab.errors.CommandFailed` on a non-zero exit status."""
        return self._run(command, timeout).check()

    @contextmanager
    def _guest_file(self, content: str, *, prefix: str, suffix: str = "") -> Iterator[str]:
        """A new private (0600) file holding ``content`` under /tmp in the guest, removed after."""
        path = _cmd.temp_path(prefix, suffix)
        try:
            _cmd.write_file(self.runner, path, content, self.timeout)
            yield path
        finally:
            self._run(_cmd.cmd("rm", "-f", path))
