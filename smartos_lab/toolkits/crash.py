"""Crash dumps of a lab (``lab.crash``): list them, expand them, read them with mdb.

After a panic SmartOS writes the dump to its dump zvol and, on the next boot,
``savecore`` saves it into ``/var/crash/volatile`` as a compressed
``vmdump.N``.  :meth:`Crash.dumps` lists the dumps there (expanding each
``vmdump.N`` into ``unix.N`` + ``vmcore.N`` with ``savecore -vf``, as savecore
itself suggests: "Decompress the crash dump with 'savecore -vf ...'");
:meth:`Crash.analyze` runs ``mdb`` on one (``::status``, ``::panicinfo``,
``::stack``, ``::msgbuf``) and returns the parsed result.  ``::panicinfo`` is
kept as text: no published output was found to check a parser against.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CommandFailed, ConfigError, DumpNotFound, TransportError
from ..machine.result import CommandResult, CommandRunner
from ..parsers.crash import (
    DumpFiles,
    MdbStatus,
    MessageBuffer,
    parse_crash_dir,
    parse_mdb_stack,
    parse_mdb_status,
    parse_msgbuf,
)
from ..parsers.panic import Frame
from . import _cmd

CRASH_DIR = "/var/crash/volatile"
EXPAND_TIMEOUT = 1800.0      # savecore -vf of a few GB under TCG
MDB_TIMEOUT = 600.0


@dataclass
class CrashAnalysis:
    """What mdb says about crash dump ``number``."""

    number: int
    status: MdbStatus
    stack: list[Frame]
    msgbuf: MessageBuffer
    panicinfo: str                  # ::panicinfo as printed
    outputs: dict[str, str] = field(default_factory=dict, repr=False)   # dcmd -> raw output

    @property
    def panic_message(self) -> str | None:
        return self.status.panic_message

    def __str__(self) -> str:
        lines = [f"crash dump {self.number}: {self.status.panic_message or '(no panic message)'}",
                 f"  os        {self.status.os_release or '?'} {self.status.os_version or ''}".rstrip(),
                 f"  content   {self.status.dump_content or '?'}",
                 "  stack"]
        lines += [f"    {frame.symbol}" for frame in self.stack]
        if self.msgbuf.banner:
            lines.append(f"  booted    {self.msgbuf.banner}")
        return "\n".join(lines)


class Crash:
    """The crash dumps in one lab (over its command runner: SSH when connected)."""

    def __init__(self, runner: CommandRunner, directory: str = CRASH_DIR, *, name: str = "lab"):
        self.runner = runner
        self.directory = _cmd.no_control(directory, "crash directory")
        self.name = name

    def dumps(self, *, expand: bool = True) -> list[DumpFiles]:
        """The dumps in the crash directory; ``expand`` turns each ``vmdump.N`` into unix.N + vmcore.N."""
        listing = self.runner.run(_cmd.cmd("ls", "-1", self.directory))
        if listing.exit_status != 0:
            if "No such file" in listing.stdout + listing.stderr:
                return []
            raise CommandFailed(listing)
        found = parse_crash_dir(listing.stdout)
        if not expand:
            return found
        expanded = []
        for dump in found:
            if dump.vmdump and not dump.expanded:
                self._expand(dump.number)
                dump = DumpFiles(dump.number, vmdump=True, unix=True, vmcore=True)
            expanded.append(dump)
        return expanded

    def analyze(self, number: int | None = None) -> CrashAnalysis:
        """mdb's view of dump ``number`` (default: the newest)."""
        dumps = self.dumps()
        if not dumps:
            raise DumpNotFound(f"lab {self.name} has no crash dumps in {self.directory}")
        if number is None:
            number = dumps[-1].number
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise ConfigError(f"a dump number is a whole number >= 0, got {number!r}")
        if number not in {d.number for d in dumps}:
            have = ", ".join(str(d.number) for d in dumps)
            raise DumpNotFound(f"no crash dump {number} in lab {self.name}:{self.directory} "
                               f"(dumps there: {have})")
        outputs = {dcmd: self._mdb(number, dcmd).stdout
                   for dcmd in ("::status", "::panicinfo", "::stack", "::msgbuf")}
        return CrashAnalysis(
            number=number,
            status=parse_mdb_status(outputs["::status"], command=f"mdb ::status (dump {number})"),
            stack=parse_mdb_stack(outputs["::stack"], command=f"mdb ::stack (dump {number})"),
            msgbuf=parse_msgbuf(outputs["::msgbuf"], command=f"mdb ::msgbuf (dump {number})"),
            panicinfo=outputs["::panicinfo"], outputs=outputs)

    def fetch(self, number: int, local_dir: str | Path, getter) -> list[Path]:
        """Copy unix.N and vmcore.N to ``local_dir`` with ``getter(remote, local)`` (the lab's SSH
        ``get``: a dump is far too big for the serial console)."""
        if getattr(self.runner, "transport", "ssh") != "ssh":
            raise TransportError(f"crash dump {number} of lab {self.name} needs SSH to be copied "
                                 "(it is too big for the serial console); SSH is not connected")
        if number not in {d.number for d in self.dumps()}:
            raise DumpNotFound(f"no crash dump {number} in lab {self.name}:{self.directory}")
        local = Path(local_dir)
        local.mkdir(parents=True, exist_ok=True)
        copied = []
        for name in (f"unix.{number}", f"vmcore.{number}"):
            getter(f"{self.directory}/{name}", local / name)
            copied.append(local / name)
        return copied

    # --- helpers ----------------------------------------------------------------------------
    def _expand(self, number: int) -> CommandResult:
        vmdump = f"{self.directory}/vmdump.{number}"
        return self.runner.run(_cmd.cmd("savecore", "-vf", vmdump, self.directory),
                               timeout=EXPAND_TIMEOUT).check()

    def _mdb(self, number: int, dcmd: str) -> CommandResult:
        result = self.runner.run(
            _cmd.cmd("mdb", "-e", dcmd, f"{self.directory}/unix.{number}",
                     f"{self.directory}/vmcore.{number}"), timeout=MDB_TIMEOUT)
        return result.check()
