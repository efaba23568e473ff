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
                            (setup's promptpw echoes one after each password)
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
            if op in ("out", "read", "read-secret"):
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

    for op, arg, lineno in parse(args.transcript):
        if op == "out":
            write(arg)
        elif op == "sleep":
            time.sleep(arg)
        else:
            got = read_line(secret=(op == "read-secret"))
            if op == "read-secret":
                write("\n")                     # what the script prints after readpw
            if not re.fullmatch(arg, got):
                if args.report:
                    with open(args.report, "w", encoding="utf-8") as r:
                        json.dump({"line": lineno, "expected": arg, "got": got}, r)
                return EXIT_MISMATCH
    time.sleep(0.3)                             # let the reader drain before the pty closes
    return 0


if __name__ == "__main__":
    sys.exit(main())
