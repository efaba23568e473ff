"""QMP: a synchronous, thread-safe client for one QEMU's monitor socket.

Commands, keys, disks and events on top of :class:`QMPConnection` (the wire
protocol, in ``qmpprotocol``).  It works the same in plain scripts and inside
Jupyter, where the calling thread already runs an asyncio loop.  Every call
has a timeout (:class:`QMPTimeout`); a dead QEMU or a closed socket gives
:class:`QMPError`, never a hang.

A QEMU QMP socket serves one client at a time; a second client connects but
gets no greeting (:class:`QMPTimeout`).  See ``RunDir.qmp_sockets``.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import QMPCommandError, QMPError, QMPTimeout
from .qmpprotocol import QMPConnection

__all__ = ["QMP", "QMPCommandError", "PNG_MAGIC"]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

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

    def __init__(self, socket_path: str | Path, *, timeout: float = 10.0):
        self.socket_path = Path(socket_path)
        self.timeout = timeout
        self._conn: QMPConnection | None = None
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
        conn = QMPConnection(self.socket_path, self._record_event, self._wake_waiters)
        conn.connect(self.timeout if timeout is None else timeout)
        self._conn = conn
        return self

    @property
    def connected(self) -> bool:
        return self._conn is not None and self._conn.connected

    def close(self) -> None:
        """Disconnect (idempotent)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        self._wake_waiters()

    def _wake_waiters(self) -> None:
        """Let every :meth:`wait_event` see that the connection is gone."""
        with self._cond:
            self._cond.notify_all()

    def __enter__(self) -> QMP:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- commands -------------------------------------------------------------------
    def execute(self, cmd: str, args: dict[str, Any] | None = None, *,
                timeout: float | None = None) -> Any:
        """Run one QMP command and return its ``return`` value
        (:class:`QMPCommandError` when QEMU answers with an error)."""
        conn = self._conn
        if conn is None:
            raise QMPError(f"QMP not connected ({self.socket_path}); call connect() first")
        return conn.execute(cmd, args, self.timeout if timeout is None else timeout, f"QMP {cmd}")

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


def _event_matches(ev: dict, name: str, match: dict[str, Any] | None) -> bool:
    if ev.get("event") != name:
        return False
    data = ev.get("data") or {}
    return all(data.get(k) == v for k, v in (match or {}).items())
