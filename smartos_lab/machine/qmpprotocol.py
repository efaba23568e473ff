"""QMP's wire protocol: one synchronous connection with a reader thread.

The messages are qemu.qmp's: :class:`qemu.qmp.Message` encodes and decodes
them and :mod:`qemu.qmp.models` checks the greeting and error replies.  The
transport is ours, because a synchronous facade over qemu.qmp's asyncio
client paid a private event loop, two queue hand-offs and a thread hand-off
for every command (2.2-2.5x a bare socket round trip; see benchmarks/README.md).
Here a caller writes its command itself and one reader thread routes each
reply to its waiting caller by ``id``, and each event to a callback.

Every wait has a deadline: a silent server gives :class:`QMPTimeout`, a lost
connection fails every waiting caller at once with :class:`QMPError`.
"""
from __future__ import annotations

import logging
import select
import socket
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from qemu.qmp import Message
from qemu.qmp.error import ProtocolError
from qemu.qmp.models import ErrorResponse, Greeting

from ..errors import QMPCommandError, QMPError, QMPTimeout

log = logging.getLogger(__name__)


@dataclass
class _Waiter:
    """One command waiting for its reply."""

    done: threading.Event = field(default_factory=threading.Event)
    reply: Message | None = None


class QMPConnection:
    """A negotiated QMP session on a UNIX socket.

    ``on_event`` is called from the reader thread with each event, in the
    order QEMU sent it relative to replies; ``on_lost`` once, when the
    connection ends for any reason other than :meth:`close`.
    """

    def __init__(self, path: str | Path, on_event: Callable[[Message], None],
                 on_lost: Callable[[], None] | None = None):
        self.path = Path(path)
        self.greeting: Greeting | None = None
        self._on_event = on_event
        self._on_lost = on_lost
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._waiters: dict[str, _Waiter] = {}
        self._next_id = 0
        self._lost: str | None = None            # why the connection ended, once it has
        self._reader: threading.Thread | None = None

    # --- connection -----------------------------------------------------------------
    def connect(self, timeout: float) -> None:
        """Connect, read the greeting and leave capabilities negotiation (QMPTimeout/QMPError)."""
        deadline = time.monotonic() + timeout
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stage = "greeting"
        try:
            sock.settimeout(timeout)
            sock.connect(str(self.path))
            rfile = sock.makefile("rb")
            self.greeting = Greeting(self._read_handshake(sock, rfile, deadline, stage))
            stage = "answer to qmp_capabilities"
            sock.sendall(bytes(Message({"execute": "qmp_capabilities"})) + b"\n")
            reply = self._read_handshake(sock, rfile, deadline, stage)
            if "error" in reply:
                raise QMPError(f"QMP capabilities negotiation refused: {reply['error']}")
        except TimeoutError:
            sock.close()
            hint = " (another client may hold it)" if stage == "greeting" else ""
            raise QMPTimeout(f"connect to QMP socket {self.path}: no {stage} within "
                             f"{timeout:g} s{hint}") from None
        except (OSError, EOFError, ProtocolError, KeyError, TypeError, ValueError) as exc:
            sock.close()
            raise QMPError(f"connect to QMP socket {self.path}: {type(exc).__name__}: {exc}"
                           ) from exc
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)
        self._sock, self._lost = sock, None
        self._reader = threading.Thread(target=_read_replies, args=(weakref.ref(self), rfile),
                                        name=f"qmp:{self.path.parent.name}", daemon=True)
        self._reader.start()

    def _read_handshake(self, sock: socket.socket, rfile: BinaryIO, deadline: float,
                        what: str) -> Message:
        """The next non-event message during the handshake (events are passed on)."""
        while True:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            line = rfile.readline()
            if not line:
                raise EOFError(f"QMP socket closed before the {what}")
            msg = Message(line, eager=True)
            if "event" in msg:
                self._on_event(msg)
            else:
                return msg

    @property
    def connected(self) -> bool:
        return self._sock is not None and self._lost is None

    def close(self) -> None:
        """Close the socket and let the reader thread end (idempotent)."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        self._fail_all("QMP connection closed")
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(2.0)

    def __del__(self) -> None:
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)      # wakes the reader thread, which then ends
            except OSError:
                pass

    # --- commands -------------------------------------------------------------------
    def execute(self, cmd: str, args: dict[str, Any] | None, timeout: float, what: str) -> Any:
        """Send one command and return its ``return`` value."""
        msg: dict[str, Any] = {"execute": cmd}
        if args:
            msg["arguments"] = args
        deadline = time.monotonic() + timeout
        waiter = _Waiter()
        with self._send_lock:
            self._next_id += 1
            msg["id"] = msg_id = f"sl{self._next_id}"
            data = bytes(Message(msg)) + b"\n"    # one per line, for line-based peers
            # registered before the check: a connection lost after the check still wakes it
            self._waiters[msg_id] = waiter
            try:
                self._check_open(what)
                self._send(data, deadline, what, timeout)
            except BaseException:
                self._waiters.pop(msg_id, None)
                raise
        if not waiter.done.wait(max(deadline - time.monotonic(), 0)):
            self._waiters.pop(msg_id, None)
            raise QMPTimeout(f"{what}: no answer within {timeout:g} s ({self.path})")
        reply = waiter.reply
        if reply is None:
            raise self._lost_error(what)
        if "error" in reply:
            try:
                error = ErrorResponse(reply).error
            except (KeyError, TypeError) as exc:
                raise QMPError(f"{what}: malformed error reply {dict(reply)}: {exc}") from exc
            raise QMPCommandError(f"{what} failed: {error.class_}: {error.desc}",
                                  error.class_, error.desc)
        if "return" not in reply:
            raise QMPError(f"{what}: reply without 'return': {dict(reply)}")
        return reply["return"]

    def _check_open(self, what: str) -> None:
        if self._sock is None:
            raise QMPError(f"{what}: QMP not connected ({self.path}); call connect() first")
        if self._lost is not None:
            raise self._lost_error(what)

    def _lost_error(self, what: str) -> QMPError:
        return QMPError(f"{what}: {self._lost} (is QEMU still running? socket {self.path})")

    def _send(self, data: bytes, deadline: float, what: str, timeout: float) -> None:
        """Write all of ``data`` by the deadline (a QEMU that stopped reading cannot block us)."""
        sock = self._sock
        assert sock is not None
        sent = 0
        try:
            while sent < len(data):
                try:
                    sent += sock.send(data[sent:], socket.MSG_DONTWAIT)
                    continue
                except BlockingIOError:
                    pass
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([], [sock], [], left)[1]:
                    if sent:      # half a command on the wire: the stream cannot be used again
                        self._lose(f"QMP connection dropped after a write timed out ({what})")
                    raise QMPTimeout(f"{what}: QEMU did not read the command within "
                                     f"{timeout:g} s ({self.path})")
        except OSError as exc:
            self._lose(f"QMP connection lost: {type(exc).__name__}: {exc}")
            raise self._lost_error(what) from exc

    # --- the reader thread's side ---------------------------------------------------
    def _dispatch(self, msg: Message) -> None:
        if "event" in msg:
            self._on_event(msg)
            return
        if "id" not in msg and "error" in msg:
            # QEMU could not parse what it read (qmp-spec "Error"): no reply can be trusted now
            self._lose(f"QEMU could not parse a command: {dict(msg)}")
            return
        waiter = self._waiters.pop(msg.get("id"), None)   # type: ignore[arg-type]
        if waiter is not None:
            waiter.reply = msg
            waiter.done.set()
        else:                         # a reply that came after its caller timed out
            log.debug("QMP %s: dropped a reply nobody waits for: %.200s", self.path, msg)

    def _lose(self, why: str) -> None:
        first = self._lost is None
        self._fail_all(why)
        if first and self._on_lost is not None:
            self._on_lost()

    def _fail_all(self, why: str) -> None:
        if self._lost is None:
            self._lost = why
        while self._waiters:
            _, waiter = self._waiters.popitem()
            waiter.done.set()


def _read_replies(ref: weakref.ref[QMPConnection], rfile: BinaryIO) -> None:
    """Reader thread: route every message until EOF (holds the connection only weakly,
    so an abandoned connection can be collected; its ``__del__`` closes the socket)."""
    why = "QMP connection closed by QEMU"
    try:
        for line in rfile:
            conn = ref()
            if conn is None:
                return
            try:
                conn._dispatch(Message(line, eager=True))
            except ProtocolError as exc:
                why = f"QMP protocol error: {exc}"
                break
            finally:
                del conn
    except (OSError, ValueError) as exc:
        why = f"QMP connection lost: {type(exc).__name__}: {exc}"
    finally:
        rfile.close()             # the socket's file descriptor is released with its last user
    conn = ref()
    if conn is not None:
        conn._lose(why)
