"""SSH command transport (paramiko): persistent shell sessions, exec channels, file copy.

Commands run in *persistent sessions*: a session channel running ``/bin/sh``
that reads one framed line per command on its stdin, like the console shell
(:mod:`.shell`) but with stdout and stderr apart and byte exact::

    printf '%s\\n' B; printf '%s\\n' B >&2; command eval '<command>' </dev/null; __sl_rc=$?;
    printf '%s:%d:\\n' E "$__sl_rc"; printf '%s:%d:\\n' E "$__sl_rc" >&2

``B``/``E`` are markers new for every command; the output is what comes
between them on each stream, the status after ``E``.  A command's stdin is
``/dev/null`` (the session's stdin carries the command lines); ``cd``,
variables and functions persist within a session.  Up to ``max_sessions``
sessions are kept in a pool, so several threads run commands at once (more
callers wait for a free one; when the server refuses another channel the pool
stays at the size it allows).  A command that ends the shell (``exit 3``)
returns its status like an exec channel would, and the next command gets a
new session.

Stopping a command (timeout, KeyboardInterrupt): the session shell's
descendants (found with POSIX ``ps``) get SIGINT from a separate exec channel,
then SIGKILL; a shell that still does not end the frame (a loop in the shell
itself) is killed and its session dropped.  dropbear neither passes SSH
``signal`` requests on nor kills a command when its channel closes.

Channels we stop waiting for: a channel we give up on is closed only after its
``exec`` request went out (dropbear ends the whole connection on a request for a
channel it has already closed: ``Unknown channel``), and a channel open or
``exec`` the server did not answer in time marks the connection *stale*: paramiko
forgets an open it gave up on, so a late answer leaves a channel open on the
server for good.  A stale connection is replaced by a new one as soon as no
command is using it.

A new channel waits (``QUIET_WAIT`` at most) until the server has reaped every
process of ours that may end: commands of exec channels, session shells we
ended.  dropbear before 2024.86 closes a session channel whose ``exec`` request
it has not read yet whenever it handles a SIGCHLD (common-channel.c
``check_close``: ``sesscheckclose`` allows closing while ``pid == 0``; upstream
fix 71521d1b "Don't close channels when a PID hasn't started"): the exec then
fails ("Channel closed"), or the command is spawned on the closed channel and
its first output trips ``dropbear_assert(!channel->sent_close)`` in
``send_msg_channel_data``: the whole connection ends.  Readers wait on an event,
never ``select()`` on a channel (see :class:`_Wakeup`).

Exec channels, one new session per command (``run(clean=True)``,
``run_bytes(stdin=...)``, ``put``/``get``), are the fallback; files move over
them (``cat > path`` / ``cat path``), which works with any sshd, also dropbear
without SFTP.

Host keys: a lab's guest is new to us, so the first key seen is accepted and
pinned in a ``known_hosts`` file next to the client key (``<key>.known_hosts``,
one per lab).  Later connections must show the same key, else
:class:`TransportError` ("host key changed").  Delete that file when the lab
is re-created.
"""
from __future__ import annotations

import codecs
import io
import itertools
import logging
import os
import secrets
import shlex
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import paramiko

from ..errors import CommandTimeout, ConfigError, GuestError, TransportError
from .result import CommandResult, OnOutput, Stream, refuse_nul

log = logging.getLogger(__name__)
RECONNECT_TIMEOUT = 15.0        # a dropped connection is tried again this long within a command

COPY_CHUNK = 1 << 16
POLL = 0.5                  # longest wait between looks at the deadline and ``abort_check``
MAX_SESSIONS = 4            # persistent sessions (concurrent commands) per connection
RETRY_FIRST = 0.25          # first pause between connection attempts; doubles each time
RETRY_MAX = 4.0
KILL_TIMEOUT = 2.0          # for the exec channel that signals a command's processes
STOP_WAIT = 1.5             # how long a signalled command gets to end its frame
STOP_BUDGET = 6.0           # stopping a command takes at most this long
SESSION_ATTEMPTS = 3        # tries to open a persistent session
QUIET_WAIT = 3.0            # a new channel waits this long at most for ending processes


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


def known_hosts_file(key_path: str | os.PathLike) -> Path:
    """Where the host key of the guest that ``key_path`` logs in to is pinned."""
    key_path = Path(key_path)
    return key_path.with_name(key_path.name + ".known_hosts")


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
    """Run commands in the guest over SSH: persistent sessions, exec channels, file copies."""

    transport = "ssh"

    def __init__(self, host: str, port: int, user: str, key_path: str | os.PathLike, *,
                 connect_timeout: float = 10.0, abort_check: Callable[[], None] | None = None,
                 max_sessions: int = MAX_SESSIONS):
        """``abort_check`` is called every ``POLL`` s while a command runs; whatever it
        raises (e.g. the console's :class:`GuestPanic`) ends the command, channel closed.
        ``max_sessions``: persistent sessions kept at most (concurrent commands)."""
        self.host = host
        self.port = port
        self.user = user
        self.key_path = Path(key_path)
        self.known_hosts = known_hosts_file(self.key_path)
        self.connect_timeout = connect_timeout
        self.abort_check = abort_check
        self.max_sessions = max_sessions
        self._client: paramiko.SSHClient | None = None
        self._cond = threading.Condition()
        self._idle: list[_Session] = []
        self._sessions = 0                  # sessions open or being opened
        self._limit = max_sessions          # lowered when the server refuses more channels
        self._exec_only = False             # set when a persistent session cannot start
        self._busy = 0                      # commands and copies running (they hold the connection)
        self._stale: object | None = None   # a transport a channel request timed out on
        self._connecting = False
        self._ending: set[paramiko.Channel] = set()    # channels whose process may end soon
        self._start_lock = threading.Lock()

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
        delay = RETRY_FIRST
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
                if time.monotonic() + delay >= deadline:
                    raise TransportError(f"cannot connect over SSH to {self.user}@{self.host}:"
                                         f"{self.port} within {timeout:g} s ({attempts} attempts): "
                                         f"{type(err).__name__}: {err}") from None
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)       # back off: a restarting guest needs time
                continue
            client.get_transport().set_keepalive(15)
            self._drop_sessions()
            old, self._client = self._client, client
            if old is not None:
                old.close()
            return self

    def _enter(self, deadline: float) -> None:
        """Count a command in, first connecting again if the server dropped the connection
        (once per command, within ``RECONNECT_TIMEOUT``), or if it is stale and no other
        command uses it; a shell never connected, or closed, stays closed."""
        with self._cond:
            while True:
                dropped = not self.connected
                if dropped and self._client is None:
                    raise TransportError(f"not connected over SSH to {self.host}:{self.port}")
                stale = (not dropped and self._busy == 0 and self._stale is not None
                         and self._stale is self._client.get_transport())
                if not (dropped or stale):
                    self._busy += 1
                    return
                if not self._connecting:
                    self._connecting = True
                    break
                if time.monotonic() >= deadline:       # another thread is connecting
                    raise TransportError(f"SSH to {self.host}:{self.port}: no connection in time")
                self._cond.wait(min(POLL, max(0.0, deadline - time.monotonic())))
        try:
            if dropped:
                log.warning("%s: the SSH connection was dropped; connecting again", self)
            else:
                log.info("%s: a channel request timed out on this SSH connection (the server "
                         "may still answer it); using a new connection", self)
            self.connect(timeout=max(1.0, min(RECONNECT_TIMEOUT, deadline - time.monotonic())))
        finally:
            with self._cond:
                self._connecting = False
                self._cond.notify_all()
        with self._cond:
            self._busy += 1

    def _leave(self) -> None:
        with self._cond:
            self._busy -= 1
            self._cond.notify_all()

    def _mark_stale(self, transport: paramiko.Transport, what: str) -> None:
        if transport.is_active() and self._stale is not transport:
            log.info("%s: %s; a new connection is used once no command needs this one",
                     self, what)
            self._stale = transport

    def _may_end(self, chan: paramiko.Channel) -> None:
        """``chan``'s process (an exec command, a shell we ended) may end: until the server
        has reaped it, no new channel starts (module docstring)."""
        if not _reaped(chan):
            with self._cond:
                self._ending.add(chan)

    def _wait_quiet(self, deadline: float, own: paramiko.Channel | None = None) -> None:
        """Until every process that may end has been reaped by the server (``own`` aside),
        ``QUIET_WAIT`` at most: a SIGCHLD must not find a channel of ours still starting."""
        limit = min(deadline, time.monotonic() + QUIET_WAIT)
        with self._cond:
            while True:
                self._ending = {chan for chan in self._ending if not _reaped(chan)}
                if not self._ending - {own} or time.monotonic() >= limit:
                    return
                self._cond.wait(0.01)

    def close(self) -> None:
        self._drop_sessions()
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> SSHShell:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- persistent sessions ------------------------------------------------------------------
    def _drop_sessions(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
            self._sessions -= len(idle)
            self._limit = self.max_sessions
            self._cond.notify_all()
        for session in idle:
            session.close()

    def _acquire(self, command: str, deadline: float) -> _Session:
        """An idle session, a new one (up to the limit), or the first one freed before ``deadline``."""
        with self._cond:
            while True:
                while self._idle:
                    session = self._idle.pop()
                    if session.usable:
                        return session
                    self._sessions -= 1
                    session.close()
                if self._sessions < self._limit:
                    self._sessions += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _timeout(command, f"all {self._sessions} SSH sessions stayed busy")
                self._cond.wait(min(remaining, POLL))
        try:
            return self._open_session(deadline)
        except BaseException as err:
            with self._cond:
                self._sessions -= 1
                if getattr(err, "refused", False) and self._sessions > 0:
                    # the server allows no more channels: use the sessions there are
                    self._limit = self._sessions
                    log.info("%s: the SSH server refused another channel; using %d sessions",
                             self, self._sessions)
                self._cond.notify_all()
            if getattr(err, "refused", False) and self._sessions > 0:
                return self._acquire(command, deadline)
            raise

    def _open_session(self, deadline: float) -> _Session:
        """A new session; a channel the server closed at once (dropbear < 2024.86 can, see the
        module docstring) is tried again a few times before the deadline."""
        for attempt in range(1, SESSION_ATTEMPTS + 1):
            try:
                return _Session(self, deadline)
            except TransportError as err:
                if (getattr(err, "refused", False) or getattr(err, "startup", False)
                        or attempt == SESSION_ATTEMPTS or not self.connected
                        or time.monotonic() + 0.2 * attempt >= deadline):
                    raise
                time.sleep(0.2 * attempt)
        raise AssertionError("not reached")

    def _release(self, session: _Session) -> None:
        with self._cond:
            if session.usable:
                self._idle.append(session)
            else:
                self._sessions -= 1
                session.close()
            self._cond.notify()

    # --- commands -------------------------------------------------------------------------
    def run(self, command: str, timeout: float = 60.0, *, on_output: OnOutput | None = None,
            clean: bool = False) -> CommandResult:
        """Run ``command``; stdout and stderr come back separately (decoded as UTF-8).

        It runs in a persistent session (see the module docstring); ``clean=True``
        runs it in a new session of its own instead (a fresh login shell, stdin
        closed).  ``on_output(text, stream)`` receives output as it arrives
        (:data:`~smartos_lab.machine.result.OnOutput`).  On timeout the command
        is stopped and :class:`CommandTimeout` raised (``.output`` holds its stdout
        so far); a KeyboardInterrupt stops it too and is raised again; either way
        the next command works.
        """
        r = self._run_bytes(command, timeout, on_output=on_output, clean=clean)
        return CommandResult(command=command, exit_status=r.exit_status,
                             stdout=r.stdout.decode("utf-8", "replace"),
                             stderr=r.stderr.decode("utf-8", "replace"),
                             duration=r.duration, transport="ssh")

    def check(self, command: str, timeout: float = 60.0, *,
              on_output: OnOutput | None = None) -> CommandResult:
        return self.run(command, timeout, on_output=on_output).check()

    def run_bytes(self, command: str, timeout: float = 60.0, *, stdin: bytes | None = None,
                  clean: bool = False) -> BytesResult:
        """Run ``command``; return its raw stdout and stderr.  ``stdin`` is fed to it
        (in a session of its own: persistent sessions give commands no stdin)."""
        if stdin is not None:
            clean = True
        return self._run_bytes(command, timeout, stdin=stdin, clean=clean)

    def _run_bytes(self, command: str, timeout: float, *, on_output: OnOutput | None = None,
                   stdin: bytes | None = None, clean: bool = False) -> BytesResult:
        refuse_nul(command)
        if clean or self._exec_only:
            out = io.BytesIO()
            status, err, duration = self._exec(command, timeout, out,
                                               None if stdin is None else io.BytesIO(stdin),
                                               on_output=on_output)
            return BytesResult(command, status, out.getvalue(), err, duration)
        started = time.monotonic()
        deadline = started + timeout
        self._enter(deadline)
        try:
            try:
                try:
                    session = self._acquire(command, deadline)
                except TransportError:
                    if self.connected or self._client is None:
                        raise
                    self._leave()                       # dropped while the session opened
                    self._enter(deadline)
                    session = self._acquire(command, deadline)
            except TransportError as err:
                if not getattr(err, "startup", False):
                    raise
                session = None
            if session is not None:
                try:
                    status, out, err = session.run(command, deadline, on_output)
                finally:
                    self._release(session)
                return BytesResult(command, status, out, err, time.monotonic() - started)
        finally:
            self._leave()
        # the guest's /bin/sh does not run as a command session: one exec channel per command
        if not self._exec_only:
            self._exec_only = True
            log.warning("%s: the guest's /bin/sh did not start as a command session; commands "
                        "run in an exec channel each from now on", self)
        return self._run_bytes(command, max(0.1, deadline - time.monotonic()),
                               on_output=on_output, clean=True)

    def _channel(self, command: str, deadline: float, own: paramiko.Channel | None = None,
                 *, ends: bool = True) -> paramiko.Channel:
        """Open a session and start ``command`` in it, both bounded by ``deadline``;
        ``ends``: the command ends by itself (not a session shell, which ends when closed).

        A channel open or ``exec`` the server does not answer in time marks the
        connection stale (module docstring)."""
        transport = self._client.get_transport() if self._client else None
        if not (transport and transport.is_active()):
            raise TransportError(f"not connected over SSH to {self.host}:{self.port}")
        # one channel starts at a time, and only once the processes that may end have been
        # reaped: a SIGCHLD must not find one of our channels still starting (module docstring)
        if not self._start_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise _timeout(command, "no SSH channel could start in time (others were starting)")
        try:
            self._wait_quiet(deadline, own)
            try:
                chan = transport.open_session(
                    timeout=max(0.1, min(self.connect_timeout, deadline - time.monotonic())))
            except paramiko.ChannelException as err:
                exc = TransportError(f"SSH: the server refused a new channel for {command!r}: {err}")
                exc.refused = True
                raise exc from None
            except (OSError, EOFError, paramiko.SSHException) as err:
                # paramiko has forgotten this channel; if the server still opens it, it stays open
                self._mark_stale(transport, f"the SSH server did not open a channel in time ({err})")
                if time.monotonic() >= deadline:
                    raise _timeout(command, "no SSH session opened in time") from None
                raise TransportError(f"SSH: cannot start {command!r}: {err}") from None
            request = _ExecRequest(chan, command)
            try:
                request.wait(deadline, self.abort_check)
            except BaseException:
                if not request.answered:
                    self._mark_stale(transport, "the SSH server did not start a command in time")
                self._may_end(chan)
                raise
            if ends:
                self._may_end(chan)
            return chan
        finally:
            self._start_lock.release()

    def _exec(self, command: str, timeout: float, sink: BinaryIO,
              source: BinaryIO | None = None, *,
              on_output: OnOutput | None = None) -> tuple[int, bytes, float]:
        """Run ``command`` in a new session, streaming ``source`` to its stdin and its
        stdout to ``sink``.  Returns (exit status, stderr, seconds).

        The command runs under ``eval`` after its shell printed its PID on stderr
        (taken off again): on a timeout or KeyboardInterrupt its processes are killed.
        """
        started = time.monotonic()
        deadline = started + timeout
        self._enter(deadline)
        try:
            return self._exec_counted(command, started, deadline, sink, source, on_output)
        finally:
            self._leave()

    def _exec_counted(self, command: str, started: float, deadline: float, sink: BinaryIO,
                      source: BinaryIO | None, on_output: OnOutput | None) -> tuple[int, bytes, float]:
        chan = self._channel(f"printf '%s\\n' \"$$\" >&2; eval {shlex.quote(command)}", deadline)
        streams = _Streams(chan, command, sink, self.abort_check, on_output)
        try:
            if source is not None:
                streams.send_from(source, deadline)
                if not chan.closed:
                    chan.shutdown_write()
            streams.collect(deadline)
            status = chan.recv_exit_status()
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransportError(f"SSH connection lost while running {command!r}: {exc}") from None
        except (CommandTimeout, KeyboardInterrupt):
            if streams.pid:
                self.kill_tree(streams.pid, "KILL", include_root=True, own=chan)
            raise
        finally:
            chan.close()
        return status, bytes(streams.err), time.monotonic() - started

    def kill_tree(self, pid: int, signal: str, *, include_root: bool,
                  timeout: float = KILL_TIMEOUT, own: paramiko.Channel | None = None) -> bool:
        """Send ``signal`` to the descendants of guest process ``pid`` (and ``pid`` too with
        ``include_root``) over an exec channel of its own; False when that failed."""
        try:
            chan = self._channel(_kill_tree_command(pid, signal, include_root),
                                 time.monotonic() + timeout, own)
        except (TransportError, CommandTimeout):
            return False
        try:
            return chan.status_event.wait(timeout) and chan.recv_exit_status() == 0
        finally:
            chan.close()

    # --- files ------------------------------------------------------------------------------
    def put(self, local: str | os.PathLike, remote: str, mode: int | None = None,
            timeout: float = 300.0) -> None:
        """Copy a local file to ``remote`` in the guest (``mode`` e.g. 0o644).

        A missing, unreadable or non-regular local file raises :class:`ConfigError`;
        a guest that cannot write ``remote`` raises :class:`TransportError`.
        """
        check_local_file(local)
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


def check_local_file(local: str | os.PathLike) -> int:
    """The size of the regular file ``local``, or ConfigError saying why it cannot be copied."""
    try:
        st = os.stat(local)
    except FileNotFoundError:
        raise ConfigError(f"cannot copy {local} into the guest: no such local file") from None
    except OSError as err:
        raise ConfigError(f"cannot copy {local} into the guest: {err.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"cannot copy {local} into the guest: it is a directory "
                          "(put copies one file; pack a directory with tar first)")
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"cannot copy {local} into the guest: not a regular file")
    if not os.access(local, os.R_OK):
        raise ConfigError(f"cannot copy {local} into the guest: not readable")
    return st.st_size


def _kill_tree_command(pid: int, signal: str, include_root: bool) -> str:
    """A guest command sending ``signal`` to ``pid``'s descendants (found with POSIX ``ps``)."""
    walk = ("{p[NR]=$1; pp[NR]=$2} END {w[r]=1; do {c=0; for (i=1; i<=NR; i++) "
            "if ((pp[i] in w) && !(p[i] in w)) {w[p[i]]=1; c=1}} while (c); "
            "for (k in w) if (k != r || a) print k}")
    return (f"pids=$( (ps -e -o pid= -o ppid= 2>/dev/null || ps -o pid= -o ppid=) | "
            f"awk -v r={int(pid)} -v a={int(include_root)} {shlex.quote(walk)}); "
            f"[ -z \"$pids\" ] || kill -s {signal} $pids 2>/dev/null; true")


def _reaped(chan: paramiko.Channel) -> bool:
    """Whether the server is done with ``chan`` (it closed it, or the connection is gone)."""
    transport = chan.get_transport()
    if transport is None or not transport.is_active():
        return True
    return transport._channels.get(chan.get_id()) is None   # paramiko unlinks it on the close


class _Wakeup:
    """Wakes a reader when a channel's stdout or stderr gets data or ends, without an fd.

    It stands in for ``select()`` on the channel: the pipe paramiko makes for
    ``Channel.fileno()`` is closed by ``Channel.close()`` while paramiko's transport
    thread may still be writing to it (``BufferedPipe.feed`` sets it outside the
    channel's lock), and the EBADF it then gets ends the transport thread: the whole
    connection is lost ("Socket exception: Bad file descriptor").  The reader clears
    it before looking at the buffers, so data that comes after is never missed.
    """

    def __init__(self):
        self._event = threading.Event()

    @classmethod
    def of(cls, chan: paramiko.Channel) -> _Wakeup:
        wakeup = getattr(chan, "_sl_wakeup", None)
        if wakeup is None:
            wakeup = chan._sl_wakeup = cls()
            chan.in_buffer.set_event(wakeup)
            chan.in_stderr_buffer.set_event(wakeup)
        return wakeup

    def set(self) -> None:                      # called by paramiko's buffers
        self._event.set()

    def clear(self) -> None:                    # called by a buffer read empty: ignored, as
        pass                                    # the other buffer may still hold data

    def reset(self) -> None:
        """Before the reader looks at both buffers."""
        self._event.clear()

    def wait(self, timeout: float) -> None:
        self._event.wait(timeout)


class _ExecRequest:
    """``chan.exec_command(command)`` with a deadline.

    paramiko waits for the server's answer without a timeout, so the request runs
    in a thread of its own.  A caller that stops waiting must not close the channel
    itself: the close could overtake the request (paramiko checks the channel is open,
    then sends, without a lock), and dropbear, having closed and removed the channel,
    ends the whole connection on a request for it (common-channel.c,
    ``getchannel_msg``: "Unknown channel").  The thread closes it once its request
    went out.
    """

    def __init__(self, chan: paramiko.Channel, command: str):
        self.chan, self.command = chan, command
        self._lock = threading.Lock()
        self._done = self._abandoned = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._send, name="ssh-exec", daemon=True)
        self._thread.start()

    def _send(self) -> None:
        try:
            self.chan.exec_command(self.command)
        except BaseException as err:            # handed to the caller in wait()
            self._error = err
        with self._lock:
            self._done = True
            close = self._abandoned
        if close:
            self.chan.close()

    @property
    def answered(self) -> bool:
        with self._lock:
            return self._done

    def wait(self, deadline: float, abort_check: Callable[[], None] | None) -> None:
        """Until the server answered; CommandTimeout at ``deadline``; whatever ``abort_check``
        raises ends the wait too.  The channel is closed on any failure."""
        try:
            while True:
                self._thread.join(max(0.0, min(POLL, deadline - time.monotonic())))
                with self._lock:
                    done = self._done
                if done:
                    break
                if time.monotonic() >= deadline:
                    raise _timeout(self.command, "the SSH server did not start it in time")
                if abort_check is not None:
                    abort_check()
        except BaseException:
            with self._lock:
                self._abandoned = not self._done
                close_here = self._done
            if close_here:
                self.chan.close()
            raise
        if self._error is not None:
            self.chan.close()
            err = self._error
            if not isinstance(err, (OSError, EOFError, paramiko.SSHException)):
                raise err
            raise TransportError(f"SSH: cannot start {self.command!r}: {err}") from None


class _Frame:
    """One stream (stdout or stderr) of a framed command in a persistent session.

    Bytes before the begin marker are skipped; the body ends at the end marker
    ``<end>:<status>:\\n``.  The body is passed to ``on_output`` as it comes,
    holding back what may start the end marker.
    """

    def __init__(self, begin: bytes, end: bytes, stream: Stream, on_output: OnOutput | None):
        self.begin, self.end, self.stream, self.on_output = begin, end, stream, on_output
        self.pending = bytearray()
        self.body = bytearray()
        self.started = self.done = False
        self.status: int | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def feed(self, data: bytes) -> None:
        if self.done:
            return
        self.pending += data
        if not self.started:
            at = self.pending.find(self.begin)
            if at < 0:
                del self.pending[:-len(self.begin)]
                return
            del self.pending[:at + len(self.begin)]
            self.started = True
        at = self.pending.find(self.end)
        if at >= 0:
            self._take(at)
            stop = self.pending.find(b":\n", len(self.end))
            if stop >= 0:
                self.status = int(self.pending[len(self.end):stop])
                self.done = True
                self._pass_on(b"", final=True)
            return
        self._take(len(self.pending) - _prefix_held(self.pending, self.end))

    def _take(self, n: int) -> None:
        if n <= 0:
            return
        chunk = bytes(self.pending[:n])
        del self.pending[:n]
        self.body += chunk
        self._pass_on(chunk)

    def _pass_on(self, chunk: bytes, final: bool = False) -> None:
        if self.on_output is not None:
            text = self._decoder.decode(chunk, final)
            if text:
                self.on_output(text, self.stream)


def _prefix_held(data: bytearray, marker: bytes) -> int:
    """How many bytes at the end of ``data`` may start ``marker``."""
    for n in range(min(len(marker) - 1, len(data)), 0, -1):
        if data.endswith(marker[:n]):
            return n
    return 0


class _Session:
    """A session channel running ``/bin/sh`` that reads framed command lines (module docstring)."""

    def __init__(self, ssh: SSHShell, deadline: float):
        self.ssh = ssh
        self.nonce = secrets.token_hex(4)
        self._seq = itertools.count(1)
        self.chan = ssh._channel("exec /bin/sh", deadline, ends=False)
        self.pid = 0
        self.closed = False
        try:
            status, out, _ = self.run("echo $$", deadline, None)
            self.pid = int(out)
        except (ValueError, GuestError) as err:
            self.close()
            exc = TransportError(f"SSH: the guest's /bin/sh did not start as a command "
                                 f"session: {err}")
            exc.startup = True
            raise exc from None
        except BaseException:
            self.close()
            raise

    @property
    def usable(self) -> bool:
        return not self.closed and not self.chan.closed and self.chan.get_transport().is_active()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.chan.close()
            self.ssh._may_end(self.chan)        # the shell ends on end of input (or was killed)

    def run(self, command: str, deadline: float,
            on_output: OnOutput | None) -> tuple[int, bytes, bytes]:
        token = f"{self.nonce}_{next(self._seq)}".encode()
        begin, end = b"__sl_" + token + b"_b__\n", b"__sl_" + token + b"_e__:"
        frames = (_Frame(begin, end, "stdout", on_output), _Frame(begin, end, "stderr", on_output))
        b, e = shlex.quote(begin[:-1].decode()), shlex.quote(end[:-1].decode())
        line = (f"printf '%s\\n' {b}; printf '%s\\n' {b} >&2; command eval {shlex.quote(command)} "
                f"</dev/null; __sl_rc=$?; printf '%s:%d:\\n' {e} \"$__sl_rc\"; "
                f"printf '%s:%d:\\n' {e} \"$__sl_rc\" >&2\n")
        try:
            try:
                self._send(line.encode(), deadline, command)
                ended = self._collect(frames, deadline, command)
            except (OSError, EOFError, paramiko.SSHException) as exc:
                self.close()
                raise TransportError(f"SSH connection lost while running {command!r}: "
                                     f"{exc}") from None
        except (CommandTimeout, KeyboardInterrupt):
            try:
                self._stop(frames)
            except BaseException:               # e.g. a second interrupt: drop the session
                self.close()
                raise
            raise
        except BaseException:
            self.close()
            raise
        out, err = frames
        if ended:
            # the command ended the shell (``exit 3``): its status is the result's
            self.close()
            status = self.chan.recv_exit_status() if self.chan.exit_status_ready() else -1
            return status, bytes(out.body), bytes(err.body)
        return out.status, bytes(out.body), bytes(err.body)

    def _send(self, data: bytes, deadline: float, command: str) -> None:
        view = memoryview(data)
        while view:
            if time.monotonic() >= deadline:
                raise _timeout(command, "the SSH session took no input in time")
            if self.chan.send_ready():
                view = view[self.chan.send(bytes(view)):]
            else:
                time.sleep(0.002)

    def _collect(self, frames: tuple[_Frame, _Frame], deadline: float, command: str) -> bool:
        """Read until both frames are done (False) or the shell ended (True); time out at deadline."""
        chan, (out, err) = self.chan, frames
        wakeup = _Wakeup.of(chan)
        next_check = 0.0
        while True:
            wakeup.reset()
            while chan.recv_ready():
                out.feed(chan.recv(COPY_CHUNK))
            while chan.recv_stderr_ready():
                err.feed(chan.recv_stderr(COPY_CHUNK))
            if out.done and err.done:
                return False
            if chan.closed or chan.eof_received or chan.exit_status_ready():
                if not chan.recv_ready() and not chan.recv_stderr_ready():
                    chan.status_event.wait(min(1.0, max(0.0, deadline - time.monotonic())))
                    return True
                continue
            now = time.monotonic()
            if now >= deadline:
                partial = bytes(out.body[:4096]).decode("utf-8", "replace")
                raise _timeout(command, "command did not finish over SSH in time (stopped)",
                               partial, partial + bytes(err.body[-2000:]).decode("utf-8", "replace"))
            if self.ssh.abort_check is not None and now >= next_check:
                next_check = now + POLL
                self.ssh.abort_check()
            wakeup.wait(max(0.0, min(POLL, deadline - now)))

    def _stop(self, frames: tuple[_Frame, _Frame]) -> None:
        """Stop the running command: SIGINT its processes, then SIGKILL; a shell that still
        does not end the frame (a loop in the shell itself) is killed and the session dropped."""
        for frame in frames:
            frame.on_output = None
        if not self.pid:                        # still starting: nothing to signal yet
            self.close()
            return
        limit = time.monotonic() + STOP_BUDGET
        for signal in ("INT", "KILL"):
            if not self.ssh.kill_tree(self.pid, signal, include_root=False,
                                      timeout=max(0.5, min(KILL_TIMEOUT, limit - time.monotonic()))):
                log.warning("%s: the guest did not answer the %s signal for session shell %d; "
                            "the session is dropped and what it ran may still be running",
                            self.ssh, signal, self.pid)
                self.close()                    # the guest does not answer: just let go
                return
            try:
                if not self._collect(frames, min(limit, time.monotonic() + STOP_WAIT), ""):
                    return                      # the frame ended: the session goes on
                break                           # the shell itself ended
            except (CommandTimeout, OSError, EOFError, paramiko.SSHException):
                continue
            except GuestError:
                break
        if not self.closed and time.monotonic() < limit:
            self.ssh.kill_tree(self.pid, "KILL", include_root=True,
                               timeout=max(0.5, min(KILL_TIMEOUT, limit - time.monotonic())))
        self.close()


class _Streams:
    """Moves one exec channel's data: stdin from a file, stdout to a sink, stderr kept.

    The first line of stderr is the PID the command's shell printed (``pid``).
    """

    def __init__(self, chan: paramiko.Channel, command: str, sink: BinaryIO,
                 abort_check: Callable[[], None] | None = None,
                 on_output: OnOutput | None = None):
        self.chan, self.command, self.sink = chan, command, sink
        self.abort_check = abort_check
        self.on_output = on_output
        self.err = bytearray()
        self.partial = bytearray()          # the start of stdout, for a timeout report
        self.pid = 0
        self._pid_line: bytearray | None = bytearray()
        self._decoders = {name: codecs.getincrementaldecoder("utf-8")("replace")
                          for name in ("stdout", "stderr")}
        self._next_check = 0.0

    def drain(self) -> None:
        chan = self.chan
        while chan.recv_ready():
            data = chan.recv(COPY_CHUNK)
            self.sink.write(data)
            if len(self.partial) < 4096:
                self.partial += data[:4096]
            self._pass_on(data, "stdout")
        while chan.recv_stderr_ready():
            data = chan.recv_stderr(COPY_CHUNK)
            if self._pid_line is not None:
                self._pid_line += data
                line, newline, data = bytes(self._pid_line).partition(b"\n")
                if not newline:
                    continue
                self._pid_line = None
                self.pid = int(line) if line.strip().isdigit() else 0
            self.err += data
            self._pass_on(data, "stderr")

    def _pass_on(self, data: bytes, stream: Stream) -> None:
        if self.on_output is not None and data:
            text = self._decoders[stream].decode(data)
            if text:
                self.on_output(text, stream)

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
                    try:
                        view = view[chan.send(bytes(view)):]
                    except OSError:
                        if chan.eof_received or chan.exit_status_ready():
                            return          # it exited early and closed its side; status tells why
                        raise
                else:
                    self.drain()            # keep the remote side from blocking on its output
                    if chan.exit_status_ready():
                        return              # it exited early; its status tells why
                    time.sleep(0.002)

    def collect(self, deadline: float) -> None:
        """Read stdout/stderr until both end and the exit status is in, or time out."""
        chan = self.chan
        wakeup = _Wakeup.of(chan)
        while True:
            self.checkpoint(deadline)
            wakeup.reset()
            self.drain()
            if chan.eof_received and not chan.recv_ready() and not chan.recv_stderr_ready():
                if chan.status_event.wait(max(0.0, min(POLL, deadline - time.monotonic()))):
                    return
                continue
            wakeup.wait(max(0.0, min(POLL, deadline - time.monotonic())))

    def timeout(self) -> None:
        self.chan.close()
        partial = self.partial.decode("utf-8", "replace")
        raise _timeout(self.command, "command did not finish over SSH in time (channel closed)",
                       partial, partial + self.err.decode("utf-8", "replace"))


def _timeout(command: str, what: str, output: str = "", tail: str = "") -> CommandTimeout:
    exc = CommandTimeout(f"{what}: {command}", tail=tail[-2000:])
    exc.command, exc.output = command, output
    return exc
