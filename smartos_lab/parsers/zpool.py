"""``zpool status`` and ``zpool list`` (zpool(8)).

``zpool status`` prints, per pool, a block of ``key: value`` lines (``pool``,
``state``, ``status``, ``action``, ``see``, ``scan`` -- ``scrub`` on old
releases), a ``config:`` table whose indentation gives the vdev tree, and an
``errors:`` line.  Continuation lines of a value are indented further.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ..errors import ParseError
from . import _table

STATUS = "zpool status"
LIST = "zpool list"

# Lines that mean "nothing to report" rather than a pool block.
_NOTHING = re.compile(r"(all pools are healthy|no pools available|pool '[^']+' is healthy)")
_KEY = re.compile(r"^( {0,7})([a-z][a-z ]*?):(?:\s+(.*))?$")
_KNOWN_KEYS = {"pool", "id", "state", "status", "action", "see", "scan", "scrub", "remove",
               "checkpoint", "config", "errors"}
#: vdev states as zpool prints them: libzfs zpool_state_to_name(), plus INUSE and AVAIL
#: for hot spares (zpool_main.c print_status_config)
VDEV_STATES = frozenset({"ONLINE", "DEGRADED", "FAULTED", "OFFLINE", "UNAVAIL", "REMOVED",
                         "SPLIT", "UNKNOWN", "INUSE", "AVAIL"})
_SECTIONS = {"logs", "log", "cache", "spares", "special", "dedup"}
_KIND = re.compile(r"(?:(mirror|raidz[123]?|spare|replacing)(?:-\d+)?|(draid)\d*:\S+)")


@dataclass(slots=True)
class Vdev:
    """One row of the ``config:`` table and the rows nested under it.

    ``kind`` is ``pool`` (the first top row), a section (``logs``, ``cache``,
    ``spares``, ``special``, ``dedup``), a grouping vdev (``mirror``,
    ``raidz``, ``raidz1``..``raidz3``, ``draid``, ``spare``, ``replacing``) or
    ``disk`` for a leaf (disk, file, slice).  Error counters are None where
    the row has none (section headings, hot spares).  ``note`` is the text
    after the counters, e.g. ``too many errors`` or ``cannot open``.
    """

    name: str
    kind: str
    state: str | None
    read_errors: int | None
    write_errors: int | None
    checksum_errors: int | None
    note: str | None = None
    children: list[Vdev] = field(default_factory=list)
    raw: str = ""

    def walk(self) -> Iterator[Vdev]:
        """This vdev and every vdev below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def leaves(self) -> list[Vdev]:
        return [v for v in self.walk() if not v.children and v.kind == "disk"]


@dataclass(slots=True)
class ScanStatus:
    """The ``scan:`` (or old ``scrub:``) entry of a pool.

    ``function`` is ``scrub`` or ``resilver`` (None for "none requested");
    ``state`` is ``none``, ``finished``, ``in_progress``, ``canceled`` or
    ``paused``.  Byte counts are ints (rounded as printed); ``duration``,
    ``ended``, ``started`` and ``time_to_go`` stay as printed.
    """

    text: str
    function: str | None
    state: str
    repaired_bytes: int | None = None
    errors: int | None = None
    duration: str | None = None
    ended: str | None = None
    started: str | None = None
    scanned_bytes: int | None = None
    issued_bytes: int | None = None
    total_bytes: int | None = None
    percent_done: float | None = None
    time_to_go: str | None = None


@dataclass(slots=True)
class ZpoolStatus:
    """One pool of ``zpool status``.

    ``config`` holds the top rows of the config table: the pool itself, then
    any ``logs``/``cache``/``spares``/``special``/``dedup`` sections.
    ``data_errors`` is the number from the ``errors:`` line (0 for "No known
    data errors", None when the line gives no number); ``error_details`` are
    the lines listed after it (files or DATASET/OBJECT/RANGE rows).
    """

    name: str
    state: str | None
    status: str | None = None
    action: str | None = None
    see: str | None = None
    scans: list[ScanStatus] = field(default_factory=list)
    config: list[Vdev] = field(default_factory=list)
    errors: str | None = None
    data_errors: int | None = None
    error_details: list[str] = field(default_factory=list)
    other: dict[str, str] = field(default_factory=dict)

    @property
    def scan(self) -> ScanStatus | None:
        return self.scans[0] if self.scans else None

    @property
    def root(self) -> Vdev | None:
        """The pool's own row (the top of the data vdev tree)."""
        return next((v for v in self.config if v.kind == "pool"), None)

    def section(self, name: str) -> Vdev | None:
        """The ``logs``, ``cache``, ``spares``, ``special`` or ``dedup`` section, if any."""
        wanted = "logs" if name == "log" else name
        return next((v for v in self.config if v.kind == wanted), None)

    def vdev(self, name: str) -> Vdev | None:
        """The first vdev of that name anywhere in the config."""
        for top in self.config:
            for vdev in top.walk():
                if vdev.name == name:
                    return vdev
        return None

    def vdevs(self) -> Iterator[Vdev]:
        for top in self.config:
            yield from top.walk()


# ----------------------------------------------------------------------------- status
def parse_zpool_status(text: str) -> list[ZpoolStatus]:
    """Parse ``zpool status [-v] [-x] [pool ...]`` output into one entry per pool.

    ``all pools are healthy`` / ``no pools available`` (and ``-x``'s
    ``pool 'x' is healthy``) give an empty list.
    """
    lines = [(n, line.rstrip().expandtabs(8)) for n, line in enumerate(text.splitlines(), 1)]
    content = [(n, line) for n, line in lines if line.strip()]
    if not content:
        raise ParseError(STATUS, "empty output")
    if all(_NOTHING.fullmatch(line.strip()) for _, line in content):
        return []

    blocks: list[list[tuple[int, str]]] = []
    for lineno, line in lines:
        match = _KEY.match(line)
        if match and match.group(2) == "pool":
            blocks.append([])
        if not blocks:
            if line.strip():
                raise ParseError(STATUS, "expected a 'pool:' line", line=line, lineno=lineno)
            continue
        blocks[-1].append((lineno, line))
    return [_pool_block(block) for block in blocks]


def _pool_block(block: list[tuple[int, str]]) -> ZpoolStatus:
    entries: list[tuple[str, list[tuple[int, str]]]] = []  # key -> its lines (first included)
    config: list[tuple[int, str]] = []
    in_config = False
    for lineno, line in block:
        match = _KEY.match(line)
        key = match.group(2) if match else None
        is_key = bool(match) and (key in _KNOWN_KEYS or len(match.group(1)) < 8) \
            and not (in_config and key not in ("errors", "pool"))
        if is_key:
            in_config = key == "config"
            entries.append((key, [(lineno, match.group(3) or "")]))
        elif in_config:
            config.append((lineno, line))
        elif line.strip():
            if not entries:
                raise ParseError(STATUS, "unexpected line", line=line, lineno=lineno)
            entries[-1][1].append((lineno, line.strip()))

    pool = ZpoolStatus(name="", state=None)
    for key, value_lines in entries:
        value = "\n".join(text for _, text in value_lines).strip()
        if key == "pool":
            pool.name = value
        elif key == "state":
            pool.state = value
        elif key in ("status", "action", "see"):
            setattr(pool, key, " ".join(value.split()))
        elif key in ("scan", "scrub"):
            pool.scans.append(_scan(value_lines))
        elif key == "errors":
            _errors(pool, value_lines)
        elif key != "config":
            pool.other[key] = value
    if not pool.name:
        raise ParseError(STATUS, "pool block without a name", line=block[0][1],
                         lineno=block[0][0])
    pool.config = _config(config)
    if pool.config and pool.config[0].name != pool.name:
        raise ParseError(STATUS, f"config table starts with {pool.config[0].name!r}, not the "
                         f"pool {pool.name!r}", line=pool.config[0].raw)
    return pool


def _errors(pool: ZpoolStatus, value_lines: list[tuple[int, str]]) -> None:
    (lineno, first), rest = value_lines[0], value_lines[1:]
    pool.errors = first.strip()
    pool.error_details = [text.strip() for _, text in rest if text.strip()]
    if first.startswith("No known data errors"):
        pool.data_errors = 0
        return
    match = re.match(r"(\d+) data errors?", first)
    if match:
        pool.data_errors = int(match.group(1))
    elif not re.match(r"(Permanent|The following persistent) errors", first):
        raise ParseError(STATUS, "unrecognised errors: line", line=first, lineno=lineno)


# ----------------------------------------------------------------------------- config tree
def _config(lines: list[tuple[int, str]]) -> list[Vdev]:
    rows = [(n, line) for n, line in lines if line.strip()]
    if not rows:
        return []
    lineno, header = rows[0]
    if header.split()[:2] != ["NAME", "STATE"]:
        raise ParseError(STATUS, "expected the 'NAME STATE READ WRITE CKSUM' header after "
                         "config:", line=header.strip(), lineno=lineno)
    base = len(header) - len(header.lstrip())
    tops: list[Vdev] = []
    stack: list[tuple[int, Vdev]] = []
    for lineno, line in rows[1:]:
        indent = len(line) - len(line.lstrip())
        if indent < base:
            raise ParseError(STATUS, "config row indented less than the NAME header",
                             line=line.strip(), lineno=lineno)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        spare = bool(stack) and stack[0][1].kind == "spares"
        vdev = _vdev_row(line.strip(), lineno, top=not stack, first=not tops, spare=spare)
        if stack:
            stack[-1][1].children.append(vdev)
        elif indent == base:
            tops.append(vdev)
        else:
            raise ParseError(STATUS, "config row is not under any vdev", line=line.strip(),
                             lineno=lineno)
        stack.append((indent, vdev))
    return tops


def _vdev_row(row: str, lineno: int, *, top: bool, first: bool, spare: bool) -> Vdev:
    """One config row.  zpool prints every vdev with its state and READ/WRITE/CKSUM
    counts, a hot spare with its state only, a section heading with its name only: any
    other row is output cut short (a timeout, a full pipe) and raises ParseError."""
    tokens = row.split()
    name = tokens[0]
    if top:
        kind = "pool" if first else ("logs" if name == "log" else name)
        if not first and name not in _SECTIONS:
            raise ParseError(STATUS, f"unknown top-level config entry {name!r}", line=row,
                             lineno=lineno)
    else:
        match = _KIND.fullmatch(name)
        kind = (match.group(1) or match.group(2)) if match else "disk"
    state = counts = None
    note_at = 1
    if len(tokens) == 1 and not (top and not first):
        raise ParseError(STATUS, f"vdev {name!r} has no state (output cut short?)", line=row,
                         lineno=lineno)
    if len(tokens) > 1:
        state = tokens[1]
        if state not in VDEV_STATES:
            raise ParseError(STATUS, f"bad vdev state {state!r} (output cut short?): "
                             f"expected one of {', '.join(sorted(VDEV_STATES))}",
                             line=row, lineno=lineno)
        note_at = 2
        if not spare:
            if len(tokens) < 5 or not all(_is_count(t) for t in tokens[2:5]):
                raise ParseError(STATUS, "expected READ, WRITE and CKSUM counts after the "
                                 "state (output cut short?)", line=row, lineno=lineno)
            counts = [_table.count(t) for t in tokens[2:5]]
            note_at = 5
    note = " ".join(tokens[note_at:]) or None
    if counts is None:
        return Vdev(name, kind, state, None, None, None, note, raw=row)
    return Vdev(name, kind, state, counts[0], counts[1], counts[2], note, raw=row)


def _is_count(token: str) -> bool:
    try:
        _table.count(token)
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------- scan line
_DATE = r"(?P<date>.+)"
_FINISHED = re.compile(r"(?P<func>scrub|resilver) repaired (?P<repaired>\S+) in (?P<dur>.+?) "
                       r"with (?P<errors>\d+) errors on " + _DATE)
_RESILVERED = re.compile(r"resilvered (?:\([^)]*\) )?(?P<repaired>\S+) in (?P<dur>.+?) "
                         r"with (?P<errors>\d+) errors on " + _DATE)
_OLD_DONE = re.compile(r"(?P<func>scrub|resilver) completed (?:after (?P<dur>\S+) )?"
                       r"with (?P<errors>\d+) errors on " + _DATE)
_CANCELED = re.compile(r"(?P<func>scrub|resilver) canceled on " + _DATE)
_SINCE = re.compile(r"(?P<func>scrub|resilver) (?P<what>in progress|paused) since " + _DATE)
_OLD_PROGRESS = re.compile(r"(?P<func>scrub|resilver) in progress(?: for (?P<dur>\S+))?"
                           r"(?:, (?P<pct>[\d.]+)% done(?:, (?P<togo>.+) to go)?)?")
_SCANNED_OUT_OF = re.compile(r"(?P<scanned>\S+) scanned out of (?P<total>\S+) at \S+,"
                             r" (?:(?P<togo>\S+) to go|\(scan is slow, no estimated time\))")
_SCANNED_AT = re.compile(r"(?P<scanned>\S+)(?: / \S+)? scanned(?: at \S+)?,"
                         r" (?P<issued>\S+)(?: / (?P<total2>\S+))? issued(?: at \S+)?"
                         r"(?:, (?P<total>\S+) total)?")
_DONE_LINE = re.compile(r"(?P<amount>\S+) (?:repaired|resilvered), (?P<pct>[\d.]+)% done"
                        r"(?:, (?:(?P<togo>.+) to go|no estimated completion time))?")
_PAUSED_STARTED = re.compile(r"(?P<func>scrub|resilver) started on " + _DATE)


def _scan(value_lines: list[tuple[int, str]]) -> ScanStatus:
    (lineno, first), more = value_lines[0], value_lines[1:]
    text = "\n".join([first] + [line for _, line in more])

    def size(value: str, line: str, n: int) -> int | None:
        return _table.convert(STATUS, _table.size, value, "scan size", line, n)

    if first == "none requested":
        return ScanStatus(text, None, "none")
    match = _FINISHED.fullmatch(first) or _RESILVERED.fullmatch(first)
    if match:
        func = match.groupdict().get("func") or "resilver"
        return ScanStatus(text, func, "finished", repaired_bytes=size(match["repaired"], first,
                          lineno), errors=int(match["errors"]), duration=match["dur"],
                          ended=match["date"])
    match = _OLD_DONE.fullmatch(first)
    if match:
        return ScanStatus(text, match["func"], "finished", errors=int(match["errors"]),
                          duration=match["dur"], ended=match["date"])
    match = _CANCELED.fullmatch(first)
    if match:
        return ScanStatus(text, match["func"], "canceled", ended=match["date"])
    match = _SINCE.fullmatch(first)
    if match:
        state = "in_progress" if match["what"] == "in progress" else "paused"
        scan = ScanStatus(text, match["func"], state, started=match["date"])
        for n, line in more:
            _scan_detail(scan, line, n, size)
        return scan
    match = _OLD_PROGRESS.fullmatch(first)
    if match:
        pct = match["pct"]
        return ScanStatus(text, match["func"], "in_progress", duration=match["dur"],
                          percent_done=float(pct) if pct else None, time_to_go=match["togo"])
    raise ParseError(STATUS, "unrecognised scan line", line=first, lineno=lineno)


def _scan_detail(scan: ScanStatus, line: str, lineno: int, size) -> None:
    match = _SCANNED_OUT_OF.fullmatch(line)
    if match:
        scan.scanned_bytes = size(match["scanned"], line, lineno)
        scan.total_bytes = size(match["total"], line, lineno)
        scan.time_to_go = match["togo"]
        return
    match = _SCANNED_AT.fullmatch(line)
    if match:
        scan.scanned_bytes = size(match["scanned"], line, lineno)
        scan.issued_bytes = size(match["issued"], line, lineno)
        total = match["total"] or match["total2"]
        scan.total_bytes = size(total, line, lineno) if total else None
        return
    match = _DONE_LINE.fullmatch(line)
    if match:
        scan.repaired_bytes = size(match["amount"], line, lineno)
        scan.percent_done = float(match["pct"])
        if match["togo"]:
            scan.time_to_go = match["togo"]
        return
    if _PAUSED_STARTED.fullmatch(line):
        return
    raise ParseError(STATUS, "unrecognised scan progress line", line=line, lineno=lineno)


# ----------------------------------------------------------------------------- list
@dataclass(slots=True)
class ZpoolListEntry:
    """One row of ``zpool list``: a pool, or with ``-v`` a vdev below it (``depth`` > 0).

    Sizes are bytes, ``fragmentation`` and ``capacity`` percent, ``dedupratio``
    a float; columns the row does not have (or shows as ``-``) are None.
    ``raw`` maps each column name (as in ``zpool list -o``) to its text.
    """

    name: str
    size: int | None = None
    allocated: int | None = None
    free: int | None = None
    checkpoint: int | None = None
    expandsize: int | None = None
    fragmentation: float | None = None
    capacity: float | None = None
    dedupratio: float | None = None
    health: str | None = None
    altroot: str | None = None
    depth: int = 0
    raw: dict[str, str] = field(default_factory=dict)


# header or -o name -> (attribute, converter)
_POOL_COLUMNS = {
    "name": ("name", str), "size": ("size", _table.size),
    "alloc": ("allocated", _table.size), "allocated": ("allocated", _table.size),
    "free": ("free", _table.size), "ckpoint": ("checkpoint", _table.size),
    "checkpoint": ("checkpoint", _table.size), "expandsz": ("expandsize", _table.size),
    "expandsize": ("expandsize", _table.size), "frag": ("fragmentation", _table.percent),
    "fragmentation": ("fragmentation", _table.percent), "cap": ("capacity", _table.percent),
    "capacity": ("capacity", _table.percent), "dedup": ("dedupratio", _table.ratio),
    "dedupratio": ("dedupratio", _table.ratio), "health": ("health", _table.dash_none),
    "altroot": ("altroot", _table.dash_none),
}
#: Columns of ``zpool list -H`` without ``-o`` on current illumos.
ZPOOL_LIST_DEFAULT_FIELDS = ("name", "size", "allocated", "free", "checkpoint", "expandsize",
                             "fragmentation", "capacity", "dedupratio", "health", "altroot")


def parse_zpool_list(text: str, fields: Sequence[str] | str | None = None) -> list[ZpoolListEntry]:
    """Parse ``zpool list [-v]`` (with its header) or, given ``fields``, ``zpool list -H [-p]``.

    For ``-H`` output pass the ``-o`` field list (``ZPOOL_LIST_DEFAULT_FIELDS``
    when no ``-o`` was given).  ``no pools available`` gives an empty list.
    """
    if text.strip() == "no pools available":
        return []
    if fields is None:
        table, rows = _table.header_and_rows(LIST, text, "NAME")
        names = [n.lower() for n in table.names]
        _check_columns(names, table)
        entries = []
        for lineno, line in rows:
            indent = len(line) - len(line.lstrip())
            values = line.split()
            if len(values) != len(names) and not (indent and len(values) < len(names)):
                raise ParseError(LIST, f"expected {len(names)} columns, found {len(values)}",
                                 line=line, lineno=lineno)
            entries.append(_list_entry(names, values, indent // 2, line, lineno))
        return entries
    names = _table.field_list(LIST, fields)
    unknown = [n for n in names if n not in _POOL_COLUMNS]
    if unknown:
        raise ParseError(LIST, f"unsupported field(s) {', '.join(unknown)}")
    entries = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip("\t"))
        if depth:                           # -v: vdev rows start with tabs, one column short
            values = line[depth:].split("\t")
            if not 1 < len(values) <= len(names):
                raise ParseError(LIST, "bad vdev row", line=line, lineno=lineno)
        else:
            values = _table.split_scripted(LIST, line, lineno, len(names))
        entries.append(_list_entry(names, values, depth, line, lineno))
    return entries


def _check_columns(names: list[str], table: _table.Table) -> None:
    unknown = [n for n in names if n not in _POOL_COLUMNS]
    if unknown:
        raise ParseError(LIST, f"unknown column(s) {', '.join(unknown)}",
                         line=" ".join(table.names), lineno=table.lineno)


def _list_entry(names: list[str], values: list[str], depth: int, line: str,
                lineno: int) -> ZpoolListEntry:
    entry = ZpoolListEntry(name=values[0], depth=depth)
    for column, value in zip(names, values):
        entry.raw[column] = value
        attr, func = _POOL_COLUMNS[column]
        setattr(entry, attr, _table.convert(LIST, func, value, column, line, lineno))
    return entry
