"""An interactive serial console in the terminal (``smartos-lab console NAME``).

QEMU's console socket serves one client at a time, so a console held by
another process (a notebook's lab) is reported instead of silently waiting.
Ctrl-] leaves; the lab keeps running.
"""
from __future__ import annotations

import os
import select
import socket
import sys
import termios
import tty

from ..errors import LabError
from .qemu import QemuMachine

ESCAPE = b"\x1d"            # Ctrl-]


def interactive_console(name: str) -> int:
    machine = QemuMachine.attach(name, tool=True)
    try:
        if machine.console_busy():
            raise LabError(f"the serial console of lab {name!r} is in use by another process "
                           "(a notebook holding the lab?): call lab.detach() there, or use "
                           f"'smartos-lab ssh {name}'")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(machine.run_dir.console_socket))
    finally:
        machine.detach()
    print(f"[connected to the serial console of {name}; Ctrl-] leaves]\r", file=sys.stderr)
    try:
        _pump(sock, sys.stdin.fileno(), sys.stdout.fileno())
    finally:
        sock.close()
    print(f"\r\n[left the console of {name}; the lab keeps running]", file=sys.stderr)
    return 0


def _pump(sock: socket.socket, fd_in: int, fd_out: int) -> None:
    saved = termios.tcgetattr(fd_in) if os.isatty(fd_in) else None
    if saved is not None:
        tty.setraw(fd_in)
    try:
        while True:
            ready, _, _ = select.select([sock, fd_in], [], [])
            if sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                os.write(fd_out, data)
            if fd_in in ready:
                data = os.read(fd_in, 1024)
                if not data or ESCAPE in data:
                    data = data.split(ESCAPE, 1)[0]
                    if data:
                        sock.sendall(data)
                    return
                sock.sendall(data)
    finally:
        if saved is not None:
            termios.tcsetattr(fd_in, termios.TCSADRAIN, saved)
