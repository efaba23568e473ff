#!/usr/bin/env python3
"""Transcript replayer: plays a console transcript on its terminal and checks the answers typed.

A *test substrate*, not SmartOS: it prints text copied from SmartOS's setup
script and kernel (each transcript names its sources in ``# source:`` lines)
so the lab's first-boot watcher and prompt driver can be tested through a
real pty and the real :class:`~smartos_lab.machine.console.Console`.

Run with the pty slave as stdin/stdout.  Directives, one per line (strings
are JSON, so spacing and escapes are exact)::

    out "<text>"            write text (the tty turns \\n into \\r\\n)
    read "<regex>"          read one line (echo on) that must fully match regex
    read-secret "<regex>"   the same with echo off (bash's read -s), then a newline
                            (setup's promptpw and login(1) print one after a password)
    query ["<text>", "<regex>"]  write a terminal query, read the terminal's reply in raw
                            mode within 2 s (as measure_terminal does) and check it
    exec-bash "<PS1>"       replace the replayer by an interactive bash with that prompt
                            (a real shell, no rc files)
    sleep <seconds>

``#`` lines are comments.  On a wrong answer the replayer writes what it
expected and got to ``--report`` and exits with status 3; at the end of the
transcript it exits 0.  ``--log`` receives a copy of everything written (like
QEMU's serial log).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import termios
import time

EXIT_MISMATCH = 3


def parse(path: str) -> list[tuple[str, object, int]]:
    steps = []
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            op, _, arg = line.partition(" ")
            if op in ("out", "read", "read-secret", "exec-bash", "query"):
                steps.append((op, json.loads(arg), lineno))
            elif op == "sleep":
                steps.append((op, float(arg), lineno))
            else:
                raise SystemExit(f"{path}:{lineno}: unknown directive {op!r}")
    return steps


def read_line(secret: bool) -> str:
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd) if secret else None
    if secret:
        new = termios.tcgetattr(fd)
        new[3] &= ~termios.ECHO
        termios.tcsetattr(fd, termios.TCSANOW, new)
    try:
        line = sys.stdin.readline()
    finally:
        if old is not None:
            termios.tcsetattr(fd, termios.TCSANOW, old)
    return line.rstrip("\n")


def read_reply(expected: str, timeout: float = 2.0) -> str:
    """Read a terminal's reply in raw mode until it matches or ``timeout`` passes."""
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    raw = termios.tcgetattr(fd)
    raw[3] &= ~(termios.ECHO | termios.ICANON)
    raw[6][termios.VMIN], raw[6][termios.VTIME] = 0, 1
    termios.tcsetattr(fd, termios.TCSANOW, raw)
    got = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not re.fullmatch(expected, got.decode("latin-1")):
            got += os.read(fd, 64)
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, old)
    return got.decode("latin-1")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("transcript")
    ap.add_argument("--log")
    ap.add_argument("--report")
    args = ap.parse_args()
    log = open(args.log, "ab", buffering=0) if args.log else None

    def write(text: str) -> None:
        data = text.encode("utf-8")
        os.write(sys.stdout.fileno(), data)
        if log:
            log.write(data)

    def mismatch(lineno: int, expected: str, got: str) -> int:
        if args.report:
            with open(args.report, "w", encoding="utf-8") as r:
                json.dump({"line": lineno, "expected": expected, "got": got}, r)
        return EXIT_MISMATCH

    for op, arg, lineno in parse(args.transcript):
        if op == "out":
            write(arg)
        elif op == "sleep":
            time.sleep(arg)
        elif op == "query":
            query, expected = arg
            write(query)
            got = read_reply(expected)
            if not re.fullmatch(expected, got):
                return mismatch(lineno, expected, got)
        elif op == "exec-bash":
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PS1": arg, "TERM": "vt100",
                   "HOME": os.environ.get("HOME", "/")}
            os.execvpe("bash", ["bash", "--norc", "--noprofile", "-i"], env)
        else:
            got = read_line(secret=(op == "read-secret"))
            if op == "read-secret":
                write("\n")                     # what promptpw / login(1) print after a password
            if not re.fullmatch(arg, got):
                return mismatch(lineno, arg, got)
    time.sleep(0.3)                             # let the reader drain before the pty closes
    return 0


if __name__ == "__main__":
    sys.exit(main())
