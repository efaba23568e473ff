"""``dtrace -l`` (dtrace(8)): the probe listing.

The header is ``ID PROVIDER MODULE FUNCTION NAME``; each row is the probe
ID and its four-part name, right-aligned in columns (libdtrace prints
``%5d %10s %17s %33s %s``, older releases narrower columns).  MODULE and
FUNCTION are empty for probes such as ``dtrace:::BEGIN``, and a wide value
pushes the rest of the row to the right.  The columns are therefore taken
from the header: a lone value between PROVIDER and NAME belongs to the column
whose right edge it is nearest.  A demangled C++ function name may hold spaces
(``node::dtrace_gc_done(v8::Isolate*, ...)``): everything between the module
and the name is the function.

``-v`` adds indented attribute blocks after each probe; they are skipped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ParseError
from . import _table

COMMAND = "dtrace -l"
_HEADER = ("ID", "PROVIDER", "MODULE", "FUNCTION", "NAME")
_TOKEN = re.compile(r"\S+")


@dataclass(frozen=True, slots=True)
class Probe:
    """One probe: ``provider:module:function:name`` (empty parts are ``""``)."""

    id: int
    provider: str
    module: str
    function: str
    name: str

    @property
    def description(self) -> str:
        return f"{self.provider}:{self.module}:{self.function}:{self.name}"


def parse_dtrace_list(text: str) -> list[Probe]:
    """Parse ``dtrace -l [-v] [-n|-P|-m|-f ...]`` output; an empty match gives ``[]``
    only if the header is there (dtrace prints just the header when nothing matches)."""
    lines = list(_table.content_lines(text))
    if not lines:
        raise ParseError(COMMAND, "empty output: expected the header ID PROVIDER MODULE "
                         "FUNCTION NAME")
    lineno, header = lines[0]
    if tuple(header.split()) != _HEADER:
        raise ParseError(COMMAND, "expected the header ID PROVIDER MODULE FUNCTION NAME",
                         line=header, lineno=lineno)
    module_end = header.index("MODULE") + len("MODULE")
    function_end = header.index("FUNCTION") + len("FUNCTION")
    probes: list[Probe] = []
    in_details = False
    for n, line in lines[1:]:
        if line.startswith("\t") or (line.startswith("    ") and not line.strip()[0].isdigit()):
            in_details = True                                   # a -v attribute block
            continue
        if in_details and line.startswith(" " * 8):
            continue
        in_details = False
        probes.append(_row(line, n, module_end, function_end))
    return probes


def _row(line: str, lineno: int, module_end: int, function_end: int) -> Probe:
    tokens = [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(line)]
    if len(tokens) < 3 or not tokens[0][0].isdigit():
        raise ParseError(COMMAND, "expected 'ID PROVIDER [MODULE] [FUNCTION] NAME' (a row cut "
                         "off or wrapped?)", line=line, lineno=lineno)
    probe_id = int(tokens[0][0])
    provider = tokens[1][0]
    name, name_start, _ = tokens[-1]
    middle = tokens[2:-1]
    if name_start < function_end - 1 and len(middle) < 2:
        # the last word ends inside the MODULE/FUNCTION columns: the NAME column is missing
        raise ParseError(COMMAND, "row ends before the NAME column (cut off?)",
                         line=line, lineno=lineno)
    module = function = ""
    if len(middle) == 1:
        word, _, end = middle[0]
        if abs(end - module_end) < abs(end - function_end):
            module = word
        else:
            function = word
    elif middle:
        module = middle[0][0]
        function = line[middle[1][1]:middle[-1][2]]
    return Probe(probe_id, provider, module, function, name)
