"""dtrace(8) output: enabling headers, trace records, aggregations, histograms, errors.

What ``dtrace`` prints (libdtrace ``dt_consume.c`` / ``dt_aggregate.c``):

* ``dtrace: script 'x.d' matched 3 probes`` / ``dtrace: description 'p' matched 1 probe``.
* Without ``-q``: a ``CPU  ID  FUNCTION:NAME`` header, then one record per firing
  (``  0   3297   exec_common:exec-success   man ls``); ``stack()`` frames follow
  their record on indented lines.
* Aggregations, by default at exit or by ``printa()``: each ``printa`` starts
  with a newline; a row is the keys (strings ``"  %-50s"``, integers
  ``" %16d"``) then the value ``" %16d"``.  count/sum/avg/min/max/stddev all
  print one integer, so the function is not visible in the output: such an
  aggregation has ``kind == "scalar"``.
* ``quantize``/``lquantize``/``llquantize``: the key line(s), then
  ``value  ---- Distribution ---- count`` and one row per bucket
  (``  8192 |@@@@     840``), ``< N`` / ``>= N`` for lquantize's edge
  buckets; a blank line ends the histogram.
* ``stack()``/``ustack()`` keys print one frame a line (``genunix`read+0x1d4``,
  or a bare hex address) and the value alone on the last line.
* Messages on stderr: runtime faults (``dtrace: error on enabled probe ID 1 (ID
  14: syscall::open:entry): invalid address (0x0) in action #1 at DIF offset
  28``), drops (``dtrace: 11 drops on CPU 0``, ``dtrace: 38 speculative
  drops``, ``dtrace: 5 dynamic variable drops``), and fatal errors
  (``dtrace: failed to compile script ...``, ``dtrace: invalid probe
  specifier ...``).

How output is split (the format itself carries no aggregation names):
blank lines separate ``printa`` blocks, so each block of scalar rows is one
:class:`Aggregation`; rows whose number of keys changes start a new one.
Histograms (and stack-keyed rows) that follow each other separated only by
blank lines form one aggregation.  Two aggregations with the same key shape
printed back to back by the default exit-time print (no blank line between)
cannot be told apart: print them with ``printa`` or a ``printf`` header.
Keys are split on runs of two or more spaces (a key holding such a run is
split too); keys are kept as text.  Lines at column 0 that are not dtrace
messages, and indented lines that do not end in an integer, are printed
output (``DTraceOutput.lines``).  Trace records are recognised only after the
``CPU ID FUNCTION:NAME`` header.

Documentation wraps long message lines; a fault or error message continued on
the next line (after a trailing ``\\``, or lacking its ``in action``/``in
predicate`` part) is joined back.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from ..errors import DTraceError, ParseError

COMMAND = "dtrace"


class DTraceCompileError(DTraceError):
    """dtrace refused the D program: ``dtrace: failed to compile script X: line N: msg``.

    ``script`` is the script name, ``line`` the D source line (None if not
    given), ``message`` the compiler's message (continuation lines joined with
    newlines), ``text`` the lines as printed.
    """

    def __init__(self, message: str, *, script: str | None = None, line: int | None = None,
                 text: str = ""):
        self.script = script
        self.line = line
        self.message = message
        self.text = text
        super().__init__(self._summary())

    def _summary(self) -> str:
        where = self.script or "D program"
        if self.line is not None:
            where += f", line {self.line}"
        return f"dtrace could not compile {where}: {self.message}"


class DTraceProbeSpecError(DTraceCompileError):
    """``dtrace: invalid probe specifier SPEC: msg`` (also how ``-n`` programs fail to compile)."""

    def __init__(self, message: str, *, spec: str, text: str = ""):
        self.spec = spec
        super().__init__(message, text=text)

    def _summary(self) -> str:
        return f"dtrace: invalid probe specifier {self.spec}: {self.message}"


@dataclass(frozen=True, slots=True)
class Enabling:
    """``dtrace: script './x.d' matched 2 probes``: kind is ``script`` or ``description``."""

    kind: str
    name: str
    probes: int


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One probe firing printed without ``-q``.  ``extra``: the indented lines
    printed under it (e.g. ``stack()`` frames)."""

    cpu: int
    probe_id: int
    probe: str          # FUNCTION:NAME as printed, e.g. "open:entry" or ":ERROR"
    data: str
    extra: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AggRow:
    """One aggregation row: ``keys`` (text, or a tuple of frames for a stack key) and the value."""

    keys: tuple
    value: int


@dataclass(frozen=True, slots=True)
class Bucket:
    """A histogram bucket ``lower <= x < upper``; None is unbounded: the ``< N`` and
    ``>= N`` rows of lquantize, and the last printed row (its upper bound is not
    printed).  ``label`` is the value column as printed (``< 0``, ``128``, ``>= 1000``)."""

    lower: int | None
    upper: int | None
    count: int
    label: str


@dataclass(frozen=True, slots=True)
class Histogram:
    """A quantize/lquantize/llquantize distribution for one key tuple."""

    keys: tuple
    buckets: tuple[Bucket, ...]

    @property
    def total(self) -> int:
        return sum(b.count for b in self.buckets)

    @property
    def counts(self) -> list[int]:
        return [b.count for b in self.buckets]

    @property
    def labels(self) -> list[str]:
        return [b.label for b in self.buckets]


@dataclass(slots=True)
class Aggregation:
    """One printed aggregation.

    ``kind`` is ``scalar`` (count/sum/avg/min/max/stddev: one integer per row,
    in ``rows``) or ``quantize``/``lquantize``/``llquantize`` (in
    ``histograms``).  The histogram kind is inferred from the bucket values: a
    histogram whose rows fit both quantize and lquantize (e.g. 0, 1, 2) is
    reported as ``quantize``.  ``name`` is None unless the caller knows it
    (the output does not print it).
    """

    kind: str
    rows: list[AggRow] = field(default_factory=list)
    histograms: list[Histogram] = field(default_factory=list)
    name: str | None = None

    def as_dict(self) -> dict:
        """``{key: value}`` for scalar rows; a one-element key tuple is unwrapped."""
        return {_unwrap(r.keys): r.value for r in self.rows}

    def top(self, n: int) -> list[AggRow]:
        """The n rows with the largest values, largest first."""
        return sorted(self.rows, key=lambda r: r.value, reverse=True)[:n]


@dataclass(frozen=True, slots=True)
class DTraceFault:
    """A runtime error reported for one firing (``dtrace: error on enabled probe ...``)."""

    enabled_id: int
    probe_id: int
    probe: str                  # e.g. "syscall::open:entry"
    message: str                # e.g. "invalid address (0x0) in action #1 at DIF offset 28"
    fault: str                  # e.g. "invalid address", "illegal operation"
    address: int | None
    action: int | None          # None when the fault is in the predicate
    dif_offset: int | None
    in_predicate: bool = False


@dataclass(frozen=True, slots=True)
class DTraceDrop:
    """``dtrace: N [kind] drop(s) [on CPU M] [detail]``; kind ``principal`` for plain drops."""

    count: int
    kind: str                   # "principal", "aggregation", "dynamic variable", "speculative", ...
    cpu: int | None
    detail: str = ""            # e.g. "with non-empty dirty list"


@dataclass(frozen=True, slots=True)
class ErrorCount:
    """``dtrace: 57 errors`` / ``dtrace: 1 error on CPU 2``: faults counted, not printed."""

    count: int
    cpu: int | None


@dataclass(slots=True)
class DTraceOutput:
    """Everything recognised in one dtrace run's output."""

    enablings: list[Enabling] = field(default_factory=list)
    records: list[TraceRecord] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    aggregations: list[Aggregation] = field(default_factory=list)
    faults: list[DTraceFault] = field(default_factory=list)
    drops: list[DTraceDrop] = field(default_factory=list)
    error_counts: list[ErrorCount] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)   # other "dtrace: ..." lines
    interrupted: bool = False                           # a ^C was echoed

    @property
    def probes_matched(self) -> int | None:
        if not self.enablings:
            return None
        return sum(e.probes for e in self.enablings)

    @property
    def histograms(self) -> list[Histogram]:
        return [h for a in self.aggregations for h in a.histograms]

    @property
    def dropped(self) -> int:
        return sum(d.count for d in self.drops)


# --- line patterns -------------------------------------------------------------------
_BLANK = re.compile(r"\s*$")
_CTRL_C = re.compile(r"\s*\^C\s*$")
_MSG = re.compile(r"\s*dtrace: (.*?)\s*$")
_PROBE_HEADER = re.compile(r"\s*CPU\s+ID\s+FUNCTION:NAME\s*$")
_HIST_HEADER = re.compile(r"\s*value\s+-+ Distribution -+\s+count\s*$")
_HIST_ROW = re.compile(r"\s*(?:(<|>=)\s*)?(-?\d+) (?:[@ ]*\|[@ ]*?) ?\s*(-?\d+)\s*$")
_HIST_BAR = re.compile(r"([@ ]*)\|([@ ]*)")        # 40 columns of '@'/' ' around one '|'

_RECORD = re.compile(r"\s*(\d+)\s+(\d+)\s+(\S*:\S*)(?:\s+(.*?))?\s*$")
_ROW = re.compile(r"(\s+)(?:(.*?)\s+)?(-?\d+)\s*$")
_BARE_VALUE = re.compile(r"\s+-?\d+\s*$")
_KEY_SPLIT = re.compile(r"\s{2,}")
_ENDS_IN_NUMBERISH = re.compile(r".*\s(-?\d[^\s]*)\s*$")
_HEXFRAME = re.compile(r"\s+(?:0x)?[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\s*$")

_ENABLING = re.compile(r"(script|description) '(.*)' matched (\d+) probes?$")
_FAULT = re.compile(r"error on enabled probe ID (\d+) \(ID (\d+): ([^)]*)\):\s*(.*)$")
_FAULT_COMPLETE = re.compile(r"\bin (?:action #\d+|predicate)\b")
_DROP = re.compile(r"(\d+) (?:(.+?) )?drops?(?: on CPU (\d+))?(?: (.+))?$")
_ERRCOUNT = re.compile(r"(\d+) errors?(?: on CPU (\d+))?$")
_COMPILE = re.compile(r"failed to compile script (.+?): (?:line (\d+):)?\s*(.*)$")
_PROBESPEC = re.compile(r"invalid probe specifier (.*)$")
_FATAL = re.compile(r"(failed to initialize dtrace|could not enable tracing|no probes specified"
                    r"|failed to enable|failed to control pid|failed to grab pid)\b")


def parse_dtrace_output(text: str, *, command: str = COMMAND) -> DTraceOutput:
    """Parse what ``dtrace`` printed (stdout and stderr together, ANSI-free).

    Raises :class:`DTraceCompileError` / :class:`DTraceProbeSpecError` when
    dtrace rejected the program, :class:`DTraceError` for other fatal dtrace
    errors, and :class:`ParseError` (naming ``command`` and the line) for a
    histogram or aggregation row that is not understood.  Runtime faults and
    drops are collected in the result.
    """
    return _Parser(text.splitlines(), command).run()


def parse_printa(text: str, fmt: str, *, name: str | None = None,
                 command: str = COMMAND) -> Aggregation:
    """Rows printed by ``printa(fmt, @agg)`` (scalar aggregations).

    Every ``%...`` conversion without ``@`` is a key, kept as printed
    (stripped); the ``%@`` conversion is the value.  Lines before the first
    and after the last matching record (headers, ``^C``) are ignored; a
    non-blank line between records raises :class:`ParseError`.  Histogram
    values (``%@d`` of a quantize) and ``%k`` stacks are not supported.
    """
    pattern, value_base = _printa_regex(fmt)
    rows: list[AggRow] = []
    spans: list[tuple[int, int]] = []
    for match in pattern.finditer(text):
        groups = match.groupdict()
        keys = tuple(groups[k].strip() for k in sorted((g for g in groups if g.startswith("k")),
                                                       key=lambda g: int(g[1:])))
        raw = groups["v"].strip()
        rows.append(AggRow(keys, int(raw, value_base)))
        spans.append(match.span())
    if not rows:
        raise ParseError(command, f"no line matches the printa format {fmt!r}")
    for (_, end), (start, _) in pairwise(spans):
        gap = text[end:start]
        if gap.strip():
            bad = next(line for line in gap.splitlines() if line.strip())
            raise ParseError(command, f"line between printa records does not match {fmt!r}",
                             line=bad, lineno=text.count("\n", 0, end + gap.index(bad)) + 1)
    return Aggregation(kind="scalar", rows=rows, name=name)


# --- interval snapshots ----------------------------------------------------------------
TICK_MARKER = re.compile(r"^=== tick (?P<label>\S+)\s*$")


@dataclass(slots=True)
class DTraceSnapshot:
    """The output of one interval of a tick loop.  ``timestamp_ns`` is the label
    read as an integer (``walltimestamp`` is nanoseconds since the epoch), else None."""

    index: int
    label: str
    output: DTraceOutput

    @property
    def timestamp_ns(self) -> int | None:
        return int(self.label) if self.label.lstrip("-").isdigit() else None


class DTraceStreamParser:
    """Split a running dtrace's output into per-interval snapshots, as it arrives.

    The expected convention (``marker_at="end"``, the default) is a tick clause
    that prints its aggregations, clears them, then prints a marker line::

        tick-1s
        {
                printa(@lat);
                trunc(@lat);
                printf("=== tick %d\\n", walltimestamp);
        }

    ``feed(chunk)`` returns the snapshots completed by that chunk: with
    ``marker_at="end"`` the text before each marker is that interval's output
    (the first one also holds the ``dtrace: script ... matched`` header), so a
    snapshot is ready as soon as its marker arrives.  Scripts that print a
    header line *before* each interval (e.g. a ``%Y`` timestamp) use
    ``marker_at="start"`` and a ``marker`` regex matching that line; the text
    before the first marker is then kept in :attr:`preamble`, and each snapshot
    is complete when the next marker arrives or :meth:`close` is called.  A
    marker regex may name a ``label`` group; otherwise the whole line is the
    label.  Errors raise like :func:`parse_dtrace_output` when the text holding
    them is parsed: at the next marker, or at :meth:`close` (dtrace exits after a
    compile error, so no marker follows it).
    """

    def __init__(self, *, marker: re.Pattern | str = TICK_MARKER, marker_at: str = "end",
                 command: str = COMMAND):
        if marker_at not in ("end", "start"):
            raise ValueError("marker_at must be 'end' or 'start'")
        self.marker = re.compile(marker) if isinstance(marker, str) else marker
        self.marker_at = marker_at
        self.command = command
        self.preamble: DTraceOutput | None = None
        self.trailer: DTraceOutput | None = None
        self._partial = ""
        self._lines: list[str] = []
        self._label: str | None = None      # label of the interval being read (marker_at="start")
        self._count = 0

    def feed(self, chunk: str) -> list[DTraceSnapshot]:
        text = self._partial + chunk
        *complete, self._partial = text.split("\n")
        done: list[DTraceSnapshot] = []
        for line in complete:
            match = self.marker.match(line.rstrip("\r"))
            if not match:
                self._lines.append(line)
                continue
            label = match.groupdict().get("label") or line.strip()
            if self.marker_at == "end":
                done.append(self._snapshot(label))
            else:
                if self._label is None:
                    self.preamble = parse_dtrace_output("\n".join(self._lines), command=self.command)
                    self._lines = []
                else:
                    done.append(self._snapshot(self._label))
                self._label = label
        return done

    def close(self) -> list[DTraceSnapshot]:
        """End of output: the interval still open (``marker_at="start"``) becomes a
        snapshot; text after the last ``end`` marker (e.g. the exit-time print) is
        parsed into :attr:`trailer` (into :attr:`preamble` if no marker came)."""
        if self._partial:
            self._lines.append(self._partial)
            self._partial = ""
        if self.marker_at == "start" and self._label is not None:
            return [self._snapshot(self._label)]
        rest = parse_dtrace_output("\n".join(self._lines), command=self.command)
        self._lines = []
        if self.marker_at == "start":
            self.preamble = rest
        else:
            self.trailer = rest
        return []

    def _snapshot(self, label: str) -> DTraceSnapshot:
        output = parse_dtrace_output("\n".join(self._lines), command=self.command)
        self._lines = []
        snapshot = DTraceSnapshot(self._count, label, output)
        self._count += 1
        return snapshot


def parse_dtrace_ticks(text: str, **options) -> list[DTraceSnapshot]:
    """All interval snapshots of a finished tick-loop run (see :class:`DTraceStreamParser`)."""
    parser = DTraceStreamParser(**options)
    return parser.feed(text) + parser.close()


# --- the parser ------------------------------------------------------------------------
class _Parser:
    def __init__(self, lines: Sequence[str], command: str):
        self.lines = [line.rstrip("\r") for line in lines]
        self.command = command
        self.out = DTraceOutput()
        self.i = 0
        self.records_on = False
        self.paragraph: list[tuple[int, str]] = []   # pending text lines (lineno, line)
        # The last stack-row or histogram aggregation: a following block of the same
        # shape (after blank lines only) extends it.
        self.group: Aggregation | None = None
        self.group_shape = ""
        self.group_kinds: set[str] = set()

    def error(self, message: str, lineno: int) -> ParseError:
        return ParseError(self.command, message, line=self.lines[lineno], lineno=lineno + 1)

    def run(self) -> DTraceOutput:
        lines = self.lines
        while self.i < len(lines):
            line = lines[self.i]
            if _BLANK.match(line):
                self.flush_paragraph()
                self.i += 1
                continue
            if _CTRL_C.match(line):
                self.flush_paragraph(close_group=True)
                self.out.interrupted = True
                self.i += 1
                continue
            msg = _MSG.match(line)
            if msg:
                self.flush_paragraph(close_group=True)
                self.message(msg.group(1))
                continue
            if _PROBE_HEADER.match(line):
                self.flush_paragraph(close_group=True)
                self.records_on = True
                self.i += 1
                continue
            if _HIST_HEADER.match(line):
                self.histogram()
                continue
            if _is_histogram_row(line):
                raise self.error("histogram row without a 'value ---- Distribution ---- count' "
                                 "header", self.i)
            if self.records_on:
                rec = _RECORD.match(line)
                if rec:
                    self.flush_paragraph(close_group=True)
                    self.record(rec)
                    continue
            self.paragraph.append((self.i, line))
            self.i += 1
        self.flush_paragraph(close_group=True)
        return self.out

    # -- dtrace: messages --
    def message(self, body: str) -> None:
        start = self.i
        self.i += 1
        body = self.join_backslashes(body)
        fault = _FAULT.match(body)
        if fault:
            while (not _FAULT_COMPLETE.search(body) and self.i < len(self.lines)
                   and self.is_continuation(self.lines[self.i])):
                body = f"{body} {self.lines[self.i].strip()}"
                self.i += 1
                body = self.join_backslashes(body)
                fault = _FAULT.match(body)
            self.out.faults.append(_fault(fault))
            return
        compile_error = _COMPILE.match(body)
        if compile_error:
            script, line, first = compile_error.groups()
            message = self.gather_message(first)
            raise DTraceCompileError(message, script=script,
                                     line=int(line) if line else None,
                                     text="\n".join(self.lines[start:self.i]))
        probespec = _PROBESPEC.match(body)
        if probespec:
            rest = self.gather_message(probespec.group(1))
            spec, _, message = rest.partition(": ")
            raise DTraceProbeSpecError(message.strip(), spec=spec,
                                       text="\n".join(self.lines[start:self.i]))
        if _FATAL.match(body):
            message = self.gather_message(body)
            raise DTraceError(f"dtrace: {message}")
        enabling = _ENABLING.match(body)
        if enabling:
            kind, name, probes = enabling.groups()
            self.out.enablings.append(Enabling(kind, name, int(probes)))
            return
        drop = _DROP.match(body)
        if drop:
            count, kind, cpu, detail = drop.groups()
            self.out.drops.append(DTraceDrop(int(count), kind or "principal",
                                             int(cpu) if cpu else None, detail or ""))
            return
        errors = _ERRCOUNT.match(body)
        if errors:
            count, cpu = errors.groups()
            self.out.error_counts.append(ErrorCount(int(count), int(cpu) if cpu else None))
            return
        self.out.messages.append(body)

    def join_backslashes(self, body: str) -> str:
        while body.endswith("\\") and self.i < len(self.lines):
            body = f"{body[:-1].rstrip()} {self.lines[self.i].strip()}"
            self.i += 1
        return body

    def is_continuation(self, line: str) -> bool:
        return not (_BLANK.match(line) or _MSG.match(line) or _CTRL_C.match(line)
                    or _PROBE_HEADER.match(line) or _HIST_HEADER.match(line))

    def gather_message(self, first: str) -> str:
        """The message of a fatal error: its first line plus continuation lines."""
        parts = [first.strip()] if first.strip() else []
        while self.i < len(self.lines) and self.is_continuation(self.lines[self.i]):
            piece = self.lines[self.i].strip()
            self.i += 1
            if parts and parts[-1].endswith("\\"):
                parts[-1] = f"{parts[-1][:-1].rstrip()} {piece}"
            else:
                parts.append(piece)
        if parts and parts[-1].endswith("\\"):
            parts[-1] = parts[-1][:-1].rstrip()
        return "\n".join(parts)

    # -- trace records --
    def record(self, match: re.Match) -> None:
        cpu, probe_id, probe, data = match.groups()
        indent = len(self.lines[self.i]) - len(self.lines[self.i].lstrip())
        self.i += 1
        extra = []
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if _BLANK.match(line) or _MSG.match(line) or _CTRL_C.match(line) or _RECORD.match(line):
                break
            if len(line) - len(line.lstrip()) <= indent + 2:
                break
            extra.append(line.strip())
            self.i += 1
        self.out.records.append(TraceRecord(int(cpu), int(probe_id), probe, data or "", tuple(extra)))

    # -- histograms --
    def histogram(self) -> None:
        header = self.i
        key_lines = [line for _, line in self.paragraph]
        self.paragraph = []
        keys = _parse_key_lines(key_lines)
        self.i += 1
        rows: list[tuple[str | None, int, int, int]] = []     # (edge, value, count, lineno)
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if _BLANK.match(line) or _CTRL_C.match(line) or _MSG.match(line):
                break
            match = _HIST_ROW.match(line)
            if not match:
                raise self.error("not a histogram row (expected 'VALUE |@@@  COUNT')", self.i)
            edge, value, count = match.groups()
            rows.append((edge, int(value), int(count), self.i))
            self.i += 1
        if not rows:
            raise self.error("histogram header without rows", header)
        histogram, kinds = _build_histogram(keys, rows, self)
        self.add_block("histogram", kinds, histograms=[histogram])

    # -- scalar rows, stack rows and printed lines --
    def flush_paragraph(self, close_group: bool = False) -> None:
        paragraph, self.paragraph = self.paragraph, []
        if paragraph:
            self.scalar_paragraph(paragraph)
        if close_group:
            self.group = None

    def scalar_paragraph(self, paragraph: list[tuple[int, str]]) -> None:
        texts = [line for _, line in paragraph]
        if len(texts) >= 2 and _BARE_VALUE.match(texts[-1]) and any(_is_frame_text(t) for t in texts[:-1]):
            keys = _parse_key_lines(texts[:-1])
            self.add_block("stack", {"scalar"}, rows=[AggRow(keys, int(texts[-1]))])
            return
        block: list[AggRow] = []
        rows = [_row(line) for line in texts]
        has_rows = any(row is not None for row in rows)
        for (lineno, line), row in zip(paragraph, rows):
            if row is None:
                if has_rows and line[:1].isspace() and _ENDS_IN_NUMBERISH.match(line):
                    raise self.error("aggregation row whose value is not an integer", lineno)
                if block:
                    self.add_block("rows", {"scalar"}, rows=block)
                    block = []
                self.group = None
                self.out.lines.append(line.rstrip())
                continue
            if block and len(block[-1].keys) != len(row.keys):
                self.add_block("rows", {"scalar"}, rows=block)
                block = []
                self.group = None
            block.append(row)
        if block:
            self.add_block("rows", {"scalar"}, rows=block)

    def add_block(self, shape: str, kinds: set[str], *, rows: Sequence[AggRow] = (),
                  histograms: Sequence[Histogram] = ()) -> None:
        """Extend the open aggregation (stack rows / histograms after blank lines) or start one."""
        group = self.group
        if (group is None or shape == "rows" or self.group_shape != shape
                or _key_count(group) != _key_count_of(rows, histograms)
                or not self.group_kinds & kinds):
            group = Aggregation(kind="scalar")
            self.out.aggregations.append(group)
            self.group_kinds = set(kinds)
        else:
            self.group_kinds &= kinds
        group.rows.extend(rows)
        group.histograms.extend(histograms)
        group.kind = _pick_kind(self.group_kinds)
        self.group = None if shape == "rows" else group
        self.group_shape = shape


def _key_count(group: Aggregation) -> int:
    if group.rows:
        return len(group.rows[0].keys)
    return len(group.histograms[0].keys)


def _key_count_of(rows: Sequence[AggRow], histograms: Sequence[Histogram]) -> int:
    return len(rows[0].keys) if rows else len(histograms[0].keys)


def _pick_kind(kinds: set[str]) -> str:
    for kind in ("scalar", "quantize", "lquantize", "llquantize"):
        if kind in kinds:
            return kind
    return "llquantize"


def _is_histogram_row(line: str) -> bool:
    """A bucket row as dtrace prints it (a 40-column bar), outside any histogram."""
    if not _HIST_ROW.match(line):
        return False
    bar = _HIST_BAR.search(line)
    return bar is not None and len(bar.group(1)) + len(bar.group(2)) >= 40


def _row(line: str) -> AggRow | None:
    """A scalar row: indented keys and an integer value at the end."""
    match = _ROW.fullmatch(line)
    if not match:
        return None
    _, keys, value = match.groups()
    if keys is None:
        return AggRow((), int(value))
    return AggRow(tuple(_KEY_SPLIT.split(keys.strip())), int(value))


def _is_frame_text(line: str) -> bool:
    return "`" in line or bool(_HEXFRAME.fullmatch(line))


def _parse_key_lines(lines: Iterable[str]) -> tuple:
    """Key tuple from the key line(s): deep-indented single-token lines are stack frames."""
    keys: list = []
    frames: list[str] = []
    for line in lines:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if indent >= 8 and not _KEY_SPLIT.search(stripped):
            frames.append(stripped)
            continue
        if frames:
            keys.append(tuple(frames))
            frames = []
        keys.extend(_KEY_SPLIT.split(stripped))
    if frames:
        keys.append(tuple(frames))
    return tuple(keys)


def _build_histogram(keys: tuple, rows, parser: _Parser) -> tuple[Histogram, set[str]]:
    """Buckets from (edge, value, count, lineno) rows; each row's upper bound is the next
    row's value.  Values must increase (the row after ``< N`` starts at N)."""
    last = len(rows) - 1
    for index, (edge, value, _, lineno) in enumerate(rows):
        if edge == "<" and index != 0:
            raise parser.error("'< N' row must be the first histogram row", lineno)
        if edge == ">=" and index != last:
            raise parser.error("'>= N' row must be the last histogram row", lineno)
        if index:
            previous_edge, previous = rows[index - 1][:2]
            if value < previous or (value == previous and previous_edge != "<"):
                raise parser.error("histogram rows are not in increasing order", lineno)
    buckets = []
    for index, (edge, value, count, _) in enumerate(rows):
        if edge == "<":
            buckets.append(Bucket(None, value, count, f"< {value}"))
        elif edge == ">=":
            buckets.append(Bucket(value, None, count, f">= {value}"))
        else:
            upper = rows[index + 1][1] if index < last else None
            buckets.append(Bucket(value, upper, count, str(value)))
    return Histogram(keys, tuple(buckets)), _histogram_kinds(rows)


def _histogram_kinds(rows) -> set[str]:
    plain = [value for edge, value, _, _ in rows if edge is None]
    has_edges = any(edge for edge, _, _, _ in rows)
    steps = {b - a for a, b in pairwise(plain)}
    linear = len(steps) <= 1
    kinds: set[str] = set()
    if not has_edges and all(_is_quantize_step(a, b) for a, b in pairwise(plain)) \
            and all(_is_quantize_value(v) for v in plain):
        kinds.add("quantize")
    if linear:
        kinds.add("lquantize")
    if not kinds or has_edges:
        kinds.add("llquantize")
    return kinds


def _is_quantize_value(value: int) -> bool:
    magnitude = abs(value)
    return magnitude == 0 or magnitude & (magnitude - 1) == 0


def _is_quantize_step(a: int, b: int) -> bool:
    """b follows a in quantize's bucket sequence ... -2, -1, 0, 1, 2, 4 ..."""
    if a < 0:
        return b == (a // 2 if a < -1 else 0)
    if a == 0:
        return b == 1
    return b == a * 2


def _fault(match: re.Match) -> DTraceFault:
    enabled, probe_id, probe, message = match.groups()
    address = re.search(r"\((0x[0-9a-fA-F]+)\)", message)
    action = re.search(r"in action #(\d+)", message)
    offset = re.search(r"at DIF offset (\d+)", message)
    kind = re.split(r" \(0x| in action| in predicate| at DIF", message, maxsplit=1)[0]
    return DTraceFault(
        enabled_id=int(enabled), probe_id=int(probe_id), probe=probe, message=message,
        fault=kind.strip(), address=int(address.group(1), 16) if address else None,
        action=int(action.group(1)) if action else None,
        dif_offset=int(offset.group(1)) if offset else None,
        in_predicate=" in predicate" in message)


def _unwrap(keys: tuple):
    return keys[0] if len(keys) == 1 else keys


# --- printa formats ---------------------------------------------------------------------
_CONVERSION = re.compile(r"%(?P<spec>[-+ #0@]*(?:\d+|\*)?@?(?:\.(?:\d+|\*))?@?(?:\d+)?"
                         r"(?:hh|h|ll|l|L|z|j|t)?)(?P<conv>[a-zA-Z%])")
_CONV_PATTERNS = {
    "d": r"-?\d+", "i": r"-?\d+", "u": r"\d+", "x": r"(?:0[xX])?[0-9a-fA-F]+",
    "X": r"(?:0[xX])?[0-9a-fA-F]+", "o": r"[0-7]+", "p": r"(?:0[xX])?[0-9a-fA-F]+",
    "c": r".", "s": r".+?", "S": r".+?", "a": r"\S+", "A": r"\S+",
    "e": r"-?[\d.]+(?:[eE][-+]?\d+)?", "f": r"-?[\d.]+", "g": r"-?[\d.eE+-]+",
    "Y": r"\d{4} \w{3} +\d+ \d\d:\d\d:\d\d",
}


def _printa_regex(fmt: str) -> tuple[re.Pattern, int]:
    parts: list[str] = [r"^[ \t]*"]
    position = 0
    key_index = 0
    value_base = None
    for match in _CONVERSION.finditer(fmt):
        parts.append(_literal(fmt[position:match.start()]))
        position = match.end()
        conv = match.group("conv")
        if conv == "%":
            parts.append("%")
            continue
        if conv not in _CONV_PATTERNS:
            raise ValueError(f"printa conversion %{conv} is not supported: {fmt!r}")
        body = _CONV_PATTERNS[conv]
        if "@" in match.group("spec"):
            if value_base is not None:
                raise ValueError(f"printa format has more than one %@ conversion: {fmt!r}")
            if conv not in "diuxXo":
                raise ValueError(f"printa value conversion %@{conv} is not supported: {fmt!r}")
            value_base = 16 if conv in "xX" else 8 if conv == "o" else 10
            parts.append(rf"[ \t]*(?P<v>{body})")
        else:
            parts.append(rf"[ \t]*(?P<k{key_index}>{body})")
            key_index += 1
    if value_base is None:
        raise ValueError(f"printa format has no %@ conversion: {fmt!r}")
    tail = fmt[position:]
    parts.append(_literal(tail.rstrip("\n")))
    parts.append(r"[ \t]*$")
    return re.compile("".join(parts), re.MULTILINE), value_base


def _literal(text: str) -> str:
    out = []
    for piece in re.split(r"(\s+)", text):
        if not piece:
            continue
        if piece.isspace():
            newlines = piece.count("\n")
            out.append(r"[ \t]*(?:\n[ \t]*)" + f"{{{newlines}}}" if newlines else r"[ \t]+")
        else:
            out.append(re.escape(piece))
    return "".join(out)
