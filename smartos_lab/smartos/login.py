"""Log in to SmartOS as root on the serial console, then (optionally) switch to SSH.

The console shows ttymon's ``<nodename> console login:`` prompt, then
``Password:``; root's shell prompt is ``[root@<host> ~]#``.  Root's bashrc on
the serial line runs ``measure_terminal`` (``ESC[18t ESC[0c``), which the
SmartOS console profile answers (:mod:`smartos_lab.smartos.profile`).
SmartOS's sshd allows root with a key in ``~/.ssh/authorized_keys``
(smartos-live ``src/etc/ssh/sshd_config``: ``PermitRootLogin yes``,
``AuthorizedKeysFile .ssh/authorized_keys``); ``/root`` lives in the boot
ramdisk, so the key is pushed again after every boot.  If SSH does not come
up (no network in the guest), the lab keeps working over the console.
The prompt comes from root's ``.bashrc`` (``[user@host dir]`` then ``#``).
"""
from __future__ import annotations

import functools
from pathlib import Path

from ..errors import TransportError
from ..machine.consoleprotocol import ConsoleProtocol
from ..machine.guest import GuestShell
from ..machine.shell import ConsoleShell, login
from ..steps import Steps

LOGIN_PROMPT = r"login: ?$"
PASSWORD_PROMPT = r"Password: ?$"
#: SmartOS root's prompt, or the prompt ConsoleShell.setup() installs (a lab re-attached).
ROOT_PROMPT = r"(?:\[root@[^\]\r\n]*\]|sl-[0-9a-f]+)# ?$"


def login_root(console: ConsoleProtocol, *, password: str, timeout: float,
               steps: Steps | None = None) -> ConsoleShell:
    """Log in as root on ``console`` and return a prepared :class:`ConsoleShell`
    (which logs in again the same way if a command ends its shell)."""
    relogin = functools.partial(login, console, user="root", password=password,
                                login_prompt=LOGIN_PROMPT, password_prompt=PASSWORD_PROMPT,
                                shell_prompt=ROOT_PROMPT, timeout=timeout)
    for note in relogin():
        if steps is not None:
            steps.info(note)
    shell = ConsoleShell(console, relogin=relogin)
    shell.setup(timeout=timeout)
    return shell


def open_guest_shell(machine, *, password: str, key_path: Path, timeout: float,
                     ssh: bool = True, steps: Steps | None = None) -> GuestShell:
    """Root shell on a booted SmartOS machine: console first, then SSH if it comes up.

    Returns a :class:`~smartos_lab.machine.guest.GuestShell` (SSH when
    ``ssh`` and the machine forwards a port named ``ssh``, else the console).
    """
    steps = steps or Steps("login")
    steps.step("login", "logging in as root on the serial console")
    guest = GuestShell(login_root(machine.console, password=password, timeout=timeout,
                                  steps=steps))
    port = machine.ports.get("ssh") if ssh else None
    if port:
        steps.step("ssh", f"enabling SSH (127.0.0.1:{port})")
        try:
            guest.enable_ssh("127.0.0.1", port, "root", Path(key_path), timeout=timeout)
        except TransportError as err:
            steps.info(f"SSH did not come up, using the serial console: {err}")
    return guest
