"""Parsers of SmartOS/illumos command output: one pure function per output format.

Each function takes the command's text and returns dataclasses; output it
does not understand raises :class:`smartos_lab.errors.ParseError` naming the
command and the offending line.
"""
from .imgadm import IMGADM_DEFAULT_FIELDS, ImgadmImage, parse_imgadm_avail, parse_imgadm_list
from .system import (
    Disk,
    NetworkInterface,
    PhysLink,
    ServiceExplanation,
    ServiceState,
    Sysinfo,
    Vnic,
    parse_diskinfo,
    parse_dladm_show_phys,
    parse_dladm_show_vnic,
    parse_svcs,
    parse_svcs_x,
    parse_sysinfo,
)
from .vmadm import (
    VMADM_LIST_DEFAULT_FIELDS,
    VmadmListEntry,
    VmadmVm,
    VmNic,
    parse_vmadm_get,
    parse_vmadm_json,
    parse_vmadm_list,
)
from .zfs import ZFS_GET_DEFAULT_FIELDS, ZfsDataset, ZfsProperty, parse_zfs_get, parse_zfs_list
from .zones import Zone, parse_zoneadm_list
from .zpool import (
    ZPOOL_LIST_DEFAULT_FIELDS,
    ScanStatus,
    Vdev,
    ZpoolListEntry,
    ZpoolStatus,
    parse_zpool_list,
    parse_zpool_status,
)

__all__ = [
    "Disk", "IMGADM_DEFAULT_FIELDS", "ImgadmImage", "NetworkInterface", "PhysLink",
    "ScanStatus", "ServiceExplanation", "ServiceState", "Sysinfo", "VMADM_LIST_DEFAULT_FIELDS",
    "Vdev", "VmNic", "VmadmListEntry", "VmadmVm", "Vnic", "ZFS_GET_DEFAULT_FIELDS",
    "ZPOOL_LIST_DEFAULT_FIELDS", "ZfsDataset", "ZfsProperty", "Zone", "ZpoolListEntry",
    "ZpoolStatus", "parse_diskinfo", "parse_dladm_show_phys", "parse_dladm_show_vnic",
    "parse_imgadm_avail", "parse_imgadm_list", "parse_svcs", "parse_svcs_x", "parse_sysinfo",
    "parse_vmadm_get", "parse_vmadm_json", "parse_vmadm_list", "parse_zfs_get",
    "parse_zfs_list", "parse_zoneadm_list", "parse_zpool_list", "parse_zpool_status",
]

# dtrace/mdb/panic parsers:
from .dtrace import (
    Aggregation,
    AggRow,
    Bucket,
    DTraceCompileError,
    DTraceDrop,
    DTraceFault,
    DTraceOutput,
    DTraceProbeSpecError,
    DTraceSnapshot,
    DTraceStreamParser,
    Enabling,
    ErrorCount,
    Histogram,
    TraceRecord,
    parse_dtrace_output,
    parse_dtrace_ticks,
    parse_printa,
)

# the course's observability and lifecycle parsers:
from .dtrace_list import Probe, parse_dtrace_list
from .kstat import ArcStats, KstatSample, KstatValue, hit_ratios, kstat_values, parse_arcstats, parse_kstat
from .mdata import mdata_value, parse_mdata_json, parse_mdata_list
from .mdb import MemStat, MemStatRow, parse_mdb_memstat
from .panic import DumpInfo, Frame, PanicReport, parse_kernel_panic
from .vmadm_messages import VmadmReport, parse_vmadm_report
from .zfs_diff import ZfsDiffEntry, parse_zfs_diff
from .zone_stats import (
    PrstatProcess,
    PrstatSample,
    PrstatZone,
    ZoneMemStat,
    parse_prstat_zones,
    parse_zonememstat,
)
from .zpool_iostat import IostatRow, parse_zpool_iostat

__all__ += [
    "AggRow", "Aggregation", "Bucket", "DTraceCompileError", "DTraceDrop", "DTraceFault",
    "DTraceOutput", "DTraceProbeSpecError", "DTraceSnapshot", "DTraceStreamParser", "DumpInfo",
    "Enabling", "ErrorCount", "Frame", "Histogram", "MemStat", "MemStatRow", "PanicReport",
    "TraceRecord", "parse_dtrace_output", "parse_dtrace_ticks", "parse_kernel_panic",
    "parse_mdb_memstat", "parse_printa",
]

__all__ += [
    "ArcStats", "IostatRow", "KstatSample", "KstatValue", "Probe", "PrstatProcess",
    "PrstatSample", "PrstatZone", "VmadmReport", "ZfsDiffEntry", "ZoneMemStat", "hit_ratios",
    "kstat_values", "mdata_value", "parse_arcstats", "parse_dtrace_list", "parse_kstat",
    "parse_mdata_json", "parse_mdata_list", "parse_prstat_zones", "parse_vmadm_report",
    "parse_zfs_diff", "parse_zonememstat", "parse_zpool_iostat",
]
