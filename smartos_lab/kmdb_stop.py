"""A lab stopped in kmdb: its boot stopped there, or it entered kmdb later.

The glue between :class:`~smartos_lab.lab.Lab` and the console's view of the
kernel debugger (:mod:`smartos_lab.machine.debugger`):

- :func:`boot_stop`: does the error a boot ended with mean that the guest
  waits in its kernel debugger?  kmdb's prompt at boot (``-kd``, a
  breakpoint) does; so does a panic that the prompt follows (``-k``: "panic:
  entering debugger").  ``Lab.up`` then returns the lab stopped there, its
  QEMU running, instead of shutting it down.
- :func:`attach_stop`: a lab attached to by name (another process, after a
  kernel restart) whose serial log ends at the debugger's prompt.
- :class:`NotLoggedIn`: ``lab.shell`` of a lab whose boot stopped in kmdb;
  every command fails at once with :class:`~smartos_lab.errors.StoppedInKmdb`.
- :func:`refuse_if_in_kmdb`: ``lab.sh`` fails at once while the lab sits at
  kmdb's prompt (instead of after its timeout).

``lab.resume()`` goes on: ``:c`` if the lab still sits at the prompt, then the
rest of the boot and the login.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ConsoleTimeout, GuestDebugger, GuestError, GuestPanic, StoppedInKmdb
from .machine.debugger import console_patterns, ends_at_prompt, log_at_prompt

if TYPE_CHECKING:
    from .lab import Lab

PROMPT_AFTER_PANIC = 120.0      # how long kmdb's prompt may take to follow a panic ...
PROMPT_AFTER_PANIC_IDLE = 10.0  # ... as long as the console keeps printing
TOOLS = "lab.kmdb (run('::stack'), status(), msgbuf(), set_breakpoint(...))"


@dataclass(frozen=True)
class KmdbStop:
    """Why a lab's boot stopped in kmdb.

    ``cause``: ``"debugger"`` (the prompt itself: ``-kd``, a breakpoint) or
    ``"panic"`` (a panic, then the prompt); ``text``: the first line the console
    showed; ``from_log``: seen at the end of the serial log (an attach), not on
    this process's console.
    """

    cause: str
    text: str
    from_log: bool = False

    def progress_message(self, name: str) -> str:
        """The last progress event of a boot that stopped here."""
        if self.cause == "panic":
            return (f"lab {name} stopped in kmdb after a panic: {TOOLS}; lab.resume() lets the "
                    "kernel save its crash dump and reboot (:c), boots again and logs in")
        return f"lab {name} stopped in kmdb: {TOOLS}; lab.resume() continues the boot and logs in"


def boot_stop(console, error: BaseException) -> KmdbStop | None:
    """A :class:`KmdbStop` if ``error`` (raised by a strategy's boot) left the guest in kmdb."""
    if isinstance(error, GuestDebugger):
        return KmdbStop("debugger", error.reason)
    if not isinstance(error, GuestPanic):
        return None
    patterns = console_patterns(console)
    if not patterns:
        return None
    if not ends_at_prompt(console.tail(400), patterns):
        try:                                        # (^ at any line start, as the console scans)
            console.expect([re.compile(p, re.MULTILINE) for p in patterns],
                           timeout=PROMPT_AFTER_PANIC, idle_timeout=PROMPT_AFTER_PANIC_IDLE,
                           check_crash=False)
        except (ConsoleTimeout, GuestError):        # quiet, rebooted, QEMU gone: no debugger
            return None
    return KmdbStop("panic", error.reason)


def attach_stop(machine) -> KmdbStop | None:
    """A :class:`KmdbStop` if the serial log of ``machine`` (just attached) ends at the prompt."""
    if log_at_prompt(machine.serial_log, console_patterns(machine.console)):
        return KmdbStop("debugger", "the serial log ends at the debugger's prompt", from_log=True)
    return None


def in_kmdb_message(lab: Lab) -> str:
    if lab.stopped_at_boot is not None:
        return (f"lab {lab.name} is stopped in kmdb and not logged in yet: {TOOLS}; "
                "lab.resume() continues (:c), finishes the boot and logs in")
    return (f"lab {lab.name} is stopped in kmdb: {TOOLS}; lab.resume() lets it run on (:c; "
            "after a panic that saves the crash dump and reboots)")


def refuse_if_in_kmdb(lab: Lab) -> None:
    """Raise :class:`StoppedInKmdb` at once while the lab sits at kmdb's prompt."""
    if lab.kmdb.active():
        raise StoppedInKmdb(in_kmdb_message(lab))


class NotLoggedIn:
    """``lab.shell`` while the lab's boot is stopped in kmdb (or continued, not yet resumed)."""

    transport = "none"

    def __init__(self, name: str):
        self.name = name

    def _error(self) -> StoppedInKmdb:
        return StoppedInKmdb(f"lab {self.name} is not logged in: its boot stopped in kmdb; "
                             "lab.resume() continues it (:c if kmdb still waits), finishes the "
                             "boot and logs in")

    def ssh_usable(self) -> bool:
        return False

    def run(self, command: str, timeout: float = 60.0, *, via: str | None = None,
            on_output=None):
        raise self._error()

    def check(self, command: str, timeout: float = 60.0, *, via: str | None = None):
        raise self._error()

    def put(self, *args, **kwargs) -> None:
        raise self._error()

    def get(self, *args, **kwargs) -> None:
        raise self._error()

    def before_restore(self) -> None:
        pass

    def after_restore(self, timeout: float = 60.0) -> None:
        pass

    def close(self) -> None:
        pass
