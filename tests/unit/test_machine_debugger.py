"""Whether a console or a serial log ends at a kernel debugger's prompt (machine/debugger.py).

The kmdb texts are kmdb's prompt as recorded in tests/transcripts/kmdb_session.transcript
(illumos System Administration Guide, 'Forcing a Crash Dump ... by Using halt -d').
"""
from __future__ import annotations

import types

import pytest

from smartos_lab.machine.console import ConsoleProfile
from smartos_lab.machine.debugger import (
    DEFAULT_PATTERNS,
    console_patterns,
    ends_at_prompt,
    log_at_prompt,
    meta_patterns,
)

KMDB_END = ("Welcome to kmdb\r\nLoaded modules: [ audiosup crypto ufs unix krtld s1394 sppp nca "
            "uhci lofs \r\ngenunix ip usba specfs nfs md random sctp ]\r\n[0]> ")


@pytest.mark.parametrize(("text", "at_prompt"), [
    (KMDB_END, True),
    ("panic: entering debugger\n[3]> ", True),               # another CPU
    ("[0]> ", True),
    ("\r[0]>  \r", True),                                     # trailing blanks and CR
    (KMDB_END + "::stack", False),                            # something typed after it
    (KMDB_END + "::stack\r\nfffffe00b6e59c60 usb_console_input_enter+0x13(0)\r\n", False),
    ("[root@lab1 ~]# ", False),                               # the root shell's prompt
    ("x [0]> ", False),                                       # not at the start of the line
    ("", False),
    ("[0]> \n", False),                                       # the line after it is empty
])
def test_only_kmdbs_prompt_on_the_last_line_counts(text, at_prompt):
    assert ends_at_prompt(text) is at_prompt


def test_a_profile_declares_its_own_debugger_prompt():
    standin = (r"^stand-in debugger> ",)
    assert ends_at_prompt("boot...\r\nstand-in debugger> ", standin)
    assert not ends_at_prompt("boot...\r\nstand-in debugger> ", DEFAULT_PATTERNS)
    assert not ends_at_prompt(KMDB_END, standin)
    assert not ends_at_prompt(KMDB_END, ())                   # a profile without a debugger


def test_the_serial_log_is_read_without_terminal_codes(tmp_path):
    log = tmp_path / "serial.log"
    assert not log_at_prompt(log)                             # no log yet
    log.write_bytes(b"x" * 5000 + b"\x1b[0m" + KMDB_END.encode() + b"\x1b[?25h")
    assert log_at_prompt(log)
    log.write_bytes(log.read_bytes() + b"::status\r\n")
    assert not log_at_prompt(log)


def test_patterns_come_from_the_console_profile_or_machine_json_else_kmdbs():
    assert console_patterns(object()) == DEFAULT_PATTERNS
    profile = ConsoleProfile(debugger_patterns=("^x> ",))
    assert console_patterns(types.SimpleNamespace(profile=profile)) == ("^x> ",)
    assert console_patterns(types.SimpleNamespace(profile=ConsoleProfile(debugger_patterns=()))) == ()
    assert meta_patterns({}) == DEFAULT_PATTERNS                  # machine.json of an older launch
    assert meta_patterns({"debugger_patterns": []}) == ()
    assert meta_patterns({"debugger_patterns": ["^x> "]}) == ("^x> ",)
