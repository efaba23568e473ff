"""What mdb and kmdb print about a kernel: ``::status``, stacks, ``::msgbuf``; crash
directories; ``modinfo``.

Formats (illumos ``usr/src/cmd/mdb``; examples in the Modular Debugger Guide and
Writing Device Drivers)::

    debugging crash dump vmcore.0 (64-bit) from testsystem        ::status
    operating system: 5.10 Generic (sun4u)                         (then "key: value"
    image uuid: cb6e4932-...                                        lines: image uuid,
    panic message: zero                                             panic message,
    dump content: kernel pages only                                 dump content, ...)

    fffffe00b6e59c60 usb_console_input_enter+0x13(0)               ::stack / $c: frame
    fffffe00b6e59d40 0xfffffffffb84c873()                           pointer, symbol+offset
                                                                    (or an address), args
    MESSAGE                                                        ::msgbuf: a header, then
    SunOS Release 5.11 Version joyent_... 64-bit                    the kernel's messages
    panic[cpu0]/thread=...:                                         (a panic among them)

    bounds  unix.0  vmcore.0  vmdump.1                              ls of a crash directory

     Id Loadaddr   Size Info Rev Module Name                        modinfo(8): Loadaddr is
      5 1081a000   5140   1   1  specfs (filesystem for specfs)     the module's text address
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import ParseError
from .panic import Frame, PanicReport, parse_kernel_panic

STATUS = "mdb ::status"
STACK = "mdb ::stack"
MSGBUF = "mdb ::msgbuf"
MODINFO = "modinfo"
CRASH_DIR = "ls (crash directory)"

_STATUS_FIRST = re.compile(
    r"debugging (?P<what>crash dump|live kernel|core file|process)\s*(?P<file>\S+)?\s*"
    r"\((?P<bits>\d+)-bit\)(?:\s+(?:from|on)\s+(?P<host>\S+))?\s*$")
_KEY_VALUE = re.compile(r"(?P<key>[a-z][a-z ]*[a-z]):\s*(?P<value>.*?)\s*$")
_OS = re.compile(r"(?P<release>\S+)\s+(?P<version>.+?)\s+\((?P<platform>[^)]+)\)$")
_MDB_FRAME = re.compile(
    r"\s*(?P<fp>[0-9a-fA-F]{8,16})\s+"
    r"(?:(?P<module>[\w.$-]+)`)?(?P<function>[\w.$-]+?)(?:\+(?P<offset>(?:0x)?[0-9a-fA-F]+))?"
    r"\((?P<args>[^)]*)\)\s*$")
_DUMP_FILE = re.compile(r"(?P<kind>unix|vmcore|vmdump)\.(?P<n>\d+)")
_MODINFO_HEADER = re.compile(r"\s*Id\s+Loadaddr\s+Size\s+Info\s+Rev\s+Module Name\s*$", re.IGNORECASE)
_MODINFO_ROW = re.compile(
    r"\s*(?P<id>\d+)\s+(?P<loadaddr>[0-9a-fA-F]+)\s+(?P<size>[0-9a-fA-F]+)\s+(?P<info>-|\d+)\s+"
    r"(?P<rev>\d+)\s+(?P<name>\S+)\s+\((?P<desc>.*)\)\s*$")


# --- ::status -----------------------------------------------------------------------------
@dataclass
class MdbStatus:
    """``::status``: what mdb debugs, and the panic it records."""

    target: str                     # "crash dump", "live kernel", ...
    file: str | None                # vmcore.0 (crash dumps)
    bits: int
    host: str | None
    os_release: str | None = None   # 5.11
    os_version: str | None = None   # joyent_20250724T001011Z, omnios-r151030-..., Generic
    platform: str | None = None     # i86pc
    image_uuid: str | None = None
    panic_message: str | None = None
    dump_content: str | None = None
    fields: dict[str, str] = field(default_factory=dict)   # every "key: value" line as printed

    @property
    def is_crash_dump(self) -> bool:
        return self.target == "crash dump"


def parse_mdb_status(text: str, *, command: str = STATUS) -> MdbStatus:
    """Parse ``::status``; lines before its ``debugging ...`` line (mdb notices) are skipped."""
    lines = [line.rstrip() for line in text.splitlines()]
    start = next((i for i, line in enumerate(lines) if _STATUS_FIRST.match(line)), None)
    if start is None:
        raise ParseError(command, "no 'debugging crash dump|live kernel ... (NN-bit)' line")
    first = _STATUS_FIRST.match(lines[start])
    status = MdbStatus(target=first["what"], file=first["file"], bits=int(first["bits"]),
                       host=first["host"])
    for line in lines[start + 1:]:
        if not line.strip():
            continue
        match = _KEY_VALUE.match(line)
        if not match:
            break                   # the next command's output (e.g. a stack) begins here
        status.fields[match["key"]] = match["value"]
    status.panic_message = status.fields.get("panic message")
    status.dump_content = status.fields.get("dump content")
    status.image_uuid = status.fields.get("image uuid")
    os_text = status.fields.get("operating system")
    if os_text:
        match = _OS.match(os_text)
        if match:
            status.os_release, status.os_version, status.platform = match.group(
                "release", "version", "platform")
        else:
            status.os_version = os_text
    return status


# --- ::stack / $c ---------------------------------------------------------------------------
def parse_mdb_stack(text: str, *, command: str = STACK) -> list[Frame]:
    """Frames of ``::stack`` / ``$c`` (innermost first); blank lines skipped, other lines refused."""
    frames: list[Frame] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _MDB_FRAME.match(line)
        if not match:
            raise ParseError(command, "not a stack frame line", line=line, lineno=lineno)
        args_text = match["args"].strip()
        try:
            args = tuple(int(a.strip(), 16) for a in args_text.split(",")) if args_text else ()
        except ValueError:
            raise ParseError(command, "frame arguments are not hex numbers", line=line,
                             lineno=lineno) from None
        offset = match["offset"]
        frames.append(Frame(address=int(match["fp"], 16), module=match["module"],
                            function=match["function"],
                            offset=int(offset, 16) if offset is not None else None, args=args))
    if not frames:
        raise ParseError(command, "no stack frames")
    return frames


# --- ::msgbuf -----------------------------------------------------------------------------------
@dataclass
class MessageBuffer:
    """``::msgbuf``: the kernel's recent console messages, and the panic among them if any."""

    lines: list[str]
    panic: PanicReport | None = None

    @property
    def banner(self) -> str | None:
        """The ``SunOS Release ... Version ...`` line (which platform booted)."""
        return next((line for line in self.lines if line.startswith("SunOS Release ")), None)


def parse_msgbuf(text: str, *, command: str = MSGBUF) -> MessageBuffer:
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[0].strip():
        lines.pop(0)
    if lines and lines[0].strip() == "MESSAGE":
        lines.pop(0)
    panic = None
    if any("panic[cpu" in line for line in lines):
        panic = parse_kernel_panic("\n".join(lines), command=command)
    return MessageBuffer(lines=lines, panic=panic)


# --- crash directory ------------------------------------------------------------------------------
@dataclass(frozen=True)
class DumpFiles:
    """The files of crash dump ``number`` in a crash directory."""

    number: int
    vmdump: bool = False            # compressed dump as savecore leaves it (expand: savecore -vf)
    unix: bool = False              # symbol table saved with an expanded dump
    vmcore: bool = False            # expanded memory image

    @property
    def expanded(self) -> bool:
        return self.unix and self.vmcore


def parse_crash_dir(text: str, *, command: str = CRASH_DIR) -> list[DumpFiles]:
    """Dumps found in ``ls`` output of a crash directory (names in columns or one per line)."""
    found: dict[int, dict[str, bool]] = {}
    for name in text.split():
        match = _DUMP_FILE.fullmatch(name.rstrip("/*@"))
        if match:
            found.setdefault(int(match["n"]), {})[match["kind"]] = True
    return [DumpFiles(number=n, **kinds) for n, kinds in sorted(found.items())]


# --- modinfo ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KernelModule:
    """One ``modinfo`` row: ``loadaddr`` is the module's text address."""

    id: int
    loadaddr: int
    size: int
    info: str
    rev: int
    name: str
    description: str


def parse_modinfo(text: str, *, command: str = MODINFO) -> list[KernelModule]:
    """``modinfo`` rows in order; a module listed twice (two linkages) is kept once."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _MODINFO_HEADER.match(line)), None)
    if start is None:
        raise ParseError(command, "no 'Id Loadaddr Size Info Rev Module Name' header")
    modules: list[KernelModule] = []
    seen: set[tuple[int, str]] = set()
    for lineno, line in enumerate(lines[start + 1:], start + 2):
        if not line.strip():
            continue
        match = _MODINFO_ROW.match(line)
        if not match:
            raise ParseError(command, "not a modinfo row", line=line, lineno=lineno)
        key = (int(match["id"]), match["name"])
        if key in seen:
            continue
        seen.add(key)
        modules.append(KernelModule(id=key[0], loadaddr=int(match["loadaddr"], 16),
                                    size=int(match["size"], 16), info=match["info"],
                                    rev=int(match["rev"]), name=match["name"],
                                    description=match["desc"]))
    if not modules:
        raise ParseError(command, "no module rows")
    return modules
