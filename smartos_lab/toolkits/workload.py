"""Background workloads in the guest that tracing and resource-control lessons observe.

A :class:`BackgroundLoad` is a shell loop started in the background under a name
(it ignores SIGHUP itself: not every shell environment has ``nohup``):
starting it again while it runs does nothing (a pid file in the guest says it
runs), :meth:`BackgroundLoad.stop` ends the loop and the command it is running,
and the loop ends by itself after ``rounds`` rounds.  It runs in the global
zone, or in a zone through ``zlogin`` (``zone=<uuid>``).
"""
from __future__ import annotations

import re

from ..errors import ConfigError
from ..machine.result import CommandResult, CommandRunner
from . import _cmd
from .base import Toolkit

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,40}")

#: disk writes and syncs plus a directory walk: something for io/syscall probes to see
DISK_AND_FILES = ("dd if=/dev/urandom of={dir}/{name}.bin bs=64k count=32 2>/dev/null; sync; "
                  "find /usr/lib -name '*.so*' > /dev/null")
#: one CPU kept busy (a CPU hog for cpu_cap / FSS lessons)
CPU_SPIN = "j=0; while [ $j -lt 20000 ]; do j=$((j+1)); done"


class BackgroundLoad(Toolkit):
    """A named background loop in the guest: at most one runs per name (and zone)."""

    def __init__(self, runner: CommandRunner, name: str, body: str = DISK_AND_FILES, *,
                 rounds: int = 40, zone: str | None = None, directory: str = "/var/tmp",
                 timeout: float = 60.0):
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError(f"invalid load name {name!r}: lowercase letters, digits and -")
        if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1:
            raise ConfigError(f"rounds must be a positive integer, got {rounds!r}")
        _cmd.no_control(body, "load body")
        _cmd.no_control(directory, "directory")
        super().__init__(runner, timeout=timeout)
        self.name = name
        self.zone = _cmd.uuid(zone) if zone is not None else None
        self.pidfile = f"{directory}/smartos-lab-load-{name}.pid"
        body = body.replace("{dir}", directory).replace("{name}", f"smartos-lab-load-{name}")
        self.loop = (f"trap '' HUP; i=0; while [ $i -lt {rounds} ]; do {body}; i=$((i+1)); done; "
                     f"rm -f {_cmd.q(self.pidfile)} {_cmd.q(directory)}/smartos-lab-load-{name}.bin")

    def _alive(self) -> str:
        """Shell test: the pid file names a live process (a zombie does not count)."""
        pid = _cmd.q(self.pidfile)
        return (f"[ -f {pid} ] && p=$(cat {pid}) && kill -0 \"$p\" 2>/dev/null && "
                "[ \"$(ps -o s= -p \"$p\" 2>/dev/null | tr -d ' ')\" != Z ]")

    def start(self) -> bool:
        """Start the loop unless it already runs; True if this call started it."""
        # set -m: where the shell can, the loop gets its own process group (see stop())
        script = (f"set -m; if {self._alive()}; then echo running; "
                  f"else sh -c {_cmd.q(self.loop)} < /dev/null > /dev/null 2>&1 & "
                  f"echo $! > {_cmd.q(self.pidfile)}; echo started; fi")
        return self._sh(script).stdout.split()[-1:] == ["started"]

    def running(self) -> bool:
        return self._sh(f"if {self._alive()}; then echo yes; else echo no; fi"
                         ).stdout.split()[-1:] == ["yes"]

    def stop(self) -> bool:
        """Stop the loop and the command it is running; True if it was running."""
        pid = _cmd.q(self.pidfile)
        script = (f"if {self._alive()}; then "
                  # frozen, its group (where set -m made one) or its children (pkill -P), itself
                  "kill -STOP \"$p\"; kill -TERM -\"$p\" 2>/dev/null; pkill -P \"$p\" 2>/dev/null; "
                  f"kill -TERM \"$p\" 2>/dev/null; kill -CONT \"$p\" 2>/dev/null; rm -f {pid}; echo stopped; "
                  f"else rm -f {pid}; echo idle; fi")
        return self._sh(script).stdout.split()[-1:] == ["stopped"]

    def _sh(self, script: str) -> CommandResult:
        command = _cmd.cmd("sh", "-c", script)
        if self.zone is not None:
            command = _cmd.cmd("zlogin", self.zone, command)
        return self._ok(command)
