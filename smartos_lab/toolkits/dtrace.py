"""DTrace (``lab.dtrace``): run D programs for a duration or N events, parsed.

``run`` ends the program for you (a ``tick`` clause after ``duration``
seconds, or a counter after ``until_events`` firings), prints every
aggregation by name at the end, and returns a :class:`DTraceResult` with the
aggregations by name (``"@"`` for the anonymous one), per-interval snapshots
when asked for (``aggregate_interval``), and whatever else dtrace printed.
Compile errors raise :class:`~smartos_lab.parsers.dtrace.DTraceCompileError`
(a :class:`~smartos_lab.errors.DTraceError`) with dtrace's message.

``stream`` runs the program in the background and yields one
:class:`Interval` per ``interval`` seconds, for live plots.
"""
from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace

from ..errors import ConfigError, DTraceError
from ..parsers.dtrace import (
    Aggregation,
    DTraceFault,
    DTraceOutput,
    DTraceSnapshot,
    DTraceStreamParser,
    parse_dtrace_output,
)
from ..parsers.dtrace_list import Probe, parse_dtrace_list
from . import _cmd, dtrace_script
from .base import Toolkit
from .oneliners import one_liner

_OPTION = re.compile(r"[a-z][a-z0-9_]*")
_STARTUP_SECONDS = 60.0      # compiling and enabling probes is slow under emulation


@dataclass
class Interval:
    """The aggregations of one interval (``label``: ``walltimestamp`` in ns, or ``end``)."""

    label: str
    aggregations: dict[str, Aggregation | None]
    output: DTraceOutput            # everything else printed in that interval

    @property
    def timestamp_ns(self) -> int | None:
        return int(self.label) if self.label.isdigit() else None

    def aggregation(self, name: str | None = None) -> Aggregation | None:
        return _pick(self.aggregations, name)


@dataclass
class DTraceResult:
    """One finished dtrace run."""

    program: str                    # the D program as run (with the added clauses)
    command: str                    # the command line run in the guest
    exit_status: int
    text: str                       # everything dtrace printed
    duration: float
    aggregations: dict[str, Aggregation | None] = field(default_factory=dict)
    intervals: list[Interval] = field(default_factory=list)
    output: DTraceOutput = field(default_factory=DTraceOutput)   # lines, records, faults, drops

    def aggregation(self, name: str | None = None) -> Aggregation | None:
        """The aggregation called ``name`` (``"@"``, ``"@lat"``); without a name the only one."""
        return _pick(self.aggregations, name)

    @property
    def lines(self) -> list[str]:
        return self.output.lines

    @property
    def faults(self) -> list[DTraceFault]:
        return self.output.faults


class DTrace(Toolkit):
    """dtrace over a command runner."""

    def command(self, program: str, *, path: str | None = None, run: str | None = None,
                options: dict[str, object] | None = None) -> str:
        """``dtrace -q [-x k=v ...] [-c cmd] (-n program | -s path)``."""
        args: list[str] = ["dtrace", "-q"]
        for key, value in (options or {}).items():
            if not _OPTION.fullmatch(key):
                raise ConfigError(f"invalid dtrace option name {key!r}")
            args += ["-x", f"{key}={_cmd.no_control(str(value), f'option {key}')}"]
        if run is not None:
            args += ["-c", _cmd.no_control(run, "command for -c")]
        if path is not None:
            args += ["-s", path]
        else:
            args += ["-n", program]
        return _cmd.cmd(*args)

    def run(self, script: str, *, duration: float | None = None, until_events: int | None = None,
            timeout: float | None = None, aggregate_interval: float | None = None,
            run: str | None = None, options: dict[str, object] | None = None) -> DTraceResult:
        """Run ``script`` until ``duration`` s, ``until_events`` firings, ``run`` (``-c``)
        exits, or the program calls ``exit()`` itself; at most ``timeout`` seconds.

        ``aggregate_interval`` also prints and clears the aggregations every so many
        seconds: the snapshots are in ``result.intervals`` (the last partial
        interval is in ``result.aggregations``).
        """
        if duration is None and until_events is None and run is None and "exit(" not in script:
            raise ConfigError("give duration, until_events or run (or call exit() in the "
                              "program): otherwise dtrace never ends")
        program = dtrace_script.compose(script, duration=duration, until_events=until_events,
                                        interval=aggregate_interval)
        limit = timeout if timeout is not None else (duration or 0) + _STARTUP_SECONDS
        with self._program_file(program) as path:
            command = self.command(program, path=path, run=run, options=options)
            start = time.monotonic()
            result = self._run(command, limit)
            elapsed = time.monotonic() - start
        text = result.stdout + (("\n" + result.stderr) if result.stderr else "")
        aggregations, intervals, output = split_output(text)
        if result.exit_status != 0 and not aggregations and not intervals:
            _raise_failure(text, result.exit_status)
        return DTraceResult(program, command, result.exit_status, text, elapsed, aggregations,
                            intervals, output)

    def one_liner(self, name: str, *, duration: float = 5.0, **kw) -> DTraceResult:
        """Run a one-liner from :mod:`.oneliners` by name (``syscalls_by_process``, ...)."""
        return self.run(one_liner(name).script, duration=duration, **kw)

    def stream(self, script: str, *, interval: float = 1.0, duration: float | None = None,
               timeout: float | None = None, poll: float | None = None) -> Iterator[Interval]:
        """Run ``script`` in the background; yield an :class:`Interval` every ``interval`` s.

        Ends after ``duration`` s (if given), when dtrace exits, or when the
        caller stops iterating (dtrace is then killed).  ``timeout`` bounds the
        whole stream (default: duration + 60 s, or no bound without duration).
        """
        program = dtrace_script.compose(script, duration=duration, interval=interval, named=False)
        base = _cmd.temp_path("smartos-lab-dtrace")
        script_path, out_path = base + ".d", base + ".out"
        _cmd.write_file(self.runner, script_path, program, self.timeout)
        inner = (f"{self.command(program, path=script_path)} < /dev/null > {_cmd.q(out_path)} "
                 "2>&1 & echo $!")
        started = self._ok(_cmd.cmd("sh", "-c", inner))
        pid = _pid(started.stdout)
        parser = DTraceStreamParser()
        grouper = _Grouper()
        seen_lines = 0
        limit = timeout if timeout is not None else (duration + _STARTUP_SECONDS if duration else None)
        deadline = time.monotonic() + limit if limit else None
        try:
            while True:
                time.sleep(poll if poll is not None else interval)
                alive, new_text, seen_lines = self._poll(pid, out_path, seen_lines)
                for snapshot in parser.feed(new_text):
                    yield from grouper.add(snapshot)
                if not alive:                    # everything it wrote has been read
                    for snapshot in parser.close():
                        yield from grouper.add(snapshot)
                    return
                if deadline is not None and time.monotonic() > deadline:
                    raise DTraceError(f"dtrace stream still running after {limit:.0f} s")
        finally:
            self._run(f"kill {pid} 2>/dev/null; rm -f {_cmd.q(script_path)} {_cmd.q(out_path)}")

    def _poll(self, pid: int, out_path: str, seen: int) -> tuple[bool, str, int]:
        """The output file's complete lines after the first ``seen``, and whether dtrace runs."""
        probe = (f"tail -n +{seen + 1} {_cmd.q(out_path)} 2>/dev/null; "
                 f"if kill -0 {pid} 2>/dev/null; then s={_ALIVE}; else s={_DEAD}; fi; "
                 "printf '\\n%s\\n' \"$s\"")
        text = self._run(probe).stdout.replace("\r\n", "\n")
        for state in (_ALIVE, _DEAD):
            cut = text.rfind("\n" + state)
            if cut >= 0:
                break
        else:
            raise DTraceError(f"unexpected output while polling dtrace: {text[-200:]!r}")
        body = text[:cut]
        lines = body.split("\n") if body else []
        if body.endswith("\n") or (state == _ALIVE and lines):
            lines = lines[:-1]          # the empty tail, or a partial line dtrace is writing
        return state == _ALIVE, "".join(line + "\n" for line in lines), seen + len(lines)

    def _program_file(self, program: str) -> AbstractContextManager[str | None]:
        """Multi-line programs go to a temporary file (``-s``); one-liners use ``-n`` (None)."""
        if "\n" not in program:
            return nullcontext(None)
        return self._guest_file(program + "\n", prefix="smartos-lab-dtrace", suffix=".d")

    def probes(self, description: str | None = None) -> list[Probe]:
        """``dtrace -l [-n description]``: the probes matching ``provider:module:function:name``
        (empty parts match anything; ``[]`` when nothing matches)."""
        args: list[str] = ["dtrace", "-l"]
        if description is not None:
            args += ["-n", _cmd.no_control(description, "probe description")]
        result = self._run(_cmd.cmd(*args))
        if result.exit_status != 0:
            if "does not match any probes" in result.stderr:
                return []
            raise DTraceError(f"dtrace -l failed: {(result.stderr or result.stdout).strip()[-300:]}")
        return parse_dtrace_list(result.stdout)


_ALIVE = "smartos-lab-dtrace-running"
_DEAD = "smartos-lab-dtrace-exited"


class _Grouper:
    """Turns the stream parser's per-aggregation snapshots into :class:`Interval` s."""

    def __init__(self):
        self.aggregations: dict[str, Aggregation | None] = {}
        self.outputs: list[DTraceOutput] = []

    def add(self, snapshot: DTraceSnapshot) -> list[Interval]:
        output = snapshot.output
        if snapshot.label.startswith("@"):
            self.aggregations[snapshot.label] = _merge(output.aggregations)
            output = replace(output, aggregations=[])      # named: not in the rest
        self.outputs.append(output)
        if snapshot.label.startswith("@"):
            return []
        if not snapshot.label.isdigit() and snapshot.label != dtrace_script.END_LABEL:
            return []
        interval = Interval(snapshot.label, self.aggregations, _combine(self.outputs))
        self.aggregations, self.outputs = {}, []
        return [interval]


def split_output(text: str) -> tuple[dict[str, Aggregation | None], list[Interval], DTraceOutput]:
    """Named final aggregations, interval snapshots and the rest, from a run's output.

    Raises the parser's compile errors.
    """
    parser = DTraceStreamParser()
    grouper = _Grouper()
    intervals: list[Interval] = []
    for snapshot in parser.feed(text + "\n") + parser.close():
        intervals += grouper.add(snapshot)
    rest = [i.output for i in intervals] + grouper.outputs
    if parser.trailer is not None:
        rest.append(parser.trailer)
    final: dict[str, Aggregation | None] = {}
    if intervals and intervals[-1].label == dtrace_script.END_LABEL:
        final = intervals.pop().aggregations
    elif grouper.aggregations:                       # killed during the END print
        final = grouper.aggregations
    unnamed = _combine(rest)
    if not final and unnamed.aggregations:           # printed by the user's own printa
        final = {f"#{i}": agg for i, agg in enumerate(unnamed.aggregations)}
    return final, intervals, unnamed


def _merge(aggs: list[Aggregation]) -> Aggregation | None:
    if not aggs:
        return None
    first = aggs[0]
    for other in aggs[1:]:
        first.rows.extend(other.rows)
        first.histograms.extend(other.histograms)
    return first


def _combine(outputs: list[DTraceOutput]) -> DTraceOutput:
    total = DTraceOutput()
    for out in outputs:
        total.enablings += out.enablings
        total.records += out.records
        total.lines += out.lines
        total.faults += out.faults
        total.drops += out.drops
        total.error_counts += out.error_counts
        total.messages += out.messages
        total.aggregations += out.aggregations
        total.interrupted |= out.interrupted
    return total


def _pick(aggregations: dict[str, Aggregation | None], name: str | None) -> Aggregation | None:
    if name is not None:
        key = name if name.startswith(("@", "#")) else "@" + name
        if key not in aggregations:
            raise KeyError(f"no aggregation {key!r}; have {', '.join(aggregations) or 'none'}")
        return aggregations[key]
    present = [a for a in aggregations.values() if a is not None]
    if len(aggregations) > 1:
        raise KeyError(f"several aggregations ({', '.join(aggregations)}): name one")
    return present[0] if present else None


def _raise_failure(text: str, status: int) -> None:
    parse_dtrace_output(text)            # compile and fatal errors raise typed errors here
    raise DTraceError(f"dtrace exited with status {status}: {text.strip()[-500:]}")


def _pid(text: str) -> int:
    for token in reversed(text.split()):
        if token.isdigit():
            return int(token)
    raise DTraceError(f"could not start dtrace in the background: {text.strip()[-200:]}")
