"""Terminal escape sequences on a serial console: strip them, answer queries.

Guests write VT100/ANSI sequences (colours, cursor moves, window titles) and
some shells *ask* the terminal things (busybox ash sends ``ESC[6n`` before a
prompt; SmartOS's root bashrc sends ``ESC[18t ESC[0c`` and waits for answers).

- :func:`strip_ansi` removes escape sequences from complete text.
- :class:`AnsiStripper` does the same incrementally: an escape sequence cut
  at the end of one chunk is held back until the next chunk completes it.
- :class:`TerminalResponder` spots terminal queries in the raw byte stream
  (also when split across chunks) and returns the replies a terminal sends.

Carriage returns are left alone; callers decide how to treat ``\\r``.
"""
from __future__ import annotations

import re
from collections import deque

# Alternatives tried in order at each position.  ``open`` ones match an
# escape sequence that has started but not ended at the end of the text.
_SEQUENCE_RE = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\|(?=\x1b.))"    # OSC ... BEL | ST (another ESC aborts it)
    r"|(?P<open_osc>\x1b\][^\x07\x1b]*\x1b?\Z)"
    r"|\x1b[PX^_](?:(?!\x1b\\).)*\x1b\\"               # DCS / SOS / PM / APC ... ST
    r"|(?P<open_dcs>\x1b[PX^_](?:(?!\x1b\\).)*\x1b?\Z)"
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"               # CSI params intermediates final
    r"|(?P<open_csi>(?:\x1b\[|\x9b)[0-?]*[ -/]*\Z)"
    r"|\x1b[ -/]+[0-~]"                                # ESC ( B, ESC # 8, ESC % G: charset selects etc.
    r"|(?P<open_esc>\x1b[ -/]*\Z)"
    r"|\x1b[0-~]"                                      # ESC 7, ESC =, ESC M ...: lone ESC-x
    r"|\x1b"                                           # a stray ESC
    r"|[\x00-\x07\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]",      # other C0 controls (keeps \b \t \n \r)
    re.DOTALL,
)

#: Longest unfinished sequence held back; a longer one (a runaway OSC) is dropped.
MAX_PENDING = 4096


def strip_ansi(text: str) -> str:
    """Return ``text`` without ANSI/VT100 escape sequences and stray control bytes."""
    return _SEQUENCE_RE.sub("", text)


class AnsiStripper:
    """Incremental :func:`strip_ansi` for a stream of text chunks."""

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, chunk: str) -> str:
        """Strip ``chunk``; an escape sequence still open at its end is held back."""
        text = self._pending + chunk
        self._pending = ""
        found = deque(_SEQUENCE_RE.finditer(text), maxlen=1)     # the last sequence only
        last = found[0] if found else None
        if last is not None and last.lastgroup and last.lastgroup.startswith("open_"):
            if last.end() - last.start() <= MAX_PENDING:
                self._pending = last.group()
            text = text[:last.start()]
        return strip_ansi(text)

    def flush(self) -> str:
        """Drop whatever is held back (an unfinished sequence), e.g. at end of stream."""
        self._pending = ""
        return ""


# --- terminal queries ---------------------------------------------------------
_QUERY_RE = re.compile(rb"\x1b\[(6n|5n|18t|0?c)")
_QUERY_MAXLEN = 5          # len(b"\x1b[18t")


class TerminalResponder:
    """Answer terminal queries seen in the raw output of a guest.

    ``feed(chunk)`` returns the bytes a VT100-like terminal of ``rows`` x
    ``cols`` would send back (empty when there is nothing to answer).
    """

    def __init__(self, rows: int = 25, cols: int = 80) -> None:
        self.rows = rows
        self.cols = cols
        self._carry = b""

    def reply_for(self, query: bytes) -> bytes:
        if query == b"6n":                      # cursor position: say "bottom line, column 1"
            return b"\x1b[%d;1R" % (self.rows - 1)
        if query == b"5n":                      # device status: OK
            return b"\x1b[0n"
        if query == b"18t":                     # text area size in characters
            return b"\x1b[8;%d;%dt" % (self.rows, self.cols)
        return b"\x1b[?1;2c"                    # primary device attributes: VT100 with AVO

    def feed(self, chunk: bytes) -> bytes:
        data = self._carry + chunk
        carried = len(self._carry)
        replies = [self.reply_for(m.group(1)) for m in _QUERY_RE.finditer(data) if m.end() > carried]
        self._carry = data[-(_QUERY_MAXLEN - 1):]
        return b"".join(replies)
