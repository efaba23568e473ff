"""ZFS: pools, datasets, properties, snapshots, clones, send/receive, scrub (``lab.zfs``).

Commands use the scriptable forms (``-H -p``), whose output is the same on
illumos and OpenZFS-on-Linux.  Device names are parameters: ``c1t1d0`` on
illumos, ``/dev/vdb1`` on the Linux test guest.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..errors import CommandTimeout, ConfigError, ParseError
from ..machine.result import CommandResult
from ..parsers.kstat import ArcStats, parse_arcstats
from ..parsers.zfs import ZfsDataset, ZfsProperty, canonical, parse_zfs_get, parse_zfs_list
from ..parsers.zfs import converter as zfs_converter
from ..parsers.zfs_diff import ZfsDiffEntry, parse_zfs_diff
from ..parsers.zpool import ScanStatus, ZpoolListEntry, ZpoolStatus, parse_zpool_list, parse_zpool_status
from ..parsers.zpool_iostat import IostatRow, parse_zpool_iostat
from . import _cmd
from .base import Toolkit

LAYOUTS = ("stripe", "mirror", "raidz", "raidz1", "raidz2", "raidz3")
POOL_FIELDS = ("name", "size", "allocated", "free", "capacity", "dedupratio", "health")
DATASET_FIELDS = ("name", "type", "used", "available", "referenced", "compressratio", "mountpoint")
SNAPSHOT_FIELDS = ("name", "used", "referenced", "creation")
GET_FIELDS = ("name", "property", "value", "source")


class Zfs(Toolkit):
    """zpool and zfs over a command runner."""

    # ================================================================ pools
    def pools(self) -> list[ZpoolListEntry]:
        """``zpool list -H -p -o name,size,allocated,...``: every imported pool."""
        out = self._ok(_cmd.cmd("zpool", "list", "-H", "-p", "-o", ",".join(POOL_FIELDS))).stdout
        return parse_zpool_list(out, fields=POOL_FIELDS)

    def pool(self, name: str) -> ZpoolListEntry:
        out = self._ok(_cmd.cmd("zpool", "list", "-H", "-p", "-o", ",".join(POOL_FIELDS),
                                _cmd.pool_name(name))).stdout
        return parse_zpool_list(out, fields=POOL_FIELDS)[0]

    def status(self, pool: str) -> ZpoolStatus:
        """``zpool status -v <pool>``, parsed: state, scan, vdev tree with error counters."""
        out = self._ok(_cmd.cmd("zpool", "status", "-v", _cmd.pool_name(pool))).stdout
        for entry in parse_zpool_status(out):
            if entry.name == pool:
                return entry
        raise ParseError("zpool status", f"pool {pool!r} not in the output")

    def statuses(self) -> list[ZpoolStatus]:
        """``zpool status -v`` of every imported pool."""
        return parse_zpool_status(self._ok("zpool status -v").stdout)

    def status_text(self, pool: str) -> str:
        """``zpool status -v <pool>`` as printed (for showing in a notebook)."""
        return self._ok(_cmd.cmd("zpool", "status", "-v", _cmd.pool_name(pool))).stdout

    def create_pool(self, name: str, devices: Sequence[str], *, layout: str = "stripe",
                    properties: dict[str, Any] | None = None,
                    fs_properties: dict[str, Any] | None = None,
                    mountpoint: str | None = None, force: bool = False) -> None:
        """``zpool create [-f] [-o p=v] [-O p=v] [-m mnt] <name> [layout] <devices>``.

        ``layout`` is one of :data:`LAYOUTS`; ``devices`` are disk names or paths.
        """
        _cmd.pool_name(name)
        if layout not in LAYOUTS:
            raise ConfigError(f"unknown layout {layout!r}: one of {', '.join(LAYOUTS)}")
        devices = [_device(d) for d in devices]
        minimum = {"stripe": 1, "mirror": 2, "raidz": 2, "raidz1": 2, "raidz2": 3, "raidz3": 4}
        if len(devices) < minimum[layout]:
            raise ConfigError(f"a {layout} needs at least {minimum[layout]} devices, got {len(devices)}")
        args: list[str | None] = ["zpool", "create", "-f" if force else None]
        args += _prop_args("-o", properties)
        args += _prop_args("-O", fs_properties)
        if mountpoint is not None:
            args += ["-m", _cmd.no_control(mountpoint, "mountpoint")]
        args.append(name)
        if layout != "stripe":
            args.append(layout)
        args += devices
        self._ok(_cmd.cmd(*args))

    def destroy_pool(self, name: str, *, force: bool = False) -> None:
        self._ok(_cmd.cmd("zpool", "destroy", "-f" if force else None, _cmd.pool_name(name)))

    def export_pool(self, name: str, *, force: bool = False) -> None:
        self._ok(_cmd.cmd("zpool", "export", "-f" if force else None, _cmd.pool_name(name)))

    def import_pool(self, name: str, *, search_dirs: Iterable[str] = (), force: bool = False) -> None:
        """``zpool import [-d dir ...] [-f] <name>`` (``search_dirs``: e.g. ``/dev`` on Linux)."""
        args: list[str | None] = ["zpool", "import"]
        for d in search_dirs:
            args += ["-d", _cmd.no_control(d, "search directory")]
        args += ["-f" if force else None, _cmd.pool_name(name)]
        self._ok(_cmd.cmd(*args))

    def pool_property(self, pool: str, prop: str) -> str | None:
        """One pool property as printed by ``zpool get -H -p`` (``-`` gives None).

        Typed sizes and ratios of a pool: :meth:`pool` (``size``, ``allocated``,
        ``free``, ``capacity``, ``dedupratio``).
        """
        out = self._ok(_cmd.cmd("zpool", "get", "-H", "-p", "-o", "name,property,value",
                                _cmd.property_name(prop), _cmd.pool_name(pool))).stdout
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[1] == prop:
                return None if parts[2] == "-" else parts[2]
        raise ParseError("zpool get", f"property {prop!r} not in the output", line=out[:200])

    def dedup_ratio(self, pool: str) -> float:
        """The pool's dedup ratio (1.0 = no savings)."""
        ratio = self.pool(pool).dedupratio
        if ratio is None:
            raise ParseError("zpool list", f"no dedupratio for pool {pool!r}")
        return ratio

    def clear(self, pool: str, device: str | None = None) -> None:
        """``zpool clear <pool> [device]``: reset error counters."""
        self._ok(_cmd.cmd("zpool", "clear", _cmd.pool_name(pool),
                          _device(device) if device else None))

    # ================================================================ scrub
    def scrub(self, pool: str, *, stop: bool = False) -> None:
        """Start (or with ``stop=True`` cancel) a scrub."""
        self._ok(_cmd.cmd("zpool", "scrub", "-s" if stop else None, _cmd.pool_name(pool)))

    def scrub_status(self, pool: str) -> ScanStatus:
        """The pool's scan state from ``zpool status`` (``state``: none, in_progress,
        paused, finished, canceled; ``percent_done``, ``repaired_bytes``, ``errors``)."""
        return self.status(pool).scan or ScanStatus("", None, "none")

    def wait_scrub(self, pool: str, timeout: float = 600.0, *, poll: float = 1.0,
                   progress: Callable[[ScanStatus], None] | None = None) -> ScanStatus:
        """Poll until the scan is no longer in progress; ``progress(status)`` sees every poll.

        Raises :class:`CommandTimeout` when it still runs after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            status = self.scrub_status(pool)
            if progress is not None:
                progress(status)
            if status.state != "in_progress":
                return status
            if time.monotonic() >= deadline:
                raise CommandTimeout(f"scrub of pool {pool!r} still running after {timeout:.0f} s "
                                     f"({status.percent_done}% done)", tail=status.text)
            time.sleep(poll)

    # ================================================================ datasets
    def datasets(self, root: str | None = None, *, types: Sequence[str] = ("filesystem", "volume"),
                 fields: Sequence[str] = DATASET_FIELDS, depth: int | None = None) -> list[ZfsDataset]:
        """``zfs list -H -p -o <fields> -t <types> [-r|-d N] [root]``."""
        args: list[str | None] = ["zfs", "list", "-H", "-p", "-o", _field_list(fields),
                                  "-t", ",".join(_types(types))]
        if root is not None:
            args += ["-d", str(int(depth))] if depth is not None else ["-r"]
            args.append(_cmd.dataset_name(root, snapshot=None))
        return parse_zfs_list(self._ok(_cmd.cmd(*args)).stdout, fields=list(fields))

    def exists(self, name: str) -> bool:
        result = self._run(_cmd.cmd("zfs", "list", "-H", "-o", "name",
                                    _cmd.dataset_name(name, snapshot=None)))
        return result.exit_status == 0

    def create(self, name: str, *, properties: dict[str, Any] | None = None,
               parents: bool = False, volume_size: int | str | None = None,
               sparse: bool = False) -> None:
        """``zfs create [-p] [-o p=v ...] [-V size [-s]] <name>``."""
        _cmd.dataset_name(name)
        args: list[str | None] = ["zfs", "create", "-p" if parents else None]
        args += _prop_args("-o", properties)
        if volume_size is not None:
            args += ["-s" if sparse else None, "-V", _size_arg(volume_size)]
        elif sparse:
            raise ConfigError("sparse applies to volumes only (give volume_size)")
        args.append(name)
        self._ok(_cmd.cmd(*args))

    def destroy(self, name: str, *, recursive: bool = False, force: bool = False) -> None:
        """``zfs destroy [-r] [-f] <name>`` (datasets or snapshots)."""
        self._ok(_cmd.cmd("zfs", "destroy", "-r" if recursive else None, "-f" if force else None,
                          _cmd.dataset_name(name, snapshot=None)))

    def get(self, name: str, prop: str) -> Any:
        """One property, typed as :mod:`smartos_lab.parsers.zfs` types it: sizes int bytes,
        ratios float, ``mounted`` bool, counts int, other values str; ``-`` None.

        Runs ``zfs get -H -o value -p <prop> <name>``.
        """
        out = self._ok(_cmd.cmd("zfs", "get", "-H", "-o", "value", "-p", _cmd.property_name(prop),
                                _cmd.dataset_name(name, snapshot=None))).stdout
        rows = [line for line in out.splitlines() if line.strip()]
        if len(rows) != 1:
            raise ParseError("zfs get", f"expected one value for {prop!r}, got {len(rows)} lines",
                             line=out[:200])
        text = rows[0].rstrip("\r")
        try:
            return zfs_converter(canonical(prop))(text)
        except ValueError:
            raise ParseError("zfs get", f"bad value for {prop}", line=text) from None

    def properties(self, name: str, props: Sequence[str] = ("all",)) -> dict[str, Any]:
        """Several properties, typed, as ``{property: value}``."""
        return {p.property: p.value for p in self._get(name, props)}

    def set(self, name: str, prop: str | None = None, value: Any = None, **props: Any) -> None:
        """``zfs set p=v [p=v ...] <name>`` (``set(ds, "compression", "lz4")`` or keywords)."""
        pairs = dict(props)
        if prop is not None:
            pairs[prop] = value
        if not pairs:
            raise ConfigError("zfs set needs at least one property")
        self._ok(_cmd.cmd("zfs", "set", *_prop_pairs(pairs), _cmd.dataset_name(name, snapshot=None)))

    def compression_ratio(self, name: str) -> float:
        """The dataset's compression ratio (``compressratio``; 1.0 = none)."""
        return float(self.get(name, "compressratio"))

    # ================================================================ snapshots
    def snapshot(self, dataset: str, snap: str, *, recursive: bool = False) -> str:
        """``zfs snapshot [-r] dataset@snap``; returns the full snapshot name."""
        full = f"{_cmd.dataset_name(dataset)}@{_cmd.snapshot_component(snap)}"
        self._ok(_cmd.cmd("zfs", "snapshot", "-r" if recursive else None,
                          _cmd.dataset_name(full, snapshot=True)))
        return full

    def snapshots(self, dataset: str | None = None, *,
                  fields: Sequence[str] = SNAPSHOT_FIELDS) -> list[ZfsDataset]:
        """Snapshots (of ``dataset`` and its children, or all), oldest first."""
        args: list[str | None] = ["zfs", "list", "-H", "-p", "-t", "snapshot", "-o",
                                  _field_list(fields), "-s", "creation"]
        if dataset is not None:
            args += ["-r", _cmd.dataset_name(dataset)]
        return parse_zfs_list(self._ok(_cmd.cmd(*args)).stdout, fields=list(fields))

    def rollback(self, snapshot: str, *, destroy_newer: bool = False) -> None:
        """``zfs rollback [-r] ds@snap`` (``-r`` destroys later snapshots)."""
        self._ok(_cmd.cmd("zfs", "rollback", "-r" if destroy_newer else None,
                          _cmd.dataset_name(snapshot, snapshot=True)))

    def destroy_snapshot(self, snapshot: str) -> None:
        self._ok(_cmd.cmd("zfs", "destroy", _cmd.dataset_name(snapshot, snapshot=True)))

    def clone(self, snapshot: str, target: str, *, properties: dict[str, Any] | None = None) -> None:
        """``zfs clone [-o p=v] ds@snap target``."""
        self._ok(_cmd.cmd("zfs", "clone", *_prop_args("-o", properties),
                          _cmd.dataset_name(snapshot, snapshot=True), _cmd.dataset_name(target)))

    def promote(self, clone: str) -> None:
        self._ok(_cmd.cmd("zfs", "promote", _cmd.dataset_name(clone)))

    def origin(self, name: str) -> str | None:
        value = self.get(name, "origin")
        return None if value in (None, "-") else str(value)

    # ================================================================ send / receive
    def send_receive_command(self, snapshot: str, target: str, *, incremental_from: str | None = None,
                             force: bool = False) -> str:
        """The guest pipeline ``zfs send [-i from] ds@s | zfs receive [-F] target``."""
        send: list[str | None] = ["zfs", "send"]
        if incremental_from is not None:
            send += ["-i", _incremental_base(incremental_from)]
        send.append(_cmd.dataset_name(snapshot, snapshot=True))
        recv = ["zfs", "receive", "-F" if force else None, _cmd.dataset_name(target, snapshot=None)]
        return f"{_cmd.cmd(*send)} | {_cmd.cmd(*recv)}"

    def send_receive(self, snapshot: str, target: str, *, incremental_from: str | None = None,
                     force: bool = False, timeout: float = 600.0) -> CommandResult:
        """Replicate a snapshot into ``target`` inside the guest (a full or ``-i`` stream).

        The pipeline's status is the receiver's; a failing sender makes the
        receiver fail on a truncated stream, so errors are not lost.
        """
        return self._ok(self.send_receive_command(snapshot, target, incremental_from=incremental_from,
                                                  force=force), timeout)

    # ================================================================ internals
    def _get(self, name: str, props: Sequence[str]) -> list[ZfsProperty]:
        names = ",".join(p if p == "all" else _cmd.property_name(p) for p in props)
        out = self._ok(_cmd.cmd("zfs", "get", "-H", "-p", "-o", ",".join(GET_FIELDS),
                                names, _cmd.dataset_name(name, snapshot=None))).stdout
        return parse_zfs_get(out, fields=GET_FIELDS)



    # ================================================================ part 2: diff, iostat, vdevs, holds, ARC
    def diff(self, snapshot: str, target: str | None = None) -> list[ZfsDiffEntry]:
        """``zfs diff -F -H snapshot [target]``: what changed since the snapshot (``target``:
        a later snapshot or the filesystem; default the filesystem itself)."""
        args = ["zfs", "diff", "-F", "-H", _cmd.dataset_name(snapshot, snapshot=True)]
        if target is not None:
            args.append(_cmd.dataset_name(target, snapshot=None))
        return parse_zfs_diff(self._ok(_cmd.cmd(*args)).stdout, file_types=True)

    def iostat(self, *pools: str, vdevs: bool = False, interval: int | None = None,
               count: int = 1) -> list[IostatRow]:
        """``zpool iostat -H -p [-v] [pool ...] [interval count]``, parsed.

        Without ``interval`` the one report covers the time since import; with
        it, ``count`` reports of ``interval`` seconds follow that first one
        (``row.sample`` numbers them).
        """
        args: list[str | None] = ["zpool", "iostat", "-H", "-p", "-v" if vdevs else None]
        args += [_cmd.pool_name(p) for p in pools]
        timeout = self.timeout
        if interval is not None:
            if not isinstance(interval, int) or interval < 1 or not isinstance(count, int) \
                    or count < 1:
                raise ConfigError("interval and count must be positive integers (seconds, reports)")
            args += [str(interval), str(count + 1)]
            timeout += interval * (count + 1)
        return parse_zpool_iostat(self._ok(_cmd.cmd(*args), timeout).stdout)

    def attach(self, pool: str, device: str, new_device: str, *, force: bool = False) -> None:
        """``zpool attach [-f] pool device new_device``: mirror ``device`` (a resilver starts)."""
        self._ok(_cmd.cmd("zpool", "attach", "-f" if force else None, _cmd.pool_name(pool),
                          _device(device), _device(new_device)))

    def detach(self, pool: str, device: str) -> None:
        """``zpool detach pool device``: take one side out of a mirror."""
        self._ok(_cmd.cmd("zpool", "detach", _cmd.pool_name(pool), _device(device)))

    def replace(self, pool: str, device: str, new_device: str | None = None, *,
                force: bool = False) -> None:
        """``zpool replace [-f] pool device [new_device]`` (without ``new_device``: the
        same slot after a disk swap).  Follow the resilver with :meth:`wait_scrub`."""
        self._ok(_cmd.cmd("zpool", "replace", "-f" if force else None, _cmd.pool_name(pool),
                          _device(device), _device(new_device) if new_device else None))

    def hold(self, snapshot: str, tag: str) -> None:
        """``zfs hold tag snapshot``: the snapshot cannot be destroyed until released."""
        self._ok(_cmd.cmd("zfs", "hold", _hold_tag(tag), _cmd.dataset_name(snapshot, snapshot=True)))

    def release(self, snapshot: str, tag: str) -> None:
        """``zfs release tag snapshot``."""
        self._ok(_cmd.cmd("zfs", "release", _hold_tag(tag),
                          _cmd.dataset_name(snapshot, snapshot=True)))

    def history(self, pool: str) -> str:
        """``zpool history pool`` as printed: every command that changed the pool."""
        return self._ok(_cmd.cmd("zpool", "history", _cmd.pool_name(pool))).stdout

    def sources(self, name: str, props: Sequence[str] = ("all",)) -> list[ZfsProperty]:
        """``zfs get`` rows with their SOURCE: ``local``, ``default``, ``inherited from
        <parent>``, ``received`` or ``-`` (read-only values)."""
        return self._get(name, props)

    def arc_stats(self) -> ArcStats:
        """The ARC's statistics (``kstat -p zfs:0:arcstats``; illumos/SmartOS): size, target,
        hits and misses since boot; ``.hit_ratio``."""
        return parse_arcstats(self._ok("kstat -p zfs:0:arcstats").stdout)


def _hold_tag(tag: str) -> str:
    _cmd.no_control(tag, "hold tag")
    if len(tag) > 255 or tag.startswith("-"):
        raise ConfigError(f"invalid hold tag {tag!r}")
    return tag


# ==================================================================== argument helpers

def _device(device: str) -> str:
    """A vdev: an illumos disk name (c1t0d0) or an absolute path (/dev/vdb1)."""
    _cmd.no_control(device, "device")
    if device.startswith("/"):
        return device
    if not re.fullmatch(r"[A-Za-z0-9_.:-]+", device) or device in LAYOUTS:
        raise ConfigError(f"invalid device name {device!r}: a disk name like c1t0d0 or a /dev path")
    return device


def _prop_pairs(props: dict[str, Any]) -> list[str]:
    pairs = []
    for key, value in props.items():
        _cmd.property_name(key)
        pairs.append(f"{key}={_prop_value(key, value)}")
    return pairs


def _prop_args(flag: str, props: dict[str, Any] | None) -> list[str]:
    args: list[str] = []
    for pair in _prop_pairs(props or {}):
        args += [flag, pair]
    return args


def _prop_value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    text = str(value)
    _cmd.no_control(text, f"value of property {key}")
    return text


def _size_arg(size: int | str) -> str:
    if isinstance(size, bool):
        raise ConfigError(f"invalid size {size!r}")
    if isinstance(size, int):
        if size <= 0:
            raise ConfigError(f"size must be positive, got {size}")
        return str(size)
    if not re.fullmatch(r"\d+(\.\d+)?[KMGTP]?", str(size)):
        raise ConfigError(f"invalid size {size!r}: bytes or e.g. 64M, 1G")
    return str(size)


def _field_list(fields: Sequence[str]) -> str:
    if not fields:
        raise ConfigError("at least one field is needed")
    return ",".join(_cmd.property_name(f) for f in fields)


def _types(types: Sequence[str]) -> list[str]:
    allowed = ("filesystem", "volume", "snapshot", "bookmark", "all")
    for t in types:
        if t not in allowed:
            raise ConfigError(f"unknown dataset type {t!r}: one of {', '.join(allowed)}")
    return list(types)


def _incremental_base(base: str) -> str:
    if base.startswith("@"):
        return "@" + _cmd.snapshot_component(base[1:])
    return _cmd.dataset_name(base, snapshot=True)
