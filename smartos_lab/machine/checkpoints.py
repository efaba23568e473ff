"""Whole-VM checkpoints (RAM, devices and disks) as qcow2 internal snapshots.

Uses HMP ``savevm`` / ``loadvm`` / ``delvm`` through QMP and lists checkpoints
from ``query-block``.  Every writable disk must be qcow2; at least one is needed
to hold the VM state.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from ..errors import CheckpointError, ConfigError, QMPError
from .qmp import QMP

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class CheckpointInfo:
    name: str
    vm_state_size: int          # bytes of saved RAM and device state
    date: datetime              # when it was taken (UTC)
    vm_clock: float             # guest run time at the checkpoint, seconds
    id: str = ""                # QEMU's snapshot id on the first disk


def validate_checkpoint_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name.isdigit():
        raise ConfigError(f"invalid checkpoint name {name!r}: use 1-64 characters from "
                          "A-Z a-z 0-9 _ . - (not only digits)")
    return name


def save(qmp: QMP, name: str, *, timeout: float = 300.0) -> float:
    """Take checkpoint ``name`` (replacing one of the same name); returns the seconds it took."""
    validate_checkpoint_name(name)
    _snapshot_disks(qmp)
    return _hmp(qmp, f"savevm {name}", timeout, f"save checkpoint {name!r}")


def restore(qmp: QMP, name: str, *, timeout: float = 300.0) -> float:
    """Go back to checkpoint ``name``; returns the seconds it took.

    A running guest keeps running from the checkpoint; a paused one stays paused.
    """
    require(qmp, name)
    return _hmp(qmp, f"loadvm {name}", timeout, f"restore checkpoint {name!r}")


def delete(qmp: QMP, name: str, *, timeout: float = 120.0) -> None:
    require(qmp, name)
    _hmp(qmp, f"delvm {name}", timeout, f"delete checkpoint {name!r}")


def list_checkpoints(qmp: QMP) -> list[CheckpointInfo]:
    """Checkpoints present on every writable qcow2 disk, oldest first."""
    disks = _snapshot_disks(qmp, required=False)
    if not disks:
        return []
    per_disk = [{s["name"]: s for s in d["inserted"]["image"].get("snapshots", [])} for d in disks]
    common = set(per_disk[0]).intersection(*per_disk[1:])
    infos = [_info(per_disk[0][n]) for n in common]
    return sorted(infos, key=lambda i: (i.date, i.name))


def _info(snap: dict) -> CheckpointInfo:
    date = datetime.fromtimestamp(snap.get("date-sec", 0) + snap.get("date-nsec", 0) / 1e9,
                                  tz=timezone.utc)
    clock = snap.get("vm-clock-sec", 0) + snap.get("vm-clock-nsec", 0) / 1e9
    return CheckpointInfo(name=snap["name"], vm_state_size=int(snap.get("vm-state-size", 0)),
                          date=date, vm_clock=clock, id=str(snap.get("id", "")))


def require(qmp: QMP, name: str) -> None:
    """Raise :class:`CheckpointError` unless checkpoint ``name`` exists (before anything is changed)."""
    validate_checkpoint_name(name)
    known = [c.name for c in list_checkpoints(qmp)]
    if name not in known:
        have = ", ".join(known) if known else "none"
        raise CheckpointError(f"no checkpoint named {name!r} (checkpoints: {have})")


def _snapshot_disks(qmp: QMP, *, required: bool = True) -> list[dict]:
    """The writable disks (query-block entries); all must be qcow2."""
    try:
        blocks = qmp.execute("query-block")
    except QMPError as exc:
        raise CheckpointError(f"cannot list the machine's disks: {exc}") from exc
    writable = [b for b in blocks if b.get("inserted") and not b["inserted"].get("ro")]
    not_qcow2 = [_label(b) for b in writable if b["inserted"]["image"].get("format") != "qcow2"]
    if required and not_qcow2:
        raise CheckpointError("checkpoints need every writable disk to be qcow2; not qcow2: "
                              + ", ".join(not_qcow2))
    if required and not writable:
        raise CheckpointError("checkpoints need a writable qcow2 disk to hold the VM state, and "
                              "this machine has none (attach one, e.g. disks.create_blank(path, '1G'))")
    return [b for b in writable if b["inserted"]["image"].get("format") == "qcow2"]


def _label(block: dict) -> str:
    ins = block["inserted"]
    return f"{ins.get('node-name') or block.get('device')} ({ins.get('file')}, {ins['image'].get('format')})"


def _hmp(qmp: QMP, command: str, timeout: float, what: str) -> float:
    start = time.monotonic()
    try:
        out = qmp.hmp(command, timeout=timeout)
    except QMPError as exc:
        raise CheckpointError(f"cannot {what}: {exc}") from exc
    elapsed = time.monotonic() - start
    text = out.strip()
    if text:          # savevm/loadvm/delvm print nothing on success
        raise CheckpointError(f"cannot {what}: {text}")
    return elapsed
