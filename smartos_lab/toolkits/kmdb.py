"""kmdb, the illumos kernel debugger, driven over a lab's serial console.

A lab stops in kmdb when booted with ``-kd``, when it panics after booting
with ``-k``, or on a break; the console then shows kmdb's prompt ``[0]> ``
(the number is the CPU).  :class:`Kmdb` types dcmds at that prompt and
returns their output, answering mdb's pager (``>> More [<space>, <cr>, q, n,
c, a] ?``, ``usr/src/cmd/mdb/common/mdb/mdb_io.c``) with ``c`` (go on without
paging).  Output is parsed with :mod:`smartos_lab.parsers.crash`.

Every call checks that the lab is in kmdb first (:class:`NotInKmdb`
otherwise): the console recorded the kmdb prompt (the console's crash
detection sees it as :class:`~smartos_lab.errors.GuestDebugger`), the console
text ends at the prompt, or nothing was printed since the last command here
ended at it (or since ``at_prompt=True`` said so: an attach that read the
prompt at the end of the serial log).  :meth:`Kmdb.cont` (``:c``) lets the kernel
run on; :meth:`Kmdb.dump_and_reboot` (``$<systemdump``, illumos System
Administration Guide, "How to Force a Crash Dump and Reboot of the System")
makes the kernel panic, write its crash dump and reboot.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ConfigError, GuestDebugger, KmdbError, NotInKmdb
from ..parsers.crash import MdbStatus, MessageBuffer, parse_mdb_stack, parse_mdb_status, parse_msgbuf
from ..parsers.panic import Frame

PROMPT = r"\n\[\d+\]> "           # kmdb's prompt at the start of a line: [CPU]>
PAGER_PROMPT = r">> More \[<space>, <cr>, q, n, c, a\] \? "
COMMAND_TIMEOUT = 60.0
DUMP_TIMEOUT = 600.0
_LOCATION = re.compile(r"[A-Za-z_][\w.$]*(?:`[A-Za-z_][\w.$]*)?(?:\+(?:0x)?[0-9a-fA-F]+)?")
_PROMPT_AT_END = re.compile(r"(?:^|\n)\[\d+\]> ?$")
_DUMP_RESULT = re.compile(r"dump (succeeded|failed)")


@dataclass(frozen=True)
class DumpResult:
    """What the console showed after ``$<systemdump``: the dump's outcome and the text."""

    succeeded: bool
    text: str


class Kmdb:
    """kmdb on one lab's console (``lab.kmdb``)."""

    def __init__(self, console, *, name: str = "lab", timeout: float = COMMAND_TIMEOUT,
                 at_prompt: bool = False):
        self.console = console
        self.name = name
        self.timeout = timeout
        self._prompt_mark: int | None = console.mark() if at_prompt else None
        self._left: int | None = None       # console mark where :c / $<systemdump left kmdb

    # --- state ------------------------------------------------------------------------
    def active(self) -> bool:
        """True when the lab sits at the kmdb prompt (the last thing on its console)."""
        if self._at_prompt or isinstance(self.console.crash, GuestDebugger):
            return True
        since = self.console.mark() - 400       # the end of the text is enough (lab.sh asks often)
        seen = self.console.text_since(since if self._left is None else max(self._left, since))
        return bool(_PROMPT_AT_END.search(seen))

    @property
    def _at_prompt(self) -> bool:
        """kmdb's prompt was the last thing seen here and the console printed nothing since."""
        return self._prompt_mark is not None and self.console.mark() == self._prompt_mark

    def _require(self) -> None:
        if not self.active():
            raise NotInKmdb(
                f"lab {self.name} is not stopped in kmdb: boot it with kernel_args='-kd' to stop "
                f"there at boot, or with '-k' so that a panic stops there")

    # --- commands -----------------------------------------------------------------------
    def run(self, command: str, timeout: float | None = None) -> str:
        """Run one dcmd (``::stack``, ``::status``, ``zfs_read::dis``) and return its output."""
        if not isinstance(command, str) or not command.strip() or "\n" in command or "\r" in command:
            raise ConfigError(f"a kmdb command is one line of text, got {command!r}")
        self._require()
        wait = timeout if timeout is not None else self.timeout
        self.console.skip_pending()
        self.console.clear_crash()          # acknowledged: we type into kmdb (its next prompt is
        self.console.sendline(command)      # recorded again, so lab.sh keeps refusing)
        self.console.expect(re.escape(command), timeout=wait, check_crash=False)   # kmdb's echo
        parts: list[str] = []
        while True:
            match = self.console.expect([PROMPT, PAGER_PROMPT], timeout=wait, check_crash=False)
            parts.append(match.before)
            if match.index == 0:
                break
            self.console.send("c")          # the pager: continue without paging
        self._prompt_mark = self.console.mark()
        return _clean("".join(parts))

    def status(self) -> MdbStatus:
        """``::status``, parsed."""
        return parse_mdb_status(self.run("::status"), command="kmdb ::status")

    def stack(self) -> list[Frame]:
        """``::stack`` of the current thread, parsed (innermost frame first)."""
        return parse_mdb_stack(self.run("::stack"), command="kmdb ::stack")

    def msgbuf(self) -> MessageBuffer:
        """``::msgbuf``: the kernel's messages, with the panic among them parsed."""
        return parse_msgbuf(self.run("::msgbuf"), command="kmdb ::msgbuf")

    def set_breakpoint(self, location: str) -> None:
        """``location::bp`` (``zfs_read``, ``zfs`zfs_read``, ``zfs_read+0x10``).

        ``::bp`` prints nothing when it sets the breakpoint; anything it prints is kmdb's
        refusal and becomes :class:`KmdbError`.
        """
        if not isinstance(location, str) or not _LOCATION.fullmatch(location):
            raise ConfigError(f"bad breakpoint location {location!r}: use a symbol, "
                              "module`symbol or symbol+offset")
        output = self.run(f"{location}::bp")
        if output.strip():
            raise KmdbError(f"kmdb did not set a breakpoint at {location}: "
                            f"{output.strip().splitlines()[0]}")

    def cont(self) -> None:
        """``:c``: let the kernel run on (the console watches for crashes again)."""
        self._require()
        self.console.skip_pending()
        self.console.clear_crash()
        self._left = self.console.mark()
        self.console.sendline(":c")
        self._prompt_mark = None

    def wait_stop(self, timeout: float = 600.0) -> str:
        """After :meth:`cont`: wait until kmdb takes over again (a breakpoint, a panic with
        ``-k``, a break) and return what the console showed before the prompt."""
        if self._at_prompt:
            return ""
        mark = self._left if self._left is not None else self.console.mark()
        self.console.expect(PROMPT, timeout=timeout, check_crash=False)
        self._prompt_mark = self.console.mark()
        text = _clean(self.console.text_since(mark))
        if text.startswith(":c"):
            text = text.partition("\n")[2]             # the echo of :c
        return re.sub(r"\n?\[\d+\]> ?$", "", text)

    def dump_and_reboot(self, timeout: float = DUMP_TIMEOUT) -> DumpResult:
        """``$<systemdump``: panic, write the crash dump, reboot; returns the dump's outcome."""
        self._require()
        self.console.skip_pending()
        self.console.clear_crash()
        mark = self._left = self.console.mark()
        self.console.sendline("$<systemdump")
        self._prompt_mark = None
        match = self.console.expect(_DUMP_RESULT.pattern, timeout=timeout, check_crash=False)
        return DumpResult(succeeded=match.after.endswith("succeeded"),
                          text=self.console.text_since(mark))


def _clean(text: str) -> str:
    """Output without the rest of the echoed command line and with plain newlines."""
    text = text.replace("\r\n", "\n").replace("\r", "")
    return text[1:] if text.startswith("\n") else text
