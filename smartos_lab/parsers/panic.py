"""An illumos kernel panic as printed on the console.

The kernel prints (``usr/src/uts/common/os/panic.c`` and the platform's trap code)::

    panic[cpu0]/thread=ffffff0003e05c40: <panic string>        (x86 BAD TRAPs put the
                                                                 string on the next line)
    <trap details: process name, "#pf Page fault", registers ...>

    ffffff0003e05a10 genunix:kmem_error+4e3 ()                 one line per frame: frame
    ffffff0003e05b90 unix:trap+17db ()                         pointer, module:function+offset,
                                                                (arguments on SPARC)
    syncing file systems... done
    dumping to /dev/zvol/dsk/zones/dump, offset 65536, content: kernel
    100% done: 123456 pages dumped, compression ratio 4.29, dump succeeded
    rebooting...

SPARC frames carry arguments and ``%l0-3:`` register lines; documentation wraps
long argument lists, and a wrapped list is joined until its ``)``.  Only the
first panic in the text is parsed.  The text must be free of ANSI escapes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import ParseError

CONSOLE = "console (kernel panic)"

_PANIC = re.compile(r"panic\[cpu(\d+)\]/thread=([0-9a-fA-F]+):[ \t]*(.*?)\s*$")
_ADDRESS_START = re.compile(r"\s*[0-9a-fA-F]{8,16}(?:\s|$)")
_FRAME = re.compile(
    r"\s*(?P<fp>[0-9a-fA-F]{8,16})\s+"
    r"(?:(?P<module>[\w.$-]+):)?(?P<function>[\w.$-]+?)(?:\+(?P<offset>[0-9a-fA-F]+))?"
    r"\s*\((?P<args>[^)]*)(?P<closed>\))?\s*$")
_STACK_NOTE = re.compile(r"\s*Warning - stack not written to the dump buffer")  # kernel ring buffer
_REGISTERS = re.compile(r"\s*%[lio][0-7]-[0-7]:")
_TAIL_START = re.compile(r"\s*(?:syncing file systems|dumping to |panic: |Welcome to kmdb|rebooting\.\.\.)")
_HEX_WORDS = re.compile(r"\s*(?:[0-9a-fA-F]+\s*)+$")
_DUMPING = re.compile(r"dumping to (?P<device>\S+), offset (?P<offset>\d+), content: (?P<content>.+?)\s*$")
_DUMPED = re.compile(r"(?P<pages>\d+) pages dumped(?:, compression ratio (?P<ratio>[\d.]+))?,"
                     r" dump (?P<result>succeeded|failed)")


@dataclass(frozen=True, slots=True)
class Frame:
    """One stack frame: ``ffffff0003e05a10 genunix:kmem_error+4e3 (args)``.

    ``address`` is the frame pointer printed first; ``module`` is None when
    the kernel printed a bare address instead of a symbol (``function`` then
    holds that address text)."""

    address: int
    module: str | None
    function: str
    offset: int | None
    args: tuple[int, ...]

    @property
    def symbol(self) -> str:
        name = f"{self.module}:{self.function}" if self.module else self.function
        return f"{name}+{self.offset:x}" if self.offset is not None else name


@dataclass(frozen=True, slots=True)
class DumpInfo:
    """``dumping to DEVICE, offset N, content: kernel`` and the progress line after it."""

    device: str
    offset: int
    content: str
    pages: int | None = None
    compression_ratio: float | None = None
    succeeded: bool | None = None       # None: no result line (output cut or dump still running)


@dataclass(slots=True)
class PanicReport:
    """The first panic found in a console capture."""

    cpu: int
    thread: int
    panic_string: str
    stack: list[Frame] = field(default_factory=list)
    trap_info: list[str] = field(default_factory=list)   # lines between the message and the stack
    dump: DumpInfo | None = None
    synced: bool = False                # "syncing file systems... done"
    debugger: bool = False              # kmdb took over ("Welcome to kmdb", "entering debugger")
    rebooting: bool = False

    @property
    def functions(self) -> list[str]:
        """``module:function`` of each frame, innermost first."""
        return [f"{f.module}:{f.function}" if f.module else f.function for f in self.stack]


def parse_kernel_panic(text: str, *, command: str = CONSOLE) -> PanicReport:
    """Parse the first ``panic[cpuN]/thread=...`` block of an (ANSI-free) console capture.

    Raises :class:`ParseError` if there is no panic line, or a stack frame is
    truncated or malformed.
    """
    lines = text.splitlines()
    start = None
    for index, line in enumerate(lines):
        match = _PANIC.search(line)
        if match:
            start = index
            break
    if start is None:
        raise ParseError(command, "no 'panic[cpuN]/thread=...' line in the text")
    cpu, thread, first = match.groups()
    end = next((i for i in range(start + 1, len(lines)) if _PANIC.search(lines[i])), len(lines))
    lines = lines[:end]

    # The panic string: the rest of the panic line plus following lines up to a blank line
    # (in the kernel's message buffer, ::msgbuf, the stack follows with no blank line).
    message = [first] if first else []
    index = start + 1
    while index < len(lines) and lines[index].strip() and not _FRAME.match(lines[index]) \
            and not _STACK_NOTE.match(lines[index]):
        message.append(lines[index].strip())
        index += 1
    report = PanicReport(cpu=int(cpu), thread=int(thread, 16), panic_string=" ".join(message))

    _read_stack(lines, index, report, command)
    _read_tail(lines[index:], report)
    return report


def _read_stack(lines: list[str], index: int, report: PanicReport, command: str) -> None:
    """Trap details, then frames, up to the line after the stack (or the sync/dump lines)."""
    in_stack = False
    after_registers = False
    while index < len(lines):
        line = lines[index]
        if not line.strip():
            if in_stack:
                return
            index += 1
            continue
        if _TAIL_START.match(line):
            return
        if in_stack and _REGISTERS.match(line):
            after_registers = True
            index += 1
            continue
        if in_stack and after_registers and _HEX_WORDS.match(line) and not _FRAME.match(line):
            index += 1              # a register line wrapped onto the next line
            continue
        after_registers = False
        if not _ADDRESS_START.match(line):
            if in_stack:
                return
            report.trap_info.append(line.rstrip())
            index += 1
            continue
        frame_text = line
        frame_line = index
        match = _FRAME.match(frame_text)
        while match and not match.group("closed"):
            index += 1
            if index >= len(lines) or not lines[index].strip():
                raise ParseError(command, "stack frame argument list is not closed (truncated?)",
                                 line=lines[frame_line], lineno=frame_line + 1)
            frame_text = f"{frame_text.rstrip()} {lines[index].strip()}"
            match = _FRAME.match(frame_text)
        if not match:
            raise ParseError(command, "truncated or malformed stack frame",
                             line=lines[frame_line], lineno=frame_line + 1)
        report.stack.append(_frame(match, command, lines[frame_line], frame_line))
        in_stack = True
        index += 1


def _frame(match: re.Match, command: str, line: str, lineno: int) -> Frame:
    args_text = match.group("args").strip()
    try:
        args = tuple(int(arg.strip(), 16) for arg in args_text.split(",")) if args_text else ()
    except ValueError:
        raise ParseError(command, "stack frame arguments are not hex numbers",
                         line=line, lineno=lineno + 1) from None
    offset = match.group("offset")
    return Frame(address=int(match.group("fp"), 16), module=match.group("module"),
                 function=match.group("function"),
                 offset=int(offset, 16) if offset is not None else None, args=args)


def _read_tail(lines: list[str], report: PanicReport) -> None:
    """Sync, dump, debugger and reboot lines after the panic string."""
    flat = " ".join(line.strip() for line in lines)
    report.synced = "syncing file systems..." in flat
    report.debugger = "Welcome to kmdb" in flat or "entering debugger" in flat
    report.rebooting = "rebooting..." in flat
    for position, line in enumerate(lines):
        dumping = _DUMPING.search(line)
        if not dumping:
            continue
        after = " ".join(part.strip() for part in lines[position + 1:])
        done = _DUMPED.search(after)
        report.dump = DumpInfo(
            device=dumping.group("device"), offset=int(dumping.group("offset")),
            content=dumping.group("content"),
            pages=int(done.group("pages")) if done else None,
            compression_ratio=float(done.group("ratio")) if done and done.group("ratio") else None,
            succeeded=(done.group("result") == "succeeded") if done else None)
        return
