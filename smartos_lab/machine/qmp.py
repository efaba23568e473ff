"""QMP: qemu.qmp's asyncio ``QMPClient`` behind a synchronous facade.

The client runs on a private event loop in a daemon thread, so the facade
works the same in plain scripts and inside Jupyter (where the calling thread
already runs a loop and ``run_until_complete`` would fail).  Every call has a
timeout (:class:`QMPTimeout`); a dead QEMU or a closed socket gives
:class:`QMPError`, never a hang.  (The library's own ERROR log lines for our
client are silenced: the same failures reach the caller as those errors.)

A QEMU QMP socket serves one client at a time; a second client connects but
gets no greeting (:class:`QMPTimeout`).  See ``RunDir.qmp_sockets``.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from qemu.qmp import EventListener, ExecuteError, QMPClient, Runstate
from qemu.qmp import QMPError as _LibQMPError

from ..errors import QMPError, QMPTimeout

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLIENT_NAME = "smartos-lab"
# Failures reach the caller as typed errors; the library would also log them at ERROR.
logging.getLogger(f"qemu.qmp.protocol.{CLIENT_NAME}").setLevel(logging.CRITICAL)
_TIMEOUTS = (TimeoutError, asyncio.TimeoutError, concurrent.futures.TimeoutError)

# Characters typed by send_keys(str): char -> (qcode, needs shift)
_KEYS: dict[str, tuple[str, bool]] = {
    " ": ("spc", False), "\n": ("ret", False), "\t": ("tab", False), "\b": ("backspace", False),
    "-": ("minus", False), "=": ("equal", False), "[": ("bracket_left", False),
    "]": ("bracket_right", False), ";": ("semicolon", False), "'": ("apostrophe", False),
    "`": ("grave_accent", False), "\\": ("backslash", False), ",": ("comma", False),
    ".": ("dot", False), "/": ("slash", False),
    "_": ("minus", True), "+": ("equal", True), "{": ("bracket_left", True),
    "}": ("bracket_right", True), ":": ("semicolon", True), '"': ("apostrophe", True),
    "~": ("grave_accent", True), "|": ("backslash", True), "<": ("comma", True),
    ">": ("dot", True), "?": ("slash", True),
    "!": ("1", True), "@": ("2", True), "#": ("3", True), "$": ("4", True), "%": ("5", True),
    "^": ("6", True), "&": ("7", True), "*": ("8", True), "(": ("9", True), ")": ("0", True),
}
for _c in "abcdefghijklmnopqrstuvwxyz0123456789":
    _KEYS[_c] = (_c, False)
for _c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
    _KEYS[_c] = (_c.lower(), True)


class QMP:
    """A QMP connection to one QEMU (synchronous; thread-safe)."""

    def __init__(self, socket_path: str | Path, *, timeout: float = 10.0, name: str = CLIENT_NAME):
        self.socket_path = Path(socket_path)
        self.timeout = timeout
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: QMPClient | None = None
        self._cond = threading.Condition()
        self._log: deque[tuple[int, dict]] = deque(maxlen=1000)   # (sequence number, event)
        self._seq = 0
        self._floor = 0
        self._consumed: set[int] = set()

    # --- connection -----------------------------------------------------------------
    def connect(self, timeout: float | None = None) -> QMP:
        """Connect and negotiate capabilities (QMPTimeout if QEMU does not greet in time)."""
        if self.connected:
            return self
        self._start_loop()

        async def _connect() -> None:
            client = _Client(self._name)
            client.register_listener(_Recorder(self._record_event, client.events))
            try:
                await client.connect(str(self.socket_path))
            except BaseException:
                await client.disconnect()
                raise
            self._client = client

        self._run(_connect, timeout, f"connect to QMP socket {self.socket_path}")
        return self

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.runstate == Runstate.RUNNING

    def close(self) -> None:
        """Disconnect and stop the loop thread (idempotent)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def _close() -> None:
            if self._client:
                await self._client.disconnect()

        if thread.is_alive():
            try:
                self._run(_close, 5.0, "close QMP")
            except (QMPError, _LibQMPError, OSError, EOFError):
                pass
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5.0)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = self._client = None

    def __enter__(self) -> QMP:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)

    # --- commands -------------------------------------------------------------------
    def execute(self, cmd: str, args: dict[str, Any] | None = None, *,
                timeout: float | None = None) -> Any:
        """Run one QMP command and return its ``return`` value."""
        if self._client is None:
            raise QMPError(f"QMP not connected ({self.socket_path}); call connect() first")
        client = self._client
        return self._run(lambda: client.execute(cmd, args), timeout, f"QMP {cmd}")

    def status(self) -> str:
        """QEMU's run state: ``running``, ``paused``, ``prelaunch``, ``shutdown``, ..."""
        return self.execute("query-status")["status"]

    def pause(self) -> None:
        self.execute("stop")

    def resume(self) -> None:
        self.execute("cont")

    def hmp(self, command_line: str, *, timeout: float | None = None) -> str:
        """Run a human-monitor command (e.g. ``info version``) and return its text."""
        return self.execute("human-monitor-command", {"command-line": command_line},
                            timeout=timeout)

    def screendump(self, path: str | Path, *, timeout: float | None = None) -> Path:
        """Save the guest's screen as a PNG at ``path`` (checked: it must be a real PNG)."""
        path = Path(path).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        self.execute("screendump", {"filename": str(path), "format": "png"}, timeout=timeout)
        try:
            with open(path, "rb") as f:
                magic = f.read(len(PNG_MAGIC))
        except OSError as exc:
            raise QMPError(f"screendump wrote no file at {path}: {exc}") from exc
        if magic != PNG_MAGIC:
            raise QMPError(f"screendump at {path} is not a PNG (starts with {magic!r})")
        return path

    def send_keys(self, keys: str | Iterable[str], *, hold_ms: int = 50) -> None:
        """Press keys on the guest keyboard.

        A list (e.g. ``["ctrl", "alt", "delete"]``) is one chord of QEMU qcodes
        pressed together; a string is typed character by character.
        """
        if isinstance(keys, str):
            for ch in keys:
                if ch not in _KEYS:
                    raise QMPError(f"send_keys cannot type {ch!r}")
                code, shift = _KEYS[ch]
                self._send_chord((["shift"] if shift else []) + [code], hold_ms)
        else:
            chord = list(keys)
            if not chord:
                raise QMPError("send_keys needs at least one key")
            self._send_chord(chord, hold_ms)

    def _send_chord(self, codes: list[str], hold_ms: int) -> None:
        self.execute("send-key", {"keys": [{"type": "qcode", "data": c} for c in codes],
                                  "hold-time": hold_ms})

    # --- disks ----------------------------------------------------------------------
    def add_disk(self, path: str | Path, *, node_id: str, interface: str = "virtio",
                 fmt: str = "qcow2", readonly: bool = False, timeout: float | None = None) -> str:
        """Hotplug a disk (``blockdev-add`` + ``device_add``); returns the device id ``dev-<node_id>``.

        virtio and nvme disks go into a free PCIe root port (see
        ``MachineSpec.hotplug_slots``); usb disks onto the xHCI controller.
        """
        drivers = {"virtio": "virtio-blk-pci", "nvme": "nvme", "usb": "usb-storage"}
        if interface not in drivers:
            raise QMPError(f"cannot hotplug a {interface!r} disk: use one of {sorted(drivers)}")
        device_id = f"dev-{node_id}"
        self.execute("blockdev-add", {
            "driver": fmt, "node-name": node_id, "read-only": readonly,
            "file": {"driver": "file", "filename": str(Path(path).resolve())},
        }, timeout=timeout)
        device: dict[str, Any] = {"driver": drivers[interface], "drive": node_id, "id": device_id}
        if interface == "usb":
            device["bus"] = "xhci.0"
        else:
            port = self._free_root_port()
            if port:
                device["bus"] = port
        if interface == "nvme":
            device["serial"] = node_id
        try:
            self.execute("device_add", device, timeout=timeout)
        except QMPError:
            self.execute("blockdev-del", {"node-name": node_id}, timeout=timeout)
            raise
        return device_id

    def remove_disk(self, node_id: str, *, timeout: float = 30.0) -> None:
        """Unplug a disk added by :meth:`add_disk` (waits for the guest to release it)."""
        device_id = f"dev-{node_id}"
        mark = self.event_mark()
        self.execute("device_del", {"id": device_id})
        self.wait_event("DEVICE_DELETED", timeout, match={"device": device_id}, since=mark)
        self.execute("blockdev-del", {"node-name": node_id})

    def _free_root_port(self) -> str | None:
        """The qdev id of an empty ``pcie-root-port`` made for hotplug, or None on non-PCIe machines."""
        ports: list[tuple[str, int]] = []
        for bus in self.execute("query-pci"):
            for dev in bus.get("devices", []):
                bridge = dev.get("pci_bridge")
                qdev = dev.get("qdev_id", "")
                if bridge is not None and qdev.startswith("hp"):
                    ports.append((qdev, len(bridge.get("devices", []))))
        for qdev, used in ports:
            if used == 0:
                return qdev
        if ports:
            raise QMPError(f"no free hotplug slot: all {len(ports)} PCIe root ports are in use "
                           "(raise MachineSpec.hotplug_slots)")
        return None

    # --- events ---------------------------------------------------------------------
    @property
    def events(self) -> list[dict]:
        """The most recent events (oldest first), e.g. ``{"event": "STOP", "data": {}, ...}``."""
        with self._cond:
            return [ev for _, ev in self._log]

    def event_mark(self) -> int:
        """Mark "now": a later :meth:`wait_event` ignores events received before the mark.

        Call it just before the action whose event you will wait for (QEMU
        may send the event before the command returns).
        """
        with self._cond:
            self._floor = self._seq
            return self._seq

    def wait_event(self, name: str, timeout: float = 10.0, *,
                   match: dict[str, Any] | None = None, since: int | None = None) -> dict:
        """Wait for an event called ``name`` (whose ``data`` contains ``match``).

        Considers events received after the last :meth:`event_mark` (or after
        ``since``, a value it returned) that no earlier ``wait_event`` returned,
        so an event that arrived just before the call is not missed.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            floor = self._floor if since is None else since
            while True:
                for seq, ev in self._log:
                    if seq > floor and seq not in self._consumed and _event_matches(ev, name, match):
                        self._consumed.add(seq)
                        return ev
                if not self.connected:
                    raise QMPError(f"QMP connection lost while waiting for event {name}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise QMPTimeout(f"no QMP event {name} within {timeout:g} s")
                self._cond.wait(min(left, 0.5))

    def _record_event(self, msg: Any) -> None:
        with self._cond:
            self._seq += 1
            self._log.append((self._seq, dict(msg)))
            oldest = self._log[0][0]
            self._consumed = {s for s in self._consumed if s >= oldest}
            self._cond.notify_all()

    # --- the private loop -----------------------------------------------------------
    def _start_loop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def _main() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=_main, name=f"qmp:{self.socket_path.parent.name}",
                                        daemon=True)
        self._thread.start()
        ready.wait(5.0)

    def _run(self, fn: Callable[[], Awaitable[Any]], timeout: float | None, what: str) -> Any:
        loop = self._loop
        if loop is None or self._thread is None or not self._thread.is_alive():
            raise QMPError(f"{what}: QMP is closed")
        if threading.current_thread() is self._thread:
            raise QMPError(f"{what}: called from QMP's own event loop thread")
        timeout = self.timeout if timeout is None else timeout
        # the caller's thread waits with the timeout and cancels on expiry: an
        # asyncio.wait_for around the call would cost a task and a timer per call
        fut = asyncio.run_coroutine_threadsafe(fn(), loop)
        try:
            return fut.result(timeout)
        except _TIMEOUTS:
            fut.cancel()
            raise QMPTimeout(f"{what}: no answer within {timeout:g} s ({self.socket_path})") from None
        except ExecuteError as exc:
            raise QMPError(f"{what} failed: {exc.error_class}: {exc}") from exc
        except (_LibQMPError, OSError, EOFError) as exc:
            raise QMPError(f"{what}: {type(exc).__name__}: {exc} "
                           f"(is QEMU still running? socket {self.socket_path})") from exc


class _Client(QMPClient):
    """``QMPClient`` without its per-message debug text when debug logging is off.

    The library's message hooks log ``str(msg)`` eagerly (a JSON encoding of
    every command and reply, ~0.06 ms a call, a quarter of a ``query-status``
    round trip here) even when nothing logs at DEBUG; these hooks are meant
    to be overridden, and keep the library's behaviour when DEBUG is on.
    """

    def _cb_outbound(self, msg: Any) -> Any:
        if self.logger.isEnabledFor(logging.DEBUG):
            return super()._cb_outbound(msg)
        return msg

    def _cb_inbound(self, msg: Any) -> Any:
        if self.logger.isEnabledFor(logging.DEBUG):
            return super()._cb_inbound(msg)
        return msg


class _Recorder(EventListener):
    """Records every event as the client receives it, in order with command replies.

    (A plain listener's queue is read later by a task, so an event could be
    logged after the reply of a command that caused it.)  Also empties the
    client's default listener, which nobody reads.
    """

    def __init__(self, record: Callable[[Any], None], default: EventListener):
        super().__init__()
        self._record = record
        self._default = default

    def accept(self, event: Any) -> bool:
        self._record(event)
        self._default.clear()
        return False


def _event_matches(ev: dict, name: str, match: dict[str, Any] | None) -> bool:
    if ev.get("event") != name:
        return False
    data = ev.get("data") or {}
    return all(data.get(k) == v for k, v in (match or {}).items())
