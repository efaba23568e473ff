"""Pure helpers that turn a user's D program into the program actually run.

* end after a duration: append ``tick-<N>s { exit(0); }``;
* end after N events: count firings of the first clause's probe (with its
  predicate) and ``exit(0)`` at N;
* named aggregations: every aggregation is printed by itself, followed by a
  marker line ``=== tick @name`` (the convention of
  :class:`smartos_lab.parsers.dtrace.DTraceStreamParser`, whose snapshots
  then each hold one aggregation);
* per-interval snapshots: a tick clause that prints (``printa``) and clears
  (``trunc``) every aggregation, then ``=== tick <walltimestamp>``;
* at the end an ``END`` clause prints every aggregation the same way, then
  ``=== tick end``.  (dtrace does not print an aggregation again at exit once
  ``printa`` printed it.)

Nothing here touches a guest; :mod:`.dtrace` runs the result.
"""
from __future__ import annotations

import re

from ..errors import ConfigError

MARKER = "=== tick"                    # DTraceStreamParser's default marker line prefix
END_LABEL = "end"
_COUNTER = "smartos_lab_events"


def strip_comments_and_strings(script: str) -> str:
    """The script with comments removed and string literals blanked (same length)."""
    out: list[str] = []
    i, n = 0, len(script)
    while i < n:
        c = script[i]
        if script.startswith("/*", i):
            end = script.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(re.sub(r"[^\n]", " ", script[i:end]))
            i = end
        elif script.startswith("//", i):
            end = script.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and script[j] != '"':
                j += 2 if script[j] == "\\" else 1
            j = min(j + 1, n)
            out.append('"' + " " * max(0, j - i - 2) + ('"' if j - i >= 2 else ""))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def aggregation_names(script: str) -> list[str]:
    """Names of the aggregations a script fills (``""`` is the anonymous ``@``), in order."""
    code = strip_comments_and_strings(script)
    names: list[str] = []
    for m in re.finditer(r"@([A-Za-z_]\w*)?\s*(?=[\[=])", code):
        name = m.group(1) or ""
        if name not in names:
            names.append(name)
    return names


def clauses(script: str) -> list[tuple[str, str]]:
    """Every clause's probe description(s) and predicate (``/.../`` or ``""``), in order."""
    code = strip_comments_and_strings(script)
    code = re.sub(r"(?m)^[ \t]*#.*$", lambda m: " " * len(m.group(0)), code)   # pragmas
    found: list[tuple[str, str]] = []
    depth = 0
    header_start = 0
    for i, c in enumerate(code):
        if c == "{":
            if depth == 0:
                header = code[header_start:i]
                offset = header_start + header.rfind(";") + 1   # skip declarations
                found.append(_split_header(script, code, offset, i))
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                header_start = i + 1
    return found


def _split_header(script: str, code: str, start: int, end: int) -> tuple[str, str]:
    header = code[start:end]
    first = header.find("/")
    if first < 0:
        return " ".join(header.split()), ""
    last = header.rfind("/")
    if last == first:
        raise ConfigError(f"cannot read the predicate of clause {header.strip()!r}")
    # comments/strings were blanked in ``code``: take the predicate from the original text
    return " ".join(header[:first].split()), script[start + first:start + last + 1]


def first_event_clause(script: str) -> tuple[str, str]:
    """The first clause that traces events (not BEGIN/END/ERROR or a tick timer)."""
    for desc, predicate in clauses(script):
        probes = [p.strip() for p in desc.split(",")]
        if desc and not all(_is_timer(p) for p in probes):
            return desc, predicate
    raise ConfigError("the D program has no event clause to count (only BEGIN/END/tick?)")


def _is_timer(probe: str) -> bool:
    name = probe.split(":")[-1]
    return name in ("BEGIN", "END", "ERROR") or name.startswith("tick-")


def duration_clause(seconds: float) -> str:
    """``tick-<N>s`` (or ``ms``) that ends the program."""
    return f"{_tick(seconds)} {{ exit(0); }}"


def event_limit_clauses(script: str, events: int) -> str:
    """Clauses (with their counter's declaration) that stop after ``events`` firings
    of the first event clause (same probes and predicate)."""
    if not isinstance(events, int) or isinstance(events, bool) or events <= 0:
        raise ConfigError(f"until_events must be a positive integer, got {events!r}")
    desc, predicate = first_event_clause(script)
    count = f"{desc} {predicate} {{ {_COUNTER}++; }}" if predicate else f"{desc} {{ {_COUNTER}++; }}"
    stop = f"{desc} /{_COUNTER} >= {events}/ {{ exit(0); }}"
    return f"int {_COUNTER}; {count} {stop}"


def _print_named(names: list[str], *, truncate: bool) -> str:
    parts = []
    for name in names:
        parts.append(f"printa(@{name});")
        if truncate:
            parts.append(f"trunc(@{name});")
        parts.append(f'printf("{MARKER} @{name}\\n");')
    return " ".join(parts)


def interval_clause(script: str, seconds: float) -> str:
    """A tick clause printing and clearing each aggregation, then the interval marker."""
    body = _print_named(aggregation_names(script), truncate=True)
    return f'{_tick(seconds)} {{ {body} printf("{MARKER} %d\\n", walltimestamp); }}'


def end_clause(script: str) -> str:
    """An END clause printing each aggregation by name, then ``=== tick end``
    ("" when the script has no aggregations)."""
    names = aggregation_names(script)
    if not names:
        return ""
    return f'END {{ {_print_named(names, truncate=False)} printf("{MARKER} {END_LABEL}\\n"); }}'


def compose(script: str, *, duration: float | None = None, until_events: int | None = None,
            interval: float | None = None, named: bool = True) -> str:
    """The program to run: the user's script plus the clauses asked for.

    The user's lines keep their numbers (compile errors point at them); the
    added clauses follow, on one line when the script is one line.
    """
    if not isinstance(script, str) or not script.strip():
        raise ConfigError("the D program is empty")
    if "\x00" in script:
        raise ConfigError("the D program contains a NUL byte")
    added: list[str] = []
    if interval is not None:
        added.append(interval_clause(script, interval))
    if until_events is not None:
        added.append(event_limit_clauses(script, until_events))
    if duration is not None:
        added.append(duration_clause(duration))
    if named:
        added.append(end_clause(script))
    program = script.strip()
    separator = " " if "\n" not in program else "\n"
    return separator.join([program] + [a for a in added if a])


def _tick(seconds: float) -> str:
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds <= 0:
        raise ConfigError(f"a DTrace interval must be a positive number of seconds, got {seconds!r}")
    if float(seconds).is_integer():
        return f"tick-{int(seconds)}s"
    ms = round(seconds * 1000)
    if ms < 1:
        raise ConfigError(f"interval too short for a tick probe: {seconds} s")
    return f"tick-{ms}ms"
