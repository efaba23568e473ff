"""GuestShell: one command runner over the serial console and, once enabled, SSH.

Commands go over SSH when it is connected (fast, separate stderr, binary
safe) and over the console otherwise (always there, even without a
network).  ``via="console"`` / ``via="ssh"`` force a transport.  A lost SSH
connection is reconnected before the next command; while that fails,
commands fall back to the console (said once, as a warning) and the
reconnect is retried with a growing pause.

Two "consoles" meet here: :attr:`GuestShell.console_shell` is the
:class:`ConsoleShell` (framed commands at a shell prompt), and
:attr:`GuestShell.serial_console` the raw serial console it types into.
:class:`BootResult` is what a lab strategy's boot ended with.
"""
from __future__ import annotations

import enum
import logging
import os
import shlex
import time
from pathlib import Path
from typing import Literal

from ..atomic import write_atomic
from ..errors import CommandFailed, ConfigError, TransportError
from .consoleprotocol import ConsoleProtocol
from .result import CommandResult, OnOutput
from .shell import ConsoleShell
from .ssh import SSHShell, check_local_file, generate_keypair, public_key_line

log = logging.getLogger(__name__)

Via = Literal["console", "ssh"]

#: Largest file moved over the serial console (it is slow: ~KB/s to tens of KB/s).
CONSOLE_COPY_LIMIT = 256 << 10
_PRINTF_BYTES = 768             # bytes per typed printf line (at most ~3 KB escaped: under the tty limit)
# bytes typed as themselves; no "-" (a leading one would be taken for an option)
_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _.,:/=+@")
RECONNECT_TIMEOUT = 5.0         # one reconnect try before a command falls back to the console
RETRY_PAUSE_FIRST = 5.0         # pause before trying a lost SSH again; doubles up to the max
RETRY_PAUSE_MAX = 60.0


class BootResult(enum.Enum):
    """How a boot ended: the guest waits at its login prompt, or QEMU ended on a guest reboot
    (``-no-reboot``; the lab launches the machine again)."""

    READY = "ready"
    REBOOT = "reboot"


class GuestShell:
    """A console shell plus an optional SSH shell, used through one ``run``."""

    def __init__(self, console_shell: ConsoleShell, ssh: SSHShell | None = None):
        self.console_shell = console_shell
        self.ssh = ssh
        self._reconnect_ssh = False         # before_restore closed SSH; after_restore reopens it
        self._retry_at = 0.0                # when a lost SSH connection is tried again
        self._retry_pause = RETRY_PAUSE_FIRST
        self._fell_back = False             # the fall-back to the console was announced

    @property
    def serial_console(self) -> ConsoleProtocol:
        """The raw serial console the console shell types into."""
        return self.console_shell.console

    @property
    def transport(self) -> str:
        """``"ssh"`` when SSH is connected, else ``"console"``."""
        return "ssh" if self.ssh is not None and self.ssh.connected else "console"

    def ssh_usable(self) -> bool:
        """SSH is connected, or was lost and reconnects now (tried again after a pause)."""
        ssh = self.ssh
        if ssh is None:
            return False
        if ssh.connected:
            return True
        now = time.monotonic()
        if now < self._retry_at:
            return False
        try:
            ssh.connect(timeout=RECONNECT_TIMEOUT)
        except TransportError as err:
            self._retry_at = time.monotonic() + self._retry_pause
            self._retry_pause = min(self._retry_pause * 2, RETRY_PAUSE_MAX)
            if not self._fell_back:
                self._fell_back = True
                log.warning("SSH to the guest is lost (%s); commands run on the serial console "
                            "until it reconnects (tried again with a growing pause)", err)
            return False
        if self._fell_back:
            log.warning("SSH to the guest reconnected; commands run over SSH again")
        self._fell_back = False
        self._retry_pause = RETRY_PAUSE_FIRST
        return True

    def _runner(self, via: Via | None):
        if via is None:
            via = "ssh" if self.ssh_usable() else "console"
        if via == "console":
            return self.console_shell
        if via == "ssh":
            if self.ssh is None:
                raise TransportError("SSH is not enabled (call enable_ssh first)")
            if not self.ssh_usable():
                raise TransportError(f"SSH to {self.ssh.host}:{self.ssh.port} is lost and did "
                                     "not reconnect")
            return self.ssh
        raise ConfigError(f"via must be 'console', 'ssh' or None, not {via!r}")

    def run(self, command: str, timeout: float = 60.0, *, via: Via | None = None,
            on_output: OnOutput | None = None) -> CommandResult:
        """Run ``command`` over SSH when connected, else the console (or as ``via`` says).

        ``on_output(text, stream)`` receives the output as the guest prints it
        (:data:`~smartos_lab.machine.result.OnOutput`); a KeyboardInterrupt
        stops the guest command and leaves the shell usable.
        """
        return self._runner(via).run(command, timeout, on_output=on_output)

    def check(self, command: str, timeout: float = 60.0, *, via: Via | None = None) -> CommandResult:
        """:meth:`run`, raising :class:`CommandFailed` on a non-zero exit."""
        return self.run(command, timeout, via=via).check()

    # --- files -----------------------------------------------------------------------------
    def put(self, local: str | os.PathLike, remote: str, mode: int | None = None, *,
            timeout: float = 300.0, via: Via | None = None) -> None:
        """Copy a local file into the guest: SSH, or ``printf`` octal escapes over the console.

        The console way needs only a POSIX ``printf`` in the guest (busybox,
        bash, illumos) and is slow: small files only (``CONSOLE_COPY_LIMIT``).
        Whatever the transport, a missing, unreadable or non-regular local
        file raises :class:`ConfigError` and a guest that cannot write
        ``remote`` :class:`TransportError`.
        """
        size = check_local_file(local)
        if self._runner(via) is self.ssh:
            self.ssh.put(local, remote, mode, timeout=timeout)
            return
        _check_console_size(size, local)
        data = Path(local).read_bytes()
        deadline = time.monotonic() + timeout
        target = shlex.quote(remote)
        try:
            self._console_step(f": > {target}" + (f" && chmod {mode:o} {target}"
                                                  if mode is not None else ""), deadline)
            for i in range(0, len(data), _PRINTF_BYTES):
                self._console_step(f"printf '{_printf_escape(data[i:i + _PRINTF_BYTES])}' "
                                   f">> {target}", deadline)
        except CommandFailed as err:
            raise TransportError(f"cannot write {remote} in the guest (exit "
                                 f"{err.result.exit_status}): {err.result.stdout.strip()}") from None

    def get(self, remote: str, local: str | os.PathLike, *, timeout: float = 300.0,
            via: Via | None = None) -> None:
        """Copy a guest file to the host: SSH, or a hex dump (``od``) over the console."""
        if self._runner(via) is self.ssh:
            self.ssh.get(remote, local, timeout=timeout)
            return
        deadline = time.monotonic() + timeout
        target = shlex.quote(remote)
        try:
            size = int(self._console_step(f"wc -c < {target}", deadline).stdout.split()[0])
        except CommandFailed as err:
            raise TransportError(f"cannot read {remote} in the guest (exit "
                                 f"{err.result.exit_status}): {err.result.stdout.strip()}") from None
        _check_console_size(size, remote)
        dump = self._console_step(f"od -An -v -tx1 {target}", deadline).stdout
        data = bytes.fromhex("".join(dump.split()))
        if len(data) != size:
            raise TransportError(f"copying {remote} over the console: got {len(data)} of {size} bytes")
        write_atomic(local, data)         # like SSHShell.get: the old file or the whole new one

    def _console_step(self, command: str, deadline: float) -> CommandResult:
        return self.console_shell.check(command, timeout=max(1.0, deadline - time.monotonic()))

    # --- SSH -------------------------------------------------------------------------------
    def enable_ssh(self, host: str = "127.0.0.1", port: int | None = None, user: str = "root",
                   key_path: str | os.PathLike | None = None, *,
                   authorized_keys_path: str = "/root/.ssh/authorized_keys",
                   timeout: float = 60.0) -> SSHShell:
        """Authorize our key over the console and connect over SSH.

        SSH commands watch the console: a crash seen there raises its error
        (e.g. :class:`GuestPanic`) instead of waiting out the command's timeout.

        Creates the key pair at ``key_path`` if it does not exist, appends the
        public key to ``authorized_keys_path`` in the guest unless it is there
        (directory 0700, file 0600), then connects (retrying until ``timeout``).
        """
        if port is None or key_path is None:
            raise ConfigError("enable_ssh needs port and key_path")
        key_path = Path(key_path)
        pub = public_key_line(key_path) if key_path.exists() else generate_keypair(key_path)
        keys = shlex.quote(authorized_keys_path)
        folder = shlex.quote(os.path.dirname(authorized_keys_path) or ".")
        self.console_shell.check(
            f"umask 077; mkdir -p {folder} && chmod 700 {folder} && touch {keys} && "
            f"chmod 600 {keys} && k={shlex.quote(pub)} && "
            f"{{ grep -qxF \"$k\" {keys} || printf '%s\\n' \"$k\" >> {keys}; }}", timeout=timeout)
        if self.ssh is not None:
            self.ssh.close()
        # a crash seen on the console (panic, kmdb, halt) ends a waiting SSH command at once
        ssh = SSHShell(host, port, user, key_path, abort_check=self.serial_console.check_alive)
        ssh.connect(timeout=timeout)
        self.ssh = ssh
        return ssh

    # --- checkpoints ----------------------------------------------------------------------
    def before_restore(self) -> None:
        """Let go of SSH before the guest returns to a checkpoint (its TCP state jumps back),
        and forget a crash seen on the console (a panic or kmdb stop is what restore undoes)."""
        self.serial_console.clear_crash()
        self._reconnect_ssh = self.ssh is not None and self.ssh.connected
        if self._reconnect_ssh:
            self.ssh.close()

    def after_restore(self, timeout: float = 60.0) -> None:
        """Make both transports work again after a restore: resynchronise the console shell,
        then reconnect SSH if :meth:`before_restore` closed it."""
        reconnect, self._reconnect_ssh = self._reconnect_ssh, False
        try:
            self.console_shell.run("true", timeout=timeout)
        finally:
            if reconnect and self.ssh is not None:
                self.ssh.connect(timeout=timeout)

    def close(self) -> None:
        """Close SSH (the console belongs to the machine)."""
        if self.ssh is not None:
            self.ssh.close()


def _check_console_size(size: int, name) -> None:
    if size > CONSOLE_COPY_LIMIT:
        raise TransportError(f"{name} is {size} bytes: too big for the serial console "
                             f"(limit {CONSOLE_COPY_LIMIT}); enable SSH first")


def _printf_escape(data: bytes) -> str:
    """``data`` as a printf format inside single quotes: plain characters as
    themselves, every other byte as a 3-digit octal escape."""
    return "".join(chr(b) if b in _PLAIN else f"\\{b:03o}" for b in data)
