"""The console profile for SmartOS's serial console (ttya).

- Crash patterns: illumos panics (``panic[cpu0]/thread=...``, illumos
  ``usr/src/uts/common/os/panic.c``), the kmdb prompt (``[0]>``) and
  ``press any key to reboot`` (what illumos shows under QEMU instead of
  powering off: smartos-facts section 2).
- Terminal queries are answered: on ``/dev/term/a`` root's bashrc runs
  ``measure_terminal``, which sends ``ESC[18t ESC[0c`` and waits for the
  replies (smartos-live ``src/measure_terminal.c``, ``REQUEST``); unanswered,
  each login costs its 5 s timeout.
- Enter is ``\\r``, what a terminal sends (the tty maps it to ``\\n``).
- Input goes in small chunks with a short pause: consoles can drop bursts
  right after a login prompt.
"""
from __future__ import annotations

from ..machine.console import ILLUMOS_PANIC, KMDB_PROMPT, REBOOT_PROMPT, Console, ConsoleProfile

SMARTOS_PROFILE = ConsoleProfile(
    name="smartos",
    newline="\r",
    chunk_size=16,
    chunk_delay=0.02,
    answer_queries=True,
    rows=25,
    cols=80,
    panic_patterns=(ILLUMOS_PANIC,),
    debugger_patterns=(KMDB_PROMPT,),
    halt_patterns=(REBOOT_PROMPT,),
)


def smartos_console(machine) -> Console:
    """Console factory for :meth:`QemuMachine.launch` (``console_factory=smartos_console``)."""
    return Console.connect_unix(machine.run_dir.console_socket, log_path=machine.serial_log,
                                exit_probe=machine.exit_error, profile=SMARTOS_PROFILE)
