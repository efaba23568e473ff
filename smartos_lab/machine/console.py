"""A guest serial console over a byte stream (QEMU's console socket, a pty, a socketpair).

A daemon *drain thread* reads the stream all the time (a guest whose console
is not read blocks) and, for every chunk:

- answers terminal queries (``ESC[6n`` ...) when the profile says so,
- keeps the raw bytes in a bounded ring and an ANSI-stripped rolling text
  buffer (``tail()``, ``mark()`` / ``text_since()``),
- scans a rolling window for crash patterns (a pattern split across reads
  is still caught) and records the first crash in :attr:`Console.crash`,
- feeds listeners (progress display) and the queue that ``expect`` reads.

Matching is pexpect's: :class:`_ConsoleSpawn` is a ``SpawnBase`` whose
``read_nonblocking`` takes stripped text from the drain thread's queue, so
``expect`` has pexpect semantics (``before``/``after``, text after a match is
kept for the next call).  Text is ANSI-stripped; ``\\r`` is kept (Linux and
illumos write ``\\r\\n``).  While waiting, a recorded crash raises
:class:`GuestPanic`, :class:`GuestDebugger` or :class:`GuestHalted`; end of
stream raises the ``exit_probe``'s error (e.g. :class:`QemuExited`) or
:class:`ConsoleClosed`.  Every error carries the console tail and the serial
log path (the log itself is written by QEMU's ``logfile=``).
"""
from __future__ import annotations

import codecs
import functools
import logging
import os
import re
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from re import Pattern

import pexpect
from pexpect.spawnbase import SpawnBase

from ..errors import ConsoleClosed, ConsoleTimeout, GuestDebugger, GuestError, GuestHalted, GuestPanic
from .ansi import AnsiStripper, TerminalResponder
from .debugger import KMDB_PROMPT

log = logging.getLogger(__name__)

ILLUMOS_PANIC = r"panic\[cpu\d+\]/thread=[0-9a-fA-F]+"
LINUX_PANIC = r"^(?:\[\s*\d+\.\d+\] )?Kernel panic - not syncing"
REBOOT_PROMPT = r"(?i)press any key to reboot"

Patterns = str | Pattern[str] | Sequence[str | Pattern[str]]


@dataclass(frozen=True)
class ConsoleProfile:
    """How to talk to one kind of guest console.

    ``chunk_size``/``chunk_delay``: input is written in chunks with a pause
    between them (some consoles drop bursts).  ``newline`` ends ``sendline``.
    Crash patterns are regular expressions searched in stripped text with
    ``re.MULTILINE``.  After a crash, output is collected until the console
    is quiet for ``crash_quiet`` s (at most ``crash_collect`` s) so the
    panic stack is part of the error.
    """

    name: str = "generic"
    newline: str = "\n"
    chunk_size: int = 64
    chunk_delay: float = 0.0
    answer_queries: bool = True
    rows: int = 25
    cols: int = 80
    panic_patterns: tuple[str, ...] = (ILLUMOS_PANIC, LINUX_PANIC)
    debugger_patterns: tuple[str, ...] = (KMDB_PROMPT,)
    halt_patterns: tuple[str, ...] = (REBOOT_PROMPT,)
    crash_quiet: float = 0.5
    crash_collect: float = 2.0


@dataclass(frozen=True)
class ConsoleMatch:
    """What ``expect`` found: pattern ``index``, the ``re.Match`` (or the
    string for ``expect_exact``), the text ``before`` it and the matched text ``after``."""

    index: int
    match: object
    before: str
    after: str


@dataclass(frozen=True)
class _Crash:
    kind: type[GuestError]
    start: int          # absolute text offset of the line holding the match
    detected: float     # monotonic time


RAW_LIMIT = 1 << 20         # raw bytes kept in the ring
TEXT_LIMIT = 1 << 20        # stripped characters kept for tail()/text_since()
QUEUE_LIMIT = 8 << 20       # unread characters kept for expect before the oldest are dropped
SCAN_OVERLAP = 160          # characters of old text re-scanned with each new chunk (> any crash pattern)
CRASH_TEXT_LIMIT = 16384
EXIT_PROBE_GRACE = 2.0      # after EOF, how long QEMU may take to be seen as exited
SEND_TIMEOUT = 30.0         # how long ``send`` waits for the guest side to take input
COALESCE_BELOW = 4096       # a read this small while output streams ...
COALESCE_STREAMING = 0.005  # (i.e. within this long of the previous read) ...
COALESCE_DELAY = 0.001      # ... lets output gather at most this long before the next read,
COALESCE_CHUNK = 96         # ... and no longer than this many bytes take at the current rate
COALESCE_AFTER = 64         # ... once more than this many such reads came in a row


def coalesce_pause(size: int, gap: float, streaming: int) -> float:
    """How long the drain thread lets output gather after reading ``size`` bytes that came
    ``gap`` s after the previous read, the ``streaming``-th such read in a row (0: none).

    An emulated UART reaches the socket one byte per write: while output streams, a
    short pause saves waking up for every byte (the wake-ups take the CPU the emulation
    needs).  Short answers (a prompt, a command's markers) are never delayed: only a
    stream of more than COALESCE_AFTER small reads in a row is.  The pause lasts no
    longer than COALESCE_CHUNK bytes take at the rate just seen: a unix socket holds
    only ~250 one-byte writes (each is a buffer of its own), and once it is full QEMU
    holds the guest's UART until we read (a fixed 1 ms capped the console at ~0.19 MB/s).
    """
    if size >= COALESCE_BELOW or streaming <= COALESCE_AFTER or size <= 0:
        return 0.0
    pause = min(COALESCE_DELAY, COALESCE_CHUNK * gap / size)
    return pause if pause > 0.0001 else 0.0


@functools.lru_cache(maxsize=16)
def _crash_regexes(profile: ConsoleProfile) -> tuple[tuple[type[GuestError], re.Pattern[str]], ...]:
    """A profile's crash patterns, compiled (searched one by one: literal prefixes keep that fast)."""
    return tuple((kind, re.compile(p, re.MULTILINE))
                 for kind, patterns in ((GuestPanic, profile.panic_patterns),
                                        (GuestDebugger, profile.debugger_patterns),
                                        (GuestHalted, profile.halt_patterns))
                 for p in patterns)


class _ConsoleSpawn(SpawnBase):
    """pexpect spawn reading the console's stripped text queue."""

    def __init__(self, console: Console):
        super().__init__(timeout=30, maxread=65536, searchwindowsize=None,
                         encoding="utf-8", codec_errors="replace")
        self.console = console
        self.closed = False
        self.delayafterread = None
        self.window: int | None = None      # searchwindowsize of the running expect
        self.on_text: Callable[[str], None] | None = None      # sees each piece read

    def read_nonblocking(self, size=1, timeout=None):
        # pexpect searches only the last ``searchwindowsize`` characters of a
        # chunk: keep chunks to half a window so that no match is skipped.
        if self.window:
            size = min(size, max(1, self.window // 2))
        text = self.console._take(size, timeout)
        if text and self.on_text is not None:
            self.on_text(text)
        return text


class Console:
    """A guest serial console; see the module docstring.

    ``read()`` returns the bytes available (``b""``: end of stream, ``None``:
    nothing after all); ``write(view)`` writes without blocking and returns
    how many bytes it took (or raises :class:`BlockingIOError`);
    ``fileno``/``write_fileno`` are polled for reading/writing.
    """

    def __init__(self, read: Callable[[], bytes | None], write: Callable[[memoryview], int],
                 fileno: int, shutdown: Callable[[], None], *, write_fileno: int | None = None,
                 name: str = "console",
                 log_path: str | os.PathLike | None = None,
                 exit_probe: Callable[[], BaseException | None] | None = None,
                 profile: ConsoleProfile | None = None):
        self.name = name
        self.log_path = str(log_path) if log_path is not None else None
        self.profile = profile or ConsoleProfile()
        self._read = read
        self._write_raw = write
        self._fileno = fileno
        self._write_fileno = fileno if write_fileno is None else write_fileno
        self._shutdown = shutdown
        self._exit_probe = exit_probe

        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._expect_lock = threading.Lock()
        self._check_crash = True            # False while an ``expect(check_crash=False)`` runs
        self._raw = bytearray()
        self._chunks: list[str] = []        # stripped text kept, joined lazily (_text())
        self._text_len = 0
        self._text_base = 0                 # absolute offset of the first kept character
        self._scan_tail = ""                # end of the text already scanned for crashes
        self._queue: deque[str] = deque()
        self._queued = 0
        self._last_output = time.monotonic()
        self._eof = False
        self._closing = False
        self._crash: _Crash | None = None
        self._scan_floor = 0                # crashes ending before this offset are acknowledged
        self._listeners: list[Callable[[str], None]] = []
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._stripper = AnsiStripper()
        self._responder = TerminalResponder(self.profile.rows, self.profile.cols)
        self._idle_timeout: float | None = None
        self._wait_started = 0.0
        self._idle_expired = False
        self._spawn = _ConsoleSpawn(self)
        self._wake_r, self._wake_w = os.pipe()      # close() wakes the drain thread through this
        self._thread = threading.Thread(target=self._drain, name=f"{name}-drain", daemon=True)
        self._thread.start()

    # --- construction ---------------------------------------------------------
    @classmethod
    def connect_unix(cls, path: str | os.PathLike, *, log_path=None, exit_probe=None,
                     profile: ConsoleProfile | None = None, timeout: float = 10.0) -> Console:
        """Connect to a unix stream socket (QEMU ``-chardev socket,server=on``).

        Retries until ``timeout``; raises the ``exit_probe``'s error when QEMU is gone.
        """
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(os.fspath(path))
                break
            except OSError as err:
                sock.close()
                exited = exit_probe() if exit_probe else None
                if exited is not None:
                    raise exited from None
                if time.monotonic() >= deadline:
                    raise ConsoleClosed(f"cannot connect to the console socket {path} "
                                        f"within {timeout:g} s: {err}", log_path=_str(log_path)) from None
                time.sleep(0.05)
        return cls.from_socket(sock, name=Path(path).name, log_path=log_path,
                               exit_probe=exit_probe, profile=profile)

    @classmethod
    def from_socket(cls, sock: socket.socket, *, name: str = "console", log_path=None,
                    exit_probe=None, profile: ConsoleProfile | None = None) -> Console:
        """Use a connected stream socket (the console owns and closes it)."""
        def shutdown():
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        return cls(lambda: sock.recv(65536), lambda view: sock.send(view, socket.MSG_DONTWAIT),
                   sock.fileno(), shutdown, name=name,
                   log_path=log_path, exit_probe=exit_probe, profile=profile)

    @classmethod
    def from_fd(cls, fd: int, *, write_fd: int | None = None, name: str = "console", log_path=None,
                exit_probe=None, profile: ConsoleProfile | None = None, timeout: float = 10.0) -> Console:
        """Use a file descriptor: a pty master, or a pipe to read plus ``write_fd`` to write.

        The console owns the descriptors and closes them.  ``timeout`` is unused
        (kept so both constructors take the same keywords).
        """
        wfd = fd if write_fd is None else write_fd
        os.set_blocking(wfd, False)     # send() waits for room with select, up to its deadline

        def read() -> bytes | None:
            try:
                return os.read(fd, 65536)
            except BlockingIOError:
                return None
            except OSError:             # EIO: the pty's other side closed
                return b""

        def shutdown():
            for d in {fd, wfd}:
                try:
                    os.close(d)
                except OSError:
                    pass
        return cls(read, lambda view: os.write(wfd, view), fd, shutdown, write_fileno=wfd,
                   name=name, log_path=log_path,
                   exit_probe=exit_probe, profile=profile)

    def close(self) -> None:
        """Stop the drain thread and close the stream.  Idempotent."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify_all()
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=2.0)
        self._shutdown()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self) -> Console:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- drain thread -----------------------------------------------------------
    def _drain(self) -> None:
        last_read, streaming = 0.0, 0
        try:
            while not self._closing:
                try:
                    ready, _, _ = select.select([self._fileno, self._wake_r], [], [])
                except (OSError, ValueError):
                    break
                if self._fileno not in ready:
                    continue
                try:
                    data = self._read()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if data is None:
                    continue
                if not data:
                    break
                self._on_bytes(data)
                gap = time.monotonic() - last_read
                streaming = streaming + 1 if gap < COALESCE_STREAMING else 0
                pause = coalesce_pause(len(data), gap, streaming)
                if pause:
                    time.sleep(pause)
                last_read = time.monotonic()
        except Exception:                           # never die silently
            log.exception("%s: drain thread failed", self.name)
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def _on_bytes(self, data: bytes) -> None:
        profile = self.profile
        if profile.answer_queries:
            self._responder.rows, self._responder.cols = profile.rows, profile.cols
            reply = self._responder.feed(data)
            # never wait here: a blocked send() holds the lock, and this thread must keep reading
            if reply and self._write_lock.acquire(blocking=False):
                try:
                    self._write_all(reply, time.monotonic())
                except (OSError, ConsoleTimeout):
                    pass                # the reply is dropped; the guest asks again or does without
                finally:
                    self._write_lock.release()
        text = self._stripper.feed(self._decoder.decode(data))
        with self._cond:
            self._last_output = time.monotonic()
            self._raw += data
            if len(self._raw) > 2 * RAW_LIMIT:
                del self._raw[:-RAW_LIMIT]
            if text:
                self._append_text(text)
            self._cond.notify_all()
        if text:
            for listener in list(self._listeners):
                try:
                    listener(text)
                except Exception:
                    log.exception("%s: console listener failed", self.name)

    def _append_text(self, text: str) -> None:
        """Under the lock: keep, queue and crash-scan a new piece of stripped text."""
        self._chunks.append(text)
        self._text_len += len(text)
        if self._text_len > 2 * TEXT_LIMIT:
            cut = self._text_len - TEXT_LIMIT
            self._chunks = [self._text()[cut:]]
            self._text_len -= cut
            self._text_base += cut
        self._queue.append(text)
        self._queued += len(text)
        if self._queued > QUEUE_LIMIT:
            log.warning("%s: nobody reads the console; dropping the oldest unread text", self.name)
            while self._queued > QUEUE_LIMIT // 2 and len(self._queue) > 1:
                self._queued -= len(self._queue.popleft())
        old = self._scan_tail
        window = old + text
        # one character more than the overlap: it tells whether the overlap starts a line
        self._scan_tail = window[-(SCAN_OVERLAP + 1):]
        if self._crash is None:
            self._scan_for_crash(window, self._text_base + self._text_len - len(window),
                                 1 if len(old) > SCAN_OVERLAP else 0)

    def _text(self) -> str:
        """Under the lock: all kept text as one string."""
        if len(self._chunks) > 1:
            self._chunks = ["".join(self._chunks)]
        return self._chunks[0] if self._chunks else ""

    def _last(self, n: int) -> str:
        """Under the lock: the last ``n`` kept characters (joins only the chunks needed)."""
        if n <= 0:
            return ""
        parts, got = [], 0
        for chunk in reversed(self._chunks):
            parts.append(chunk)
            got += len(chunk)
            if got >= n:
                break
        return "".join(reversed(parts))[-n:]

    def _scan_for_crash(self, window: str, offset: int, pos: int) -> None:
        """Search the new text plus the end of the old (``window``, starting at ``offset``).

        The search starts at ``pos``; from 1, ``^`` matches there only when
        ``window[0]`` is a newline (the overlap may start in mid-line).
        """
        for kind, regex in _crash_regexes(self.profile):
            for m in regex.finditer(window, pos):
                if offset + m.end() > self._scan_floor:
                    line_start = window.rfind("\n", 0, m.start()) + 1
                    self._crash = _Crash(kind, offset + line_start, time.monotonic())
                    return

    # --- listeners ----------------------------------------------------------------
    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(text)`` from the drain thread with each new piece of stripped text."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[str], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # --- what was seen ------------------------------------------------------------
    def tail(self, chars: int = 4000) -> str:
        """The last ``chars`` characters of stripped console text."""
        with self._cond:
            return self._last(chars)

    def mark(self) -> int:
        """A position in the console text, for :meth:`text_since`."""
        with self._cond:
            return self._text_base + self._text_len

    def text_since(self, mark: int) -> str:
        """Stripped text received since ``mark`` (what is still kept of it)."""
        with self._cond:
            return self._last(self._text_base + self._text_len - max(mark, self._text_base))

    def raw_tail(self, size: int = 65536) -> bytes:
        """The last ``size`` raw bytes read from the stream."""
        with self._cond:
            return bytes(self._raw[-size:])

    @property
    def idle_seconds(self) -> float:
        """Seconds since the last byte arrived."""
        return time.monotonic() - self._last_output

    @property
    def closed(self) -> bool:
        """True once the stream ended or :meth:`close` was called."""
        return self._eof or self._closing

    @property
    def before(self) -> str:
        """Text read by the last ``expect`` before its match (or all of it, after a timeout)."""
        return self._spawn.before or ""

    # --- crashes --------------------------------------------------------------------
    @property
    def crash(self) -> GuestError | None:
        """The first crash seen on the console (as the error it raises), or None."""
        with self._cond:
            return self._crash_error() if self._crash else None

    def clear_crash(self) -> None:
        """Acknowledge a recorded crash (e.g. to type into kmdb); scanning resumes after it."""
        with self._cond:
            self._crash = None
            self._scan_floor = self._text_base + self._text_len

    def _crash_error(self) -> GuestError:
        """Under the lock: the error for the recorded crash, with the text after it."""
        crash = self._crash
        start = max(0, crash.start - self._text_base)
        kept = self._text()
        text = kept[start:start + CRASH_TEXT_LIMIT]
        first = text.strip().splitlines()[0] if text.strip() else ""
        tail, log_path = kept[-4000:], self.log_path
        if crash.kind is GuestPanic:
            return GuestPanic(f"guest kernel panic: {first}", panic=text, tail=tail, log_path=log_path)
        if crash.kind is GuestDebugger:
            return GuestDebugger(f"guest entered its kernel debugger: {first}", tail=tail,
                                 log_path=log_path)
        return GuestHalted(f"guest halted: {first}", tail=tail, log_path=log_path)

    def _settled_crash_error(self) -> GuestError:
        """Under the lock: wait briefly for the crash output to finish, then build the error."""
        profile = self.profile
        while not self._eof and not self._closing:
            now = time.monotonic()
            if now - self._crash.detected >= profile.crash_collect:
                break
            if now - self._last_output >= profile.crash_quiet:
                break
            self._cond.wait(0.05)
        return self._crash_error()

    # --- end of stream ---------------------------------------------------------------
    def _closed_error(self) -> GuestError:
        """Not under the lock: the error for a stream that ended."""
        if self._closing:
            return ConsoleClosed(f"{self.name}: console was closed", tail=self.tail(),
                                 log_path=self.log_path)
        if self._exit_probe is not None:
            deadline = time.monotonic() + EXIT_PROBE_GRACE
            while True:
                err = self._exit_probe()
                if err is not None:
                    return err
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.05)
        return ConsoleClosed(f"{self.name}: console connection closed (end of stream)",
                             tail=self.tail(), log_path=self.log_path)

    # --- reading for pexpect -------------------------------------------------------------
    def _take(self, size: int, timeout: float | None) -> str:
        """``read_nonblocking`` for the spawn: queued text, or '' after a short wait."""
        wait = 0.1 if timeout is None else max(0.0, min(timeout, 0.1))
        with self._cond:
            if self._crash is not None and self._check_crash:
                raise self._settled_crash_error()
            if not self._queue and not self._eof and not self._closing:
                self._cond.wait(wait)
                if self._crash is not None and self._check_crash:
                    raise self._settled_crash_error()
            if self._queue:
                return self._pop(size)
            ended = self._eof or self._closing
            if not ended and self._idle_timeout is not None:
                quiet_since = max(self._last_output, self._wait_started)
                if time.monotonic() - quiet_since >= self._idle_timeout:
                    self._idle_expired = True
                    raise pexpect.TIMEOUT("console idle")
        if ended:
            raise self._closed_error()
        return ""

    def _pop(self, size: int) -> str:
        parts, n = [], 0
        while self._queue and n < size:
            piece = self._queue.popleft()
            if n + len(piece) > size:
                self._queue.appendleft(piece[size - n:])
                piece = piece[:size - n]
            parts.append(piece)
            n += len(piece)
        self._queued -= n
        return "".join(parts)

    # --- expect ------------------------------------------------------------------------
    def expect(self, patterns: Patterns, timeout: float = 30.0, *, idle_timeout: float | None = None,
               searchwindowsize: int | None = None, check_crash: bool = True,
               on_text: Callable[[str], None] | None = None) -> ConsoleMatch:
        """Wait for one of ``patterns`` (regex strings or compiled regexes).

        ``timeout`` caps the whole wait; ``idle_timeout`` ends it early when no
        console output at all arrived for that long.  Both raise
        :class:`ConsoleTimeout`.  Crashes and end of stream raise their errors;
        ``check_crash=False`` ignores a recorded crash during this wait (to
        see whether the guest still answers after crash-like text).
        ``on_text(text)`` is called with each new piece of text this wait
        reads, as it arrives (not with :meth:`unmatched` text read before).
        """
        pats = list(patterns) if isinstance(patterns, (list, tuple)) else [patterns]
        return self._expect(lambda: self._spawn.expect(pats, timeout=timeout,
                                                       searchwindowsize=searchwindowsize),
                            pats, timeout, idle_timeout, searchwindowsize, check_crash, on_text)

    def expect_exact(self, strings: str | Sequence[str], timeout: float = 30.0, *,
                     idle_timeout: float | None = None,
                     searchwindowsize: int | None = None) -> ConsoleMatch:
        """Like :meth:`expect` with plain strings instead of regexes."""
        pats = [strings] if isinstance(strings, str) else list(strings)
        return self._expect(lambda: self._spawn.expect_exact(pats, timeout=timeout,
                                                             searchwindowsize=searchwindowsize),
                            pats, timeout, idle_timeout, searchwindowsize)

    def _expect(self, run, pats, timeout: float, idle_timeout: float | None,
                window: int | None, check_crash: bool = True,
                on_text: Callable[[str], None] | None = None) -> ConsoleMatch:
        if timeout is None:
            raise ValueError("every console wait needs a timeout")
        with self._expect_lock:
            self._wait_started = started = time.monotonic()
            self._idle_timeout = idle_timeout
            self._idle_expired = False
            self._spawn.window = window
            self._spawn.on_text = on_text
            self._check_crash = check_crash
            try:
                index = run()
            except pexpect.TIMEOUT:
                raise self._timeout_error(pats, time.monotonic() - started) from None
            finally:
                self._idle_timeout = None
                self._spawn.window = None
                self._spawn.on_text = None
                self._check_crash = True
            s = self._spawn
            return ConsoleMatch(index, s.match, s.before, s.after)

    def _timeout_error(self, pats, waited: float) -> ConsoleTimeout:
        what = " or ".join(repr(getattr(p, "pattern", p)) for p in pats)
        if self._idle_expired:
            msg = (f"{self.name}: no console output for {self.idle_seconds:.1f} s while waiting "
                   f"for {what} (waited {waited:.1f} s in all)")
        else:
            msg = f"{self.name}: timed out after {waited:.1f} s waiting for {what}"
        return ConsoleTimeout(msg, tail=self.tail(), log_path=self.log_path)

    def unmatched(self) -> str:
        """Text read after the last match, which the next ``expect`` searches first."""
        with self._expect_lock:
            return self._spawn._before.getvalue()

    def skip_pending(self) -> None:
        """Forget text no ``expect`` has read yet: later expects see only new output."""
        with self._expect_lock, self._cond:
            self._queue.clear()
            self._queued = 0
            self._spawn.buffer = ""
            self._spawn._before = self._spawn.buffer_type()

    def wait_output(self, mark: int, timeout: float) -> bool:
        """Wait until there is text after ``mark`` (True) or ``timeout`` passed (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._text_base + self._text_len <= mark:
                left = deadline - time.monotonic()
                if left <= 0 or self._eof or self._closing:
                    return False
                self._cond.wait(left)
            return True

    def wait_quiet(self, seconds: float, timeout: float) -> bool:
        """Wait until no output arrived for ``seconds`` (True) or ``timeout`` passed (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                now = time.monotonic()
                quiet_at = self._last_output + seconds
                if now >= quiet_at or self._eof or self._closing:
                    return True
                if now >= deadline:
                    return False
                self._cond.wait(min(quiet_at, deadline) - now)

    # --- sending --------------------------------------------------------------------------
    def _write_all(self, data: bytes, deadline: float) -> None:
        """Under the write lock: write ``data``, waiting for room until ``deadline``."""
        view = memoryview(data)
        while view:
            try:
                view = view[self._write_raw(view):]
                continue
            except (BlockingIOError, InterruptedError):
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ConsoleTimeout(f"{self.name}: the guest side took no console input for "
                                     f"a while ({len(view)} bytes unsent; is the VM stopped?)",
                                     tail=self.tail(), log_path=self.log_path)
            if self._closing:
                raise OSError("console closed")
            select.select([], [self._write_fileno], [], min(remaining, 0.5))

    def send(self, data: str | bytes, timeout: float = SEND_TIMEOUT) -> None:
        """Type ``data`` in ``profile.chunk_size`` chunks with ``profile.chunk_delay`` pauses.

        Raises the crash error once a crash was seen (stop typing), the
        end-of-stream error once the console is gone, and
        :class:`ConsoleTimeout` when the guest side (QEMU) takes no input
        for ``timeout`` s.
        """
        if isinstance(data, str):
            data = data.encode("utf-8")
        deadline = time.monotonic() + timeout
        size = max(1, self.profile.chunk_size)
        for i in range(0, len(data), size):
            self.check_alive()
            if not self._write_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise ConsoleTimeout(f"{self.name}: another writer held the console for "
                                     f"{timeout:g} s", tail=self.tail(), log_path=self.log_path)
            try:
                self._write_all(data[i:i + size], deadline)
            except OSError:
                raise self._closed_error() from None
            finally:
                self._write_lock.release()
            if self.profile.chunk_delay and i + size < len(data):
                time.sleep(self.profile.chunk_delay)

    def sendline(self, line: str = "", timeout: float = SEND_TIMEOUT) -> None:
        """Send ``line`` followed by ``profile.newline``."""
        self.send(line + self.profile.newline, timeout)

    def sendcontrol(self, char: str) -> None:
        """Send a control character: ``sendcontrol('c')`` is ^C."""
        char = char.lower()
        codes = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31, "?": 127}
        if "a" <= char <= "z":
            code = ord(char) - ord("a") + 1
        elif char in codes:
            code = codes[char]
        else:
            raise ValueError(f"no control character for {char!r}")
        self.send(bytes([code]))

    def check_alive(self) -> None:
        """Raise the recorded crash's error, or the end-of-stream error once the console is gone."""
        with self._cond:
            if self._crash is not None:
                raise self._crash_error()
            ended = self._eof or self._closing
        if ended:
            raise self._closed_error()


def _str(path) -> str | None:
    return None if path is None else str(path)
