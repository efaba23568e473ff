"""ConsoleProtocol: what the rest of the package needs from a serial console.

After labgrid's ``protocol/consoleprotocol.py``: the machine, the shells and
the SmartOS bring-up talk to a console through these members only, so a
console factory (``QemuMachine.launch(console_factory=...)``) may return any
object that has them.  :class:`~smartos_lab.machine.console.Console` (pexpect
over QEMU's console socket) is the one the package ships.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .console import ConsoleMatch


@runtime_checkable
class ConsoleProtocol(Protocol):
    """A serial console: send keys, wait for text, see what was printed, notice crashes."""

    name: str                       # for messages ("console of lab x")
    log_path: str | None            # the full serial log on the host, if kept

    # --- typing ---------------------------------------------------------------------
    def send(self, data: str | bytes, timeout: float = ...) -> None: ...

    def sendline(self, line: str = "", timeout: float = ...) -> None: ...

    def sendcontrol(self, char: str) -> None: ...

    # --- waiting ----------------------------------------------------------------------
    def expect(self, patterns: str | re.Pattern[str] | Sequence[str | re.Pattern[str]],
               timeout: float = 30.0, *, idle_timeout: float | None = None,
               searchwindowsize: int | None = None) -> ConsoleMatch: ...

    def expect_exact(self, strings: str | Sequence[str], timeout: float = 30.0, *,
                     idle_timeout: float | None = None,
                     searchwindowsize: int | None = None) -> ConsoleMatch: ...

    def wait_quiet(self, seconds: float, timeout: float) -> bool: ...

    def skip_pending(self) -> None: ...

    # --- what was printed ---------------------------------------------------------------
    def tail(self, chars: int = 4000) -> str: ...

    def mark(self) -> int: ...

    def text_since(self, mark: int) -> str: ...

    def wait_output(self, mark: int, timeout: float) -> bool:
        """Wait until there is text after ``mark`` (True) or ``timeout`` passed (False)."""

    def unmatched(self) -> str:
        """Text read after the last match, which the next ``expect`` searches first."""

    @property
    def before(self) -> str: ...

    @property
    def idle_seconds(self) -> float: ...

    # --- crashes and the end ---------------------------------------------------------------
    def check_alive(self) -> None:
        """Raise the guest's crash (panic, debugger, halt) or the console's end, if any."""

    def clear_crash(self) -> None:
        """Forget a recorded crash (a checkpoint restore undoes it)."""

    def close(self) -> None: ...
