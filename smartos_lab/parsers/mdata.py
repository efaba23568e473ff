"""Instance metadata: ``mdata-list`` / ``mdata-get`` (smartos-live mdata-client man pages).

``mdata-get KEY`` prints the value on stdout and exits 0; exit status 1
means the key does not exist, 2 a non-transient error, 3 a usage error.
All values are strings: a JSON value (``sdc:nics``) is decoded by the caller
(:func:`parse_mdata_json`).  ``mdata-list`` prints one key per line.
"""
from __future__ import annotations

import json
import re
from typing import Any

from ..errors import ParseError

_KEY = re.compile(r"[A-Za-z0-9_.:@/-]+")
#: mdata-get's exit statuses (mdata-get(8) EXIT STATUS)
EXIT_STATUS = {0: "found", 1: "not found", 2: "error", 3: "usage error"}


def parse_mdata_list(text: str) -> list[str]:
    """The keys printed by ``mdata-list`` (one per line)."""
    keys = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if not _KEY.fullmatch(line):
            raise ParseError("mdata-list", "expected one metadata key per line",
                             line=line, lineno=lineno)
        keys.append(line)
    return keys


def mdata_value(stdout: str, exit_status: int, key: str) -> str | None:
    """The value ``mdata-get KEY`` printed: None when the key does not exist (status 1).

    mdata-get ends the value with one newline; only that one is removed.
    Other statuses raise ParseError naming the status.
    """
    if exit_status == 1:
        return None
    if exit_status != 0:
        what = EXIT_STATUS.get(exit_status, "unexpected exit status")
        raise ParseError(f"mdata-get {key}", f"exit status {exit_status} ({what})")
    return stdout[:-1] if stdout.endswith("\n") else stdout


def parse_mdata_json(text: str, key: str) -> Any:
    """A metadata value that holds JSON (``sdc:nics``, ``sdc:resolvers``, a
    ``customer_metadata`` object from ``vmadm get``); cut-off JSON is a ParseError."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        lines = text.splitlines()
        line = lines[exc.lineno - 1] if 0 < exc.lineno <= len(lines) else ""
        raise ParseError(f"mdata-get {key}", f"not JSON: {exc.msg}", line=line,
                         lineno=exc.lineno) from None
