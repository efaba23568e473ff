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
from .mdb import MemStat, MemStatRow, parse_mdb_memstat
from .panic import DumpInfo, Frame, PanicReport, parse_kernel_panic

__all__ += [
    "AggRow", "Aggregation", "Bucket", "DTraceCompileError", "DTraceDrop", "DTraceFault",
    "DTraceOutput", "DTraceProbeSpecError", "DTraceSnapshot", "DTraceStreamParser", "DumpInfo",
    "Enabling", "ErrorCount", "Frame", "Histogram", "MemStat", "MemStatRow", "PanicReport",
    "TraceRecord", "parse_dtrace_output", "parse_dtrace_ticks", "parse_kernel_panic",
    "parse_mdb_memstat", "parse_printa",
]
