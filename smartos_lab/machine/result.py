"""Command results and the small command-runner protocol shared by transports."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from ..errors import CommandFailed, ConfigError


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


Stream = Literal["stdout", "stderr"]

#: ``on_output(text, stream)``: a command's output as the guest prints it, in
#: pieces of any size (never split inside a UTF-8 character), ``stream`` being
#: ``"stdout"`` or ``"stderr"``.  The console has one merged stream: all of it
#: comes as ``"stdout"``.  Joined per stream, the pieces equal the final
#: :class:`CommandResult`'s ``stdout``/``stderr``.  Called in the caller's
#: thread; what it raises (e.g. ``KeyboardInterrupt``) stops the command in
#: the guest and is raised by ``run`` once the shell is usable again.
OnOutput = Callable[[str, Stream], None]


@runtime_checkable
class CommandRunner(Protocol):
    """Something that runs a shell command in the guest (console or SSH)."""

    def run(self, command: str, timeout: float = 60.0, *,
            on_output: OnOutput | None = None) -> CommandResult: ...


def refuse_nul(command: str) -> None:
    """Raise ConfigError for a command with a NUL byte: no shell command line can carry one
    (a C string ends there), so it would run cut short."""
    at = command.find("\x00")
    if at >= 0:
        raise ConfigError(f"command has a NUL byte at offset {at}; no shell command line can "
                          "carry one (the command would be cut there). Write binary data with "
                          f"printf escapes or GuestShell.put: {command[:200]!r}")
