"""Command results and the small command-runner protocol shared by transports."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..errors import CommandFailed


@dataclass(frozen=True)
class CommandResult:
    """What a command run in the guest produced.

    Over the serial console stdout and stderr arrive merged in ``stdout``;
    over SSH they are separate.
    """

    command: str
    exit_status: int
    stdout: str
    stderr: str = ""
    duration: float = 0.0
    transport: str = "console"

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def check(self) -> CommandResult:
        """Return self, or raise :class:`CommandFailed` on a non-zero exit."""
        if self.exit_status != 0:
            raise CommandFailed(self)
        return self


@runtime_checkable
class CommandRunner(Protocol):
    """Something that runs a shell command in the guest (console or SSH)."""

    def run(self, command: str, timeout: float = 60.0) -> CommandResult: ...
