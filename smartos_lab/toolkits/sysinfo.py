"""Hardware and health of the SmartOS host (``lab.sysinfo``).

``sysinfo`` (JSON), ``diskinfo -H -p``, ``dladm show-phys -p -o``,
``dladm show-vnic -p -o`` and ``svcs -x``, parsed; :meth:`SysInfo.summary`
puts the essentials in one object for a notebook.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from ..parsers.kstat import KstatSample, parse_kstat
from ..parsers.system import (
    Disk,
    PhysLink,
    ServiceExplanation,
    Vnic,
    parse_diskinfo,
    parse_dladm_show_phys,
    parse_dladm_show_vnic,
    parse_svcs_x,
    parse_sysinfo,
)
from ..parsers.system import Sysinfo as SysinfoData
from . import _cmd
from .base import Toolkit

PHYS_FIELDS = ("link", "media", "state", "speed", "duplex", "device")
VNIC_FIELDS = ("link", "over", "speed", "macaddress", "macaddrtype", "vid", "zone")


@dataclass
class HostSummary:
    """The essentials of a SmartOS host in one place."""

    hostname: str | None
    live_image: str | None
    cpu_type: str | None
    cpus: int | None
    memory_mib: int | None
    cpu_virtualization: str | None
    bhyve_capable: bool | None
    zpool: str | None
    disks: list[Disk] = field(default_factory=list)
    links: list[PhysLink] = field(default_factory=list)
    vnics: list[Vnic] = field(default_factory=list)
    services_in_trouble: list[ServiceExplanation] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"host        {self.hostname or '-'} (platform {self.live_image or '-'})",
            f"cpu         {self.cpus or '?'} x {self.cpu_type or '?'} "
            f"(virtualization: {self.cpu_virtualization or '?'}, bhyve: {self.bhyve_capable})",
            f"memory      {self.memory_mib or '?'} MiB",
            f"zpool       {self.zpool or '-'}",
        ]
        for d in self.disks:
            lines.append(f"disk        {d.name} {d.size} {d.vid or ''} {d.pid or ''}".rstrip())
        for link in self.links:
            lines.append(f"link        {link.link} {link.state or '?'} {link.speed or '?'} Mb/s "
                         f"({link.device or '?'})")
        for v in self.vnics:
            lines.append(f"vnic        {v.link} over {v.over} zone {v.zone or '-'}")
        if self.services_in_trouble:
            for s in self.services_in_trouble:
                lines.append(f"SERVICE     {s.fmri}: {s.state} ({s.reason or ''})")
        else:
            lines.append("services    all running (svcs -x is empty)")
        return "\n".join(lines)


class SysInfo(Toolkit):
    """sysinfo, diskinfo, dladm and svcs over a command runner."""

    def sysinfo(self, *, refresh: bool = False) -> SysinfoData:
        """``sysinfo`` (``-f``: refresh the cache first)."""
        return parse_sysinfo(self._ok("sysinfo -f" if refresh else "sysinfo").stdout)

    def disks(self) -> list[Disk]:
        """``diskinfo -H -p``: every disk with its exact size in bytes."""
        return parse_diskinfo(self._ok("diskinfo -H -p").stdout)

    def links(self) -> list[PhysLink]:
        """``dladm show-phys -p -o link,media,state,speed,duplex,device``."""
        out = self._ok(_cmd.cmd("dladm", "show-phys", "-p", "-o", ",".join(PHYS_FIELDS))).stdout
        return parse_dladm_show_phys(out, fields=PHYS_FIELDS)

    def vnics(self) -> list[Vnic]:
        """``dladm show-vnic -p -o link,over,speed,macaddress,macaddrtype,vid,zone``."""
        out = self._ok(_cmd.cmd("dladm", "show-vnic", "-p", "-o", ",".join(VNIC_FIELDS))).stdout
        return parse_dladm_show_vnic(out, fields=VNIC_FIELDS)

    def services_in_trouble(self) -> list[ServiceExplanation]:
        """``svcs -x``: services that are not running, with the reason (empty when healthy)."""
        return parse_svcs_x(self._ok("svcs -x").stdout)

    def summary(self) -> HostSummary:
        info = self.sysinfo()
        return HostSummary(
            hostname=info.hostname, live_image=info.live_image, cpu_type=info.cpu_type,
            cpus=info.cpu_total_cores, memory_mib=info.memory_mib,
            cpu_virtualization=info.cpu_virtualization, bhyve_capable=info.bhyve_capable,
            zpool=info.zpool, disks=self.disks(), links=self.links(), vnics=self.vnics(),
            services_in_trouble=self.services_in_trouble())

    def kstat(self, *statistics: str, interval: int | None = None,
              count: int = 1) -> list[KstatSample]:
        """``kstat -p [-T u] <module:instance:name:statistic> ... [interval count]``, parsed.

        Patterns take globs (``caps::cpucaps_zone*``); with ``interval`` each of the
        ``count`` samples carries its ``-T u`` timestamp.
        """
        if not statistics:
            raise ConfigError("name at least one statistic (module:instance:name:statistic)")
        args = ["kstat", "-p"] + [_cmd.no_control(s, "kstat statistic") for s in statistics]
        timeout = self.timeout
        if interval is not None:
            if not isinstance(interval, int) or interval < 1 or not isinstance(count, int) \
                    or count < 1:
                raise ConfigError("interval and count must be positive integers")
            args[2:2] = ["-T", "u"]
            args += [str(interval), str(count)]
            timeout += interval * count
        return parse_kstat(self._ok(_cmd.cmd(*args), timeout).stdout)
