"""Command runners for unit tests (the CommandRunner protocol without a guest).

:class:`RecordingRunner` records commands and answers with canned output;
:class:`LocalShell` runs commands for real in a local ``/bin/sh``.
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

from smartos_lab.errors import CommandTimeout
from smartos_lab.machine.result import CommandResult


class RecordingRunner:
    """Records every command; answers commands starting with a prefix with canned output.

    A reply is the stdout (exit status 0) or a ``(stdout, exit status)`` pair, or a
    list of those given one per call (the last one repeats).  Any other command
    gets empty output and exit status 0.
    """

    def __init__(self, replies: dict[str, str | tuple[str, int] | list] | None = None):
        self.replies = replies or {}
        self.commands: list[str] = []

    def run(self, command: str, timeout: float = 60.0) -> CommandResult:
        self.commands.append(command)
        for prefix, reply in self.replies.items():
            if command.startswith(prefix):
                if isinstance(reply, list):
                    reply = reply.pop(0) if len(reply) > 1 else reply[0]
                out, status = (reply, 0) if isinstance(reply, str) else reply
                return CommandResult(command, status, out)
        return CommandResult(command, 0, "")


class LocalShell:
    """Runs commands in a local /bin/sh, like a lab's shell runs them in the guest."""

    def __init__(self, cwd: Path | None = None):
        self.cwd = cwd
        self.commands: list[str] = []

    def run(self, command: str, timeout: float = 60.0) -> CommandResult:
        self.commands.append(command)
        started = time.monotonic()
        try:
            proc = subprocess.run(["/bin/sh", "-c", command], cwd=self.cwd, capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise CommandTimeout(f"{command!r} did not finish within {timeout} s") from None
        return CommandResult(command, proc.returncode, proc.stdout, proc.stderr,
                             time.monotonic() - started, transport="local")
