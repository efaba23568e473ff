"""Does a guest sit at its kernel debugger's prompt (kmdb's ``[0]> `` on SmartOS)?

Two ways of knowing, for two kinds of caller:

- the process holding the lab's console sees it on the console: the
  console's crash detection records the prompt (its profile's
  ``debugger_patterns``), or the console text ends at such a prompt
  (:func:`ends_at_prompt`);
- any other process (``smartos-lab ps``, an attach from another notebook)
  reads the end of the serial log that QEMU writes (``logfile=``): a guest
  waiting in its debugger printed the prompt last (:func:`log_at_prompt`).
  The patterns come from ``machine.json`` (``debugger_patterns``, recorded at
  launch from the console profile), kmdb's own by default.  What the log shows
  is what the guest printed: a debugger continued a moment ago still looks
  stopped until the guest prints again.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from .ansi import strip_ansi
from .rundir import tail_of

KMDB_PROMPT = r"^\[\d+\]> "    # kmdb's prompt: [CPU]>
DEFAULT_PATTERNS = (KMDB_PROMPT,)
LOG_TAIL = 1024             # bytes of the serial log read to find its last line


def console_patterns(console) -> tuple[str, ...]:
    """The debugger prompt patterns of ``console``'s profile (kmdb's for a console without one)."""
    patterns = getattr(getattr(console, "profile", None), "debugger_patterns", None)
    return DEFAULT_PATTERNS if patterns is None else tuple(patterns)


def ends_at_prompt(text: str, patterns: Iterable[str] = DEFAULT_PATTERNS) -> bool:
    """True when the last line of ``text`` is a debugger prompt (nothing typed after it)."""
    last = text.replace("\r\n", "\n").rsplit("\n", 1)[-1].replace("\r", "")
    if not last.strip():
        return False
    for pattern in patterns:
        m = re.compile(pattern, re.MULTILINE).search(last)
        if m is not None and not last[m.end():].strip():
            return True
    return False


def log_at_prompt(serial_log: str | Path, patterns: Iterable[str] = DEFAULT_PATTERNS) -> bool:
    """True when the serial log ends at a debugger prompt."""
    return ends_at_prompt(strip_ansi(tail_of(Path(serial_log), LOG_TAIL)), patterns)


def meta_patterns(meta: dict) -> tuple[str, ...]:
    """The debugger prompt patterns a machine recorded in its ``machine.json``."""
    patterns = meta.get("debugger_patterns")
    return DEFAULT_PATTERNS if patterns is None else tuple(patterns)
