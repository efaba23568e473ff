"""Typed errors for every layer of smartos-lab.

Each layer raises its own subclass; all derive from :class:`LabError`, so a
notebook can catch one type.  Errors that concern a running guest carry the
console tail and the serial log path, so the message shows what the guest
printed last.
"""
from __future__ import annotations


class LabError(Exception):
    """Base of every smartos-lab error."""


# --- bad input / host set-up -------------------------------------------------
class ConfigError(LabError):
    """Invalid user input: a spec, a name, a size, a path."""


class HostError(LabError):
    """The host lacks something needed (a binary, a permission, a free port)."""


class QemuNotFound(HostError):
    """No usable qemu-system binary."""


class PortInUse(HostError):
    """A host port requested for forwarding is already taken."""


class RunDirError(HostError):
    """A run directory is unsafe (wrong owner, wrong mode) or unusable."""


class LabInUse(RunDirError):
    """The lab's name is taken: its QEMU runs, or another process is starting it."""


class ImageError(LabError):
    """An image path is missing, unreadable or not what it claims to be."""


class DownloadError(ImageError):
    """A download failed (network, HTTP status, truncated data)."""


class ChecksumMismatch(DownloadError):
    """Downloaded data does not match the published checksum."""


# --- running machines ---------------------------------------------------------
class GuestError(LabError):
    """Something went wrong with a running guest.

    ``tail`` is the last console output (ANSI stripped), ``log_path`` the full
    serial log on the host.
    """

    def __init__(self, message: str, *, tail: str = "", log_path: str | None = None):
        self.tail = tail
        self.log_path = log_path
        self.reason = message
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [self.reason]
        if self.log_path:
            parts.append(f"serial log: {self.log_path}")
        if self.tail:
            tail = "\n".join(self.tail.rstrip().splitlines()[-25:])
            parts.append("last console output:\n" + _indent(tail))
        return "\n".join(parts)


def _indent(text: str) -> str:
    return "\n".join("  | " + line for line in text.splitlines())


class QemuExited(GuestError):
    """QEMU is gone: exited early, was killed or crashed."""

    def __init__(self, message: str, *, returncode: int | None = None, stderr: str = "",
                 argv: list[str] | None = None, tail: str = "", log_path: str | None = None):
        self.returncode = returncode
        self.stderr = stderr
        self.argv = argv or []
        if stderr.strip():
            message = f"{message}\nqemu stderr:\n{_indent(stderr.strip())}"
        super().__init__(message, tail=tail, log_path=log_path)


class GuestPanic(GuestError):
    """The guest kernel panicked (text in ``panic``)."""

    def __init__(self, message: str, *, panic: str = "", tail: str = "", log_path: str | None = None):
        self.panic = panic
        super().__init__(message, tail=tail, log_path=log_path)


class GuestDebugger(GuestError):
    """The guest dropped into its kernel debugger (kmdb ``[0]>``)."""


class GuestHalted(GuestError):
    """The guest halted and waits for a key to reboot."""


class ConsoleTimeout(GuestError):
    """The console did not show what was expected in time."""


class ConsoleClosed(GuestError):
    """The console connection closed."""


class CommandTimeout(GuestError):
    """A shell command did not finish within its timeout (it was interrupted)."""


class ShellExited(GuestError):
    """The command ended the guest shell it ran in (``exit``, ``exec``, a killed shell).

    The shell was logged in again and resynchronised when that was possible
    (the message says what was done); ``.command`` is the command.
    """

    command: str = ""


class CommandFailed(GuestError):
    """A command checked with ``check()`` exited non-zero."""

    def __init__(self, result, message: str | None = None):
        self.result = result
        msg = message or (
            f"command failed with exit status {result.exit_status}: {result.command}"
        )
        super().__init__(msg, tail=(result.stdout + result.stderr)[-2000:])


class QMPError(LabError):
    """A QMP command failed or QMP is unreachable."""


class QMPTimeout(QMPError):
    """A QMP command got no answer in time."""


class QMPCommandError(QMPError):
    """QEMU answered a command with an error (its ``error.class`` is :attr:`error_class`)."""

    def __init__(self, message: str, error_class: str, desc: str):
        super().__init__(message)
        self.error_class = error_class
        self.desc = desc


class CheckpointError(LabError):
    """A checkpoint could not be saved, restored, listed or deleted."""


class TransportError(LabError):
    """SSH (or another command transport) failed."""


class LabNotFound(LabError):
    """No lab of that name."""


class SetupError(GuestError):
    """SmartOS first-boot setup did not go as expected."""


class ParseError(LabError):
    """Command output could not be parsed.  Names the command and the line."""

    def __init__(self, command: str, message: str, line: str | None = None, lineno: int | None = None):
        self.command = command
        self.line = line
        self.lineno = lineno
        where = f" (line {lineno}: {line!r})" if line is not None else ""
        super().__init__(f"cannot parse output of {command}: {message}{where}")


class DTraceError(LabError):
    """DTrace reported an error (compile error, invalid probe, runtime fault)."""


class LoginFailed(GuestError):
    """The guest refused the login (wrong user name or password)."""


# --- kernel debugging (gdb stub, kmdb, crash dumps) ----------------------------
class GdbError(LabError):
    """gdb on the QEMU gdb stub failed or answered an error."""


class GdbTimeout(GdbError):
    """gdb (or the target under it) did not answer in time."""


class UnknownSymbol(GdbError):
    """A breakpoint or address lookup named a symbol the loaded symbols do not have."""


class GdbNotEnabled(LabError):
    """The lab's QEMU runs without its gdb stub (it was started without ``gdb=True``)."""


class StoppedInGdb(LabError):
    """The lab's CPUs are stopped by gdb: guest commands cannot run until it continues."""


class KmdbError(LabError):
    """kmdb refused a command (its message is in the error)."""


class NotInKmdb(LabError):
    """A kmdb command was asked of a lab that is not stopped in kmdb."""


class StoppedInKmdb(LabError):
    """The lab sits in kmdb (or its boot stopped there): guest commands cannot run until it
    continues (``lab.resume()``)."""


class DumpNotFound(LabError):
    """No crash dump with that number in the lab's crash directory."""
