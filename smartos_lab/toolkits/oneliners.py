"""A small library of classic DTrace one-liners for illumos/SmartOS, with explanations.

The programs are the well-known ones from the illumos Dynamic Tracing Guide
and Brendan Gregg's DTrace one-liners, using stable providers (``syscall``,
``io``, ``profile``, ``sysinfo``, ``vminfo``, ``proc``).  Each names the plot
that fits its aggregation.  Run one with ``lab.dtrace.one_liner("syscalls_by_process")``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigError

PlotKind = Literal["bar", "histogram", "flame", "heatmap", "none"]


@dataclass(frozen=True)
class OneLiner:
    name: str
    script: str
    explanation: str
    value: str                  # what the aggregated number means (axis label)
    plot: PlotKind


_ALL = (
    OneLiner(
        "syscalls_by_process",
        "syscall:::entry { @[execname] = count(); }",
        "System calls per program name: which processes talk to the kernel most. Every "
        "system call entry fires syscall:::entry; execname is the current process's name.",
        "system calls", "bar"),
    OneLiner(
        "syscalls_by_name",
        "syscall:::entry { @[probefunc] = count(); }",
        "System calls by call name (read, write, ioctl, ...) across the whole system. "
        "probefunc is the system call's name.",
        "system calls", "bar"),
    OneLiner(
        "read_bytes_by_process",
        "sysinfo:::readch { @[execname] = sum(arg0); }",
        "Bytes read through read(2)-family calls per process. The sysinfo provider's "
        "readch probe fires with the byte count in arg0.",
        "bytes read", "bar"),
    OneLiner(
        "write_size_distribution",
        "syscall::write:entry { @[execname] = quantize(arg2); }",
        "Requested write(2) sizes per process as power-of-two histograms (arg2 is the "
        "byte count).",
        "write size (bytes)", "histogram"),
    OneLiner(
        "io_latency_by_device",
        "io:::start { sl_start[arg0] = timestamp; } "
        "io:::done /sl_start[arg0]/ { @[args[1]->dev_statname] = "
        "quantize(timestamp - sl_start[arg0]); sl_start[arg0] = 0; }",
        "Disk I/O latency per device: io:::start stamps each buffer (arg0 identifies it), "
        "io:::done measures the time to completion in nanoseconds; args[1] is the device "
        "(dev_statname such as sd0 or blkdev0).",
        "latency (ns)", "histogram"),
    OneLiner(
        "io_size_by_process",
        "io:::start { @[execname] = quantize(args[0]->b_bcount); }",
        "Sizes of disk I/O requests by the process that caused them (asynchronous writes "
        "are often issued by the kernel, sched, or ZFS threads).",
        "I/O size (bytes)", "histogram"),
    OneLiner(
        "cpu_profile_kernel_stacks",
        "profile-997 /arg0/ { @[stack()] = count(); }",
        "Samples kernel stacks 997 times a second on every CPU (arg0 is the kernel PC, "
        "non-zero when the CPU was in the kernel): the input for a kernel flame graph.",
        "samples", "flame"),
    OneLiner(
        "cpu_profile_by_process",
        "profile-997 { @[execname] = count(); }",
        "Which processes are on CPU: samples per process name at 997 Hz on every CPU "
        "(idle time shows as sched).",
        "samples", "bar"),
    OneLiner(
        "page_faults_by_process",
        "vminfo:::as_fault { @[execname] = count(); }",
        "Address-space (page) faults per process from the vminfo provider.",
        "faults", "bar"),
    OneLiner(
        "new_processes",
        'proc:::exec-success { printf("%d %s\\n", pid, curpsinfo->pr_psargs); }',
        "Prints every successful exec() with the new process's PID and arguments: what "
        "gets started on the system.",
        "", "none"),
)

ONE_LINERS: dict[str, OneLiner] = {o.name: o for o in _ALL}


def one_liner(name: str) -> OneLiner:
    """The one-liner called ``name`` (see :data:`ONE_LINERS`)."""
    try:
        return ONE_LINERS[name]
    except KeyError:
        raise ConfigError(f"no one-liner {name!r}; known: {', '.join(ONE_LINERS)}") from None


def describe() -> str:
    """A plain-text catalogue of the one-liners for a notebook cell."""
    return "\n\n".join(f"{o.name}\n  {o.script}\n  {o.explanation}" for o in _ALL)
