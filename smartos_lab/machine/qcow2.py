"""Read the saved RAM (VM state) of a qcow2 internal snapshot into a file.

``savevm`` stores a checkpoint's RAM and device state inside the qcow2 file,
"like guest disk content, except that it is stored at offsets that are larger
than the virtual disk presented to the guest" (QEMU docs/interop/qcow2.txt,
snapshot table).  The stream stored there is QEMU's migration stream, so a
copy of it can be given to another QEMU with ``-incoming "exec:cat FILE"``.
``qemu-img`` has no command to copy it out, hence this small reader of the
documented format.  Snapshot clusters are never rewritten while the snapshot
exists, so reading them is safe while a QEMU runs on the image.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError

MAGIC = b"QFI\xfb"
_OFFSET_MASK = 0x00FFFFFFFFFFFE00          # bits 9-55 of L1/L2 entries
_COMPRESSED = 1 << 62
_ZERO = 1                                  # L2 entry bit 0 (version 3): cluster reads as zeros
_INCOMPAT_DATA_FILE = 1 << 2
_INCOMPAT_EXTENDED_L2 = 1 << 4
_CHUNK = 8 << 20


@dataclass(frozen=True)
class Snapshot:
    """One entry of a qcow2 snapshot table."""

    name: str
    id: str
    l1_table_offset: int
    l1_size: int
    vm_state_size: int
    disk_size: int
    date_sec: int = 0
    date_nsec: int = 0


def is_qcow2(path: str | Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == MAGIC
    except OSError:
        return False


def snapshots(path: str | Path) -> list[Snapshot]:
    """The snapshot table of the qcow2 image ``path``."""
    with open(path, "rb") as f:
        header = _header(f, path)
        return _read_table(f, header)


def save_vmstate(path: str | Path, name: str, dest: str | Path) -> int:
    """Write the VM state of snapshot ``name`` of ``path`` to ``dest``; returns its size.

    :class:`CheckpointError` when there is no such snapshot, it holds no VM
    state (another disk of the machine holds it) or the image uses a layout
    this reader does not handle (external data file, subclusters, compression).
    """
    with open(path, "rb") as f:
        header = _header(f, path)
        snap = next((s for s in _read_table(f, header) if s.name == name), None)
        if snap is None:
            raise CheckpointError(f"{path} has no checkpoint named {name!r}")
        if snap.vm_state_size == 0:
            raise CheckpointError(f"checkpoint {name!r} in {path} holds no RAM (only disk state)")
        cluster = header["cluster_size"]
        per_l2 = cluster // 8
        span = cluster * per_l2                      # guest bytes one L1 entry covers
        start = -(-snap.disk_size // span) * span    # the first L1 entry past the disk
        f.seek(snap.l1_table_offset)
        l1 = struct.unpack(f">{snap.l1_size}Q", f.read(8 * snap.l1_size))
        remaining = snap.vm_state_size
        offset = start
        with open(dest, "wb") as out:
            while remaining > 0:
                l1_index, in_l1 = divmod(offset, span)
                l2_index, in_cluster = divmod(in_l1, cluster)
                take = min(remaining, cluster - in_cluster)
                host = 0
                if l1_index < len(l1) and l1[l1_index] & _OFFSET_MASK:
                    f.seek((l1[l1_index] & _OFFSET_MASK) + 8 * l2_index)
                    (entry,) = struct.unpack(">Q", f.read(8))
                    if entry & _COMPRESSED:
                        raise CheckpointError(f"{path}: compressed VM state is not supported")
                    if not entry & _ZERO:
                        host = entry & _OFFSET_MASK
                if host:
                    f.seek(host + in_cluster)
                    data = f.read(take)
                    if len(data) != take:
                        raise CheckpointError(f"{path} is truncated inside checkpoint {name!r}")
                    out.write(data)
                else:
                    out.write(bytes(take))
                offset += take
                remaining -= take
    return snap.vm_state_size


def _header(f, path) -> dict:
    raw = f.read(104)
    if raw[:4] != MAGIC:
        raise CheckpointError(f"{path} is not a qcow2 image")
    version, = struct.unpack_from(">I", raw, 4)
    cluster_bits, = struct.unpack_from(">I", raw, 20)
    size, = struct.unpack_from(">Q", raw, 24)
    nb_snapshots, = struct.unpack_from(">I", raw, 60)
    snapshots_offset, = struct.unpack_from(">Q", raw, 64)
    incompat = struct.unpack_from(">Q", raw, 72)[0] if version >= 3 else 0
    if incompat & (_INCOMPAT_DATA_FILE | _INCOMPAT_EXTENDED_L2):
        raise CheckpointError(f"{path} uses an external data file or subclusters; "
                              "its checkpoints cannot be read here")
    return {"version": version, "cluster_size": 1 << cluster_bits, "size": size,
            "nb_snapshots": nb_snapshots, "snapshots_offset": snapshots_offset}


def _read_table(f, header: dict) -> list[Snapshot]:
    result = []
    pos = header["snapshots_offset"]
    for _ in range(header["nb_snapshots"]):
        f.seek(pos)
        fixed = f.read(40)
        l1_off, l1_size, id_len, name_len, sec, nsec, _clock, vm_small, extra_len = \
            struct.unpack(">QIHHIIQII", fixed)
        extra = f.read(extra_len)
        vm_size = struct.unpack_from(">Q", extra, 0)[0] if extra_len >= 8 else vm_small
        disk_size = struct.unpack_from(">Q", extra, 8)[0] if extra_len >= 16 else header["size"]
        ident = f.read(id_len).decode("utf-8", "replace")
        name = f.read(name_len).decode("utf-8", "replace")
        result.append(Snapshot(name=name, id=ident, l1_table_offset=l1_off, l1_size=l1_size,
                               vm_state_size=vm_size, disk_size=disk_size, date_sec=sec,
                               date_nsec=nsec))
        length = 40 + extra_len + id_len + name_len
        pos += length + (-length % 8)
    return result
