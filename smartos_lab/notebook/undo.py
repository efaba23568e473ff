"""Undo points: a checkpoint before each mutating magic cell, so ``%undo`` can go back.

Undo points are ordinary lab checkpoints named ``undo-<n>`` (qcow2 internal
snapshots: RAM, devices and disks).  The newest ``keep`` are kept; each save
reports what it cost (seconds, VM state bytes, growth of the lab's disk
files).  A save is refused, before the cell runs, when the disk holding the
lab has less free space than the state is likely to need.
"""
from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .cells import CellError

PREFIX = "undo-"
_UNDO_NAME = re.compile(re.escape(PREFIX) + r"(\d+)")
RESERVE = 256 << 20         # bytes left free on top of the expected state size
MIB = 1 << 20


@dataclass(frozen=True)
class UndoPoint:
    """One undo point: the checkpoint, the cell it was taken before, and its cost."""

    name: str
    label: str              # what ran after it (the cell's first line)
    seconds: float = 0.0    # time to save
    state_bytes: int = 0    # RAM and device state saved
    disk_bytes: int = 0     # growth of the lab's disk files while saving

    def cost(self) -> str:
        return (f"{self.seconds:.1f} s, {self.state_bytes / MIB:.1f} MiB state, "
                f"disk files +{self.disk_bytes / MIB:.1f} MiB")


class UndoHistory:
    """The undo points of one lab, oldest first (adopts ``undo-<n>`` checkpoints already there)."""

    def __init__(self, lab, *, keep: int = 2, free_bytes: Callable[[], int] | None = None):
        if keep < 1:
            raise ValueError("keep at least one undo point")
        self.lab = lab
        self.keep = keep
        self._free = free_bytes or (lambda: shutil.disk_usage(self._disk_dir()).free)
        existing = sorted((int(m.group(1)), c) for c in lab.checkpoints()
                          if (m := _UNDO_NAME.fullmatch(c.name)))
        self.points = [UndoPoint(c.name, "(from before)", 0.0, c.vm_state_size) for _, c in existing]
        self._next = existing[-1][0] + 1 if existing else 1

    def _disk_dir(self) -> Path:
        return Path(self.lab.lab_dir.disks_dir)

    def _disk_usage(self) -> int:
        folder = self._disk_dir()
        if not folder.is_dir():
            return 0
        return sum(p.stat().st_blocks * 512 for p in folder.iterdir() if p.is_file())

    def space_needed(self) -> int:
        """Bytes a new undo point is expected to need: the largest state saved so far, else RAM."""
        sizes = [c.vm_state_size for c in self.lab.checkpoints()]
        expected = max(sizes) if sizes else self.lab.config.memory_mib * MIB
        return expected + RESERVE

    def save(self, label: str) -> UndoPoint:
        """Take an undo point before a cell (refused when disk space is short)."""
        need, free = self.space_needed(), self._free()
        if free < need:
            raise CellError("not enough disk space for an undo point: the cell did not run", [
                f"  {free / MIB:.0f} MiB free in {self._disk_dir()}, about {need / MIB:.0f} MiB needed",
                "  free some space (%checkpoints lists what is kept), or run the cell without "
                "undo: %autocheckpoint off"])
        name = f"{PREFIX}{self._next}"
        self._next += 1
        before = self._disk_usage()
        seconds = self.lab.checkpoint(name)
        state = next((c.vm_state_size for c in self.lab.checkpoints() if c.name == name), 0)
        point = UndoPoint(name, label, seconds, state, max(0, self._disk_usage() - before))
        self.points.append(point)
        while len(self.points) > self.keep:
            self.lab.delete_checkpoint(self.points.pop(0).name)
        return point

    def undo(self) -> tuple[UndoPoint, float]:
        """Return the lab to the newest undo point (then drop it); returns it and the seconds taken."""
        if not self.points:
            raise CellError("nothing to undo", [
                "  %undo goes back to the state before the last cell run with undo points on; "
                "turn them on with: %autocheckpoint on"])
        point = self.points[-1]
        seconds = self.lab.restore(point.name)
        self.points.pop()
        self.lab.delete_checkpoint(point.name)
        return point, seconds

    def forget(self) -> None:
        """Delete every undo point (e.g. when undo is turned off)."""
        while self.points:
            self.lab.delete_checkpoint(self.points.pop().name)
