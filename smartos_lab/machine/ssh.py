"""SSH command transport (paramiko): commands with separate stdout/stderr, file copy.

Files move over plain exec channels (``cat > path`` / ``cat path``), which
works with any sshd, also dropbear without SFTP.

Host keys: a lab's guest is new to us, so the first key seen is accepted and
pinned in a ``known_hosts`` file next to the client key (``<key>.known_hosts``,
one per lab).  Later connections must show the same key, else
:class:`TransportError` ("host key changed").  Delete that file when the lab
is re-created.
"""
from __future__ import annotations

import io
import os
import select
import shlex
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import paramiko

from ..errors import CommandTimeout, TransportError
from .result import CommandResult

COPY_CHUNK = 1 << 16
POLL = 0.5                  # longest wait between looks at the deadline and ``abort_check``


def generate_keypair(private_path: str | os.PathLike) -> str:
    """Write a new ECDSA P-256 private key (mode 0600) and ``<path>.pub``; return the public key line."""
    path = Path(private_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = paramiko.ECDSAKey.generate(bits=256)
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        key.write_private_key(f)
    line = f"{key.get_name()} {key.get_base64()} smartos-lab"
    path.with_name(path.name + ".pub").write_text(line + "\n")
    return line


def public_key_line(private_path: str | os.PathLike) -> str:
    """The OpenSSH public key line of an existing private key."""
    key = _load_key(Path(private_path))
    return f"{key.get_name()} {key.get_base64()} smartos-lab"


def _load_key(path: Path) -> paramiko.PKey:
    for cls in (paramiko.ECDSAKey, paramiko.Ed25519Key, paramiko.RSAKey):
        try:
            return cls.from_private_key_file(str(path))
        except paramiko.SSHException:
            continue
        except OSError as err:
            raise TransportError(f"cannot read SSH key {path}: {err}") from None
    raise TransportError(f"{path} is not a private key paramiko can read")


class _PinFirstKey(paramiko.MissingHostKeyPolicy):
    """Accept an unknown host key and save it: trust on first use, per lab."""

    def __init__(self, known_hosts: Path):
        self.known_hosts = known_hosts

    def missing_host_key(self, client, hostname, key):
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        client.save_host_keys(str(self.known_hosts))


@dataclass(frozen=True)
class BytesResult:
    """A command's raw output over SSH (see :meth:`SSHShell.run_bytes`)."""

    command: str
    exit_status: int
    stdout: bytes
    stderr: bytes
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


class SSHShell:
    """Run commands in the guest over SSH."""

    transport = "ssh"

    def __init__(self, host: str, port: int, user: str, key_path: str | os.PathLike, *,
                 connect_timeout: float = 10.0, abort_check: Callable[[], None] | None = None):
        """``abort_check`` is called every ``POLL`` s while a command runs; whatever it
        raises (e.g. the console's :class:`GuestPanic`) ends the command, channel closed."""
        self.host = host
        self.port = port
        self.user = user
        self.key_path = Path(key_path)
        self.known_hosts = self.key_path.with_name(self.key_path.name + ".known_hosts")
        self.connect_timeout = connect_timeout
        self.abort_check = abort_check
        self._client: paramiko.SSHClient | None = None

    def __repr__(self) -> str:
        return f"<SSHShell {self.user}@{self.host}:{self.port}>"

    @property
    def connected(self) -> bool:
        t = self._client.get_transport() if self._client else None
        return bool(t and t.is_active())

    def connect(self, timeout: float = 60.0) -> SSHShell:
        """Connect, retrying until the server lets us in or ``timeout`` passes (TransportError)."""
        key = _load_key(self.key_path)
        deadline = time.monotonic() + timeout
        attempts = 0
        while True:
            attempts += 1
            client = paramiko.SSHClient()
            if self.known_hosts.exists():
                client.load_host_keys(str(self.known_hosts))
            client.set_missing_host_key_policy(_PinFirstKey(self.known_hosts))
            each = max(1.0, min(self.connect_timeout, deadline - time.monotonic()))
            try:
                client.connect(self.host, self.port, username=self.user, pkey=key, timeout=each,
                               banner_timeout=each, auth_timeout=each, allow_agent=False,
                               look_for_keys=False)
            except paramiko.BadHostKeyException as err:
                client.close()
                raise TransportError(
                    f"host key of {self.host}:{self.port} changed (pinned in {self.known_hosts}; "
                    f"delete it if the lab was re-created): {err}") from None
            except (OSError, EOFError, paramiko.SSHException) as err:
                client.close()
                if time.monotonic() + 0.5 >= deadline:
                    raise TransportError(f"cannot connect over SSH to {self.user}@{self.host}:"
                                         f"{self.port} within {timeout:g} s ({attempts} attempts): "
                                         f"{type(err).__name__}: {err}") from None
                time.sleep(0.5)
                continue
            client.get_transport().set_keepalive(15)
            self._client = client
            return self

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> SSHShell:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- commands -------------------------------------------------------------------------
    def _channel(self, command: str, deadline: float) -> paramiko.Channel:
        """Open a session and start ``command`` in it, both bounded by ``deadline``."""
        if not self.connected:
            raise TransportError(f"not connected over SSH to {self.host}:{self.port}")
        try:
            chan = self._client.get_transport().open_session(
                timeout=max(0.1, min(self.connect_timeout, deadline - time.monotonic())))
        except (OSError, EOFError, paramiko.SSHException) as err:
            if time.monotonic() >= deadline:
                raise _timeout(command, "no SSH session opened in time") from None
            raise TransportError(f"SSH: cannot start {command!r}: {err}") from None
        # exec_command waits for the server's answer without a timeout: wait here instead
        failure: list[BaseException] = []

        def start() -> None:
            try:
                chan.exec_command(command)
            except BaseException as err:        # handed to the caller below
                failure.append(err)
        worker = threading.Thread(target=start, name="ssh-exec", daemon=True)
        worker.start()
        try:
            while True:
                worker.join(max(0.0, min(POLL, deadline - time.monotonic())))
                if not worker.is_alive():
                    break
                if time.monotonic() >= deadline:
                    raise _timeout(command, "the SSH server did not start it in time")
                if self.abort_check is not None:
                    self.abort_check()
        except BaseException:
            chan.close()
            raise
        if failure:
            chan.close()
            err = failure[0]
            if not isinstance(err, (OSError, EOFError, paramiko.SSHException)):
                raise err
            raise TransportError(f"SSH: cannot start {command!r}: {err}") from None
        return chan

    def run_bytes(self, command: str, timeout: float = 60.0, *, stdin: bytes | None = None) -> BytesResult:
        """Run ``command``; return its raw stdout and stderr.  ``stdin`` is fed to it."""
        out = io.BytesIO()
        status, err, duration = self._exec(command, timeout, out,
                                           None if stdin is None else io.BytesIO(stdin))
        return BytesResult(command, status, out.getvalue(), err, duration)

    def _exec(self, command: str, timeout: float, sink: BinaryIO,
              source: BinaryIO | None = None) -> tuple[int, bytes, float]:
        """Run ``command`` streaming ``source`` to its stdin and its stdout to ``sink``.

        Returns (exit status, stderr, seconds).
        """
        started = time.monotonic()
        deadline = started + timeout
        chan = self._channel(command, deadline)
        streams = _Streams(chan, command, sink, self.abort_check)
        try:
            if source is not None:
                streams.send_from(source, deadline)
                chan.shutdown_write()
            streams.collect(deadline)
            status = chan.recv_exit_status()
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransportError(f"SSH connection lost while running {command!r}: {exc}") from None
        finally:
            chan.close()
        return status, bytes(streams.err), time.monotonic() - started

    def run(self, command: str, timeout: float = 60.0) -> CommandResult:
        """Run ``command``; stdout and stderr come back separately (decoded as UTF-8)."""
        r = self.run_bytes(command, timeout)
        return CommandResult(command=command, exit_status=r.exit_status,
                             stdout=r.stdout.decode("utf-8", "replace"),
                             stderr=r.stderr.decode("utf-8", "replace"),
                             duration=r.duration, transport="ssh")

    def check(self, command: str, timeout: float = 60.0) -> CommandResult:
        return self.run(command, timeout).check()

    # --- files ------------------------------------------------------------------------------
    def put(self, local: str | os.PathLike, remote: str, mode: int | None = None,
            timeout: float = 300.0) -> None:
        """Copy a local file to ``remote`` in the guest (``mode`` e.g. 0o644)."""
        command = f"cat > {shlex.quote(remote)}"
        if mode is not None:
            command += f" && chmod {mode:o} {shlex.quote(remote)}"
        with open(local, "rb") as source:
            status, err, _ = self._exec(command, timeout, io.BytesIO(), source)
        if status != 0:
            raise TransportError(f"cannot write {remote} in the guest (exit {status}): "
                                 f"{err.decode('utf-8', 'replace').strip()}")

    def get(self, remote: str, local: str | os.PathLike, timeout: float = 300.0) -> None:
        """Copy ``remote`` from the guest to a local file.

        The data goes to a temporary file beside ``local`` that replaces it
        only on success: a failed copy leaves an existing ``local`` as it was.
        """
        local = Path(local)
        fd, part = tempfile.mkstemp(prefix=f".{local.name}.", suffix=".part", dir=local.parent)
        try:
            with os.fdopen(fd, "wb") as sink:
                status, err, _ = self._exec(f"cat {shlex.quote(remote)}", timeout, sink)
            if status != 0:
                raise TransportError(f"cannot read {remote} in the guest (exit {status}): "
                                     f"{err.decode('utf-8', 'replace').strip()}")
            os.chmod(part, local.stat().st_mode & 0o7777 if local.exists() else 0o644)
            os.replace(part, local)
        except BaseException:
            try:
                os.unlink(part)
            except FileNotFoundError:
                pass
            raise


class _Streams:
    """Moves one exec channel's data: stdin from a file, stdout to a sink, stderr kept."""

    def __init__(self, chan: paramiko.Channel, command: str, sink: BinaryIO,
                 abort_check: Callable[[], None] | None = None):
        self.chan, self.command, self.sink = chan, command, sink
        self.abort_check = abort_check
        self.err = bytearray()
        self.partial = bytearray()          # the start of stdout, for a timeout report
        self._next_check = 0.0

    def drain(self) -> None:
        chan = self.chan
        while chan.recv_ready():
            data = chan.recv(COPY_CHUNK)
            self.sink.write(data)
            if len(self.partial) < 4096:
                self.partial += data[:4096]
        while chan.recv_stderr_ready():
            self.err += chan.recv_stderr(COPY_CHUNK)

    def checkpoint(self, deadline: float) -> None:
        """Time out at ``deadline``; run ``abort_check`` (at most every ``POLL`` s)."""
        now = time.monotonic()
        if now >= deadline:
            self.timeout()
        if self.abort_check is not None and now >= self._next_check:
            self._next_check = now + POLL
            try:
                self.abort_check()
            except BaseException:
                self.chan.close()
                raise

    def send_from(self, source: BinaryIO, deadline: float) -> None:
        chan = self.chan
        while True:
            block = source.read(COPY_CHUNK)
            if not block:
                return
            view = memoryview(block)
            while view:
                self.checkpoint(deadline)
                if chan.send_ready():
                    view = view[chan.send(bytes(view)):]
                else:
                    self.drain()            # keep the remote side from blocking on its output
                    if chan.exit_status_ready():
                        return              # it exited early; its status tells why
                    time.sleep(0.002)

    def collect(self, deadline: float) -> None:
        """Read stdout/stderr until both end and the exit status is in, or time out."""
        chan = self.chan
        while True:
            self.checkpoint(deadline)
            self.drain()
            if chan.eof_received and not chan.recv_ready() and not chan.recv_stderr_ready():
                if chan.status_event.wait(max(0.0, min(POLL, deadline - time.monotonic()))):
                    return
                continue
            select.select([chan], [], [], max(0.0, min(POLL, deadline - time.monotonic())))

    def timeout(self) -> None:
        self.chan.close()
        partial = self.partial.decode("utf-8", "replace")
        raise _timeout(self.command, "command did not finish over SSH in time (channel closed)",
                       partial, partial + self.err.decode("utf-8", "replace"))


def _timeout(command: str, what: str, output: str = "", tail: str = "") -> CommandTimeout:
    exc = CommandTimeout(f"{what}: {command}", tail=tail[-2000:])
    exc.command, exc.output = command, output
    return exc
