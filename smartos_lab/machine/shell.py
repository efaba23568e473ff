"""Log in on a serial console and run framed shell commands over it.

:func:`login` gets from a ``login:`` prompt (or an unknown state) to a shell
prompt.  :class:`ConsoleShell` then runs commands one at a time:

- ``setup()`` turns terminal echo off (``stty -echo``, which also stops
  busybox ash's line editing and its ``ESC[6n`` queries), sets a unique
  ``PS1``, an empty ``PS2``, no ``PROMPT_COMMAND``, and in bash turns off
  bracketed paste and readline editing.
- ``run()`` types one line::

      printf '%s\\n' '__sl''_<id>_b__'; command eval '<command>'; printf '%s:%d:\\n' '__sl''_<id>_e__' "$?"

  and takes everything between the printed begin marker and the end marker
  as the output.  The markers are split by quotes on the command line, so an
  echoed command line can never match them, and ``<id>`` is new for every
  command, so a late marker from an interrupted command never matches.
  The command goes through ``eval`` as one single-quoted word
  (``shlex.quote``): multi-line commands, heredocs, quotes and ``;`` work
  unchanged in busybox ash, bash and ksh, and a syntax error is reported by
  ``eval`` (exit status 2) instead of leaving the shell waiting for more
  input.  ``command eval`` keeps a syntax error from aborting the rest of the
  line (POSIX: ``command`` drops the special-builtin rules), so the end
  marker still comes.  Variables, ``cd`` and functions persist between
  commands; ``exit`` ends the shell.
  A command whose framed line has a line longer than ``MAX_LINE`` bytes (the
  tty's canonical line limit is 4095) or a control character other than
  newline and tab (the tty's line discipline would act on it: ^U erases the
  line, ^C interrupts, ...) is refused with :class:`ConfigError`: send such
  content over SSH or with ``GuestShell.put``.

A crash pattern in the output of a command (``echo 'Kernel panic - ...'``,
an old panic in a message buffer) does not make a crash: when the command's
end marker still arrives within the profile's ``crash_collect`` seconds, the
kernel is alive, the recorded crash is cleared and the result returned.

Output over the console is stdout and stderr merged, ANSI-stripped (escape
sequences and stray control bytes removed: matching works on stripped
text), with ``\\r\\n`` turned into ``\\n``; otherwise exactly what the command
printed (no trailing newline if it printed none).  Kernel messages that the
guest prints on the console while a command runs end up in its output.
"""
from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import (
    CommandTimeout,
    ConfigError,
    ConsoleTimeout,
    GuestDebugger,
    GuestError,
    GuestHalted,
    GuestPanic,
    LoginFailed,
    ShellExited,
)
from .console import SEND_TIMEOUT
from .consoleprotocol import ConsoleProtocol
from .result import CommandResult, OnOutput, refuse_nul

log = logging.getLogger(__name__)

LOGIN_REFUSED = r"Login incorrect|Permission denied|Authentication fail|Sorry"
PROMPT_SETTLE = 0.05        # a prompt counts only when nothing follows it for this long
POKE_AFTER = 3.0            # send a newline when no prompt appeared for this long
SETUP_QUIET = 0.05          # quiet console before the set-up lines are typed
WINDOW = 4096               # search window for markers (keeps long outputs cheap)
RESYNC_ATTEMPTS = 3
INTERRUPT_BUDGET = 5.0      # ^C and resync after a timeout take at most this long
SYNC_WAIT = 1.0             # the shell's answer to a resync after ^C number n: n x this
SETUP_TIMEOUT = 30.0        # setting the shell up again (login prompt, or after a lost resync)
RELOGIN_TIMEOUT = 30.0      # from a shell's end to the next login prompt
LOGIN_PROMPT_RE = re.compile(r"login: ?$")
MAX_LINE = 4000             # bytes per typed line (the tty's canonical line holds 4095)
_UNTYPABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")     # control characters but \t and \n
_CRASHES = (GuestPanic, GuestDebugger, GuestHalted)


def login(console: ConsoleProtocol, *, user: str = "root", password: str | None,
          login_prompt: str = r"login: ?$", password_prompt: str = r"[Pp]assword: ?$",
          shell_prompt: str = r"[#$] ?$", timeout: float = 60.0) -> list[str]:
    """Log in as ``user`` and return at a shell prompt; return notes on anything done
    besides logging in (e.g. a left-over command interrupted).

    A prompt is what the console shows last once it has been quiet for a
    moment (so ``Password`` arriving before its ``: `` or ``Last login: ...``
    in a banner is not taken for a prompt): the prompt patterns are searched
    in the text printed since the last thing typed, ``$`` being its end.
    Works from a ``login:`` prompt, a password prompt or a shell prompt (then
    it only checks it); a newline is sent when nothing shows for a few seconds.
    Raises :class:`LoginFailed` when the guest refuses the login,
    :class:`ConsoleTimeout` when no shell prompt appears within ``timeout``.
    Unread console text is skipped at the end, so later ``expect`` calls see
    only what comes after the login.

    A framed command still running on the console (its begin marker is the
    last one in the serial log, with no end marker: the process that ran it
    died) is interrupted with ^C first; so is a console that stays silent
    after two pokes.  Both are logged as warnings and noted.
    """
    notes: list[str] = []
    left = _left_running(console)
    if left:
        console.send(b"\x03")
        notes.append(f"interrupted (^C) command {left} that a previous holder of the console "
                     "left running")
        log.warning("%s: %s", console.name, notes[-1])
    refused = re.compile(LOGIN_REFUSED)
    prompts = [(kind, re.compile(p)) for kind, p in
               (("shell", shell_prompt), ("password", password_prompt), ("login", login_prompt))]
    deadline = time.monotonic() + timeout
    since = max(0, console.mark() - 2000)       # a prompt may already be on the screen
    last_typed = time.monotonic()
    typed_any = sent_password = False
    pokes = 0

    def type_line(line: str) -> None:
        nonlocal since, last_typed
        since = console.mark()
        console.sendline(line)
        last_typed = time.monotonic()

    while True:
        console.check_alive()
        now = time.monotonic()
        if now >= deadline:
            raise ConsoleTimeout(f"no shell prompt after logging in as {user} within {timeout:g} s "
                                 f"(waiting for {shell_prompt!r})", tail=console.tail(),
                                 log_path=console.log_path)
        seen = console.mark()                   # taken first: text after it wakes the wait below
        text = console.text_since(since)
        if text and console.idle_seconds >= PROMPT_SETTLE:
            m = refused.search(text) if typed_any else None
            if m:
                raise LoginFailed(f"login as {user} refused: {m.group()}", tail=console.tail(),
                                  log_path=console.log_path)
            kind = next((k for k, p in prompts if p.search(text)), None)
            if kind == "shell":
                console.skip_pending()
                return notes
            if kind == "password":
                if password is None:
                    raise LoginFailed(f"the guest asks a password for {user} and none was given",
                                      tail=console.tail(), log_path=console.log_path)
                type_line(password)
                typed_any = sent_password = True
                continue
            if kind == "login":
                if sent_password:
                    raise LoginFailed(f"login as {user} refused: login prompt again",
                                      tail=console.tail(), log_path=console.log_path)
                type_line(user)
                typed_any = True
                continue
        if now - last_typed >= POKE_AFTER and console.idle_seconds >= POKE_AFTER:
            pokes += 1
            if pokes == 3 and not typed_any and not console.text_since(since):
                console.send(b"\x03")          # silent after two pokes: something holds the tty
                notes.append("the console did not answer two newlines; sent ^C")
                log.warning("%s: %s", console.name, notes[-1])
            type_line("")                       # nothing to answer: poke for a fresh prompt
            continue
        # sleep until the text may have settled into a prompt, or new text comes
        idle = console.idle_seconds
        if text and idle < PROMPT_SETTLE:
            time.sleep(PROMPT_SETTLE - idle)
        else:
            console.wait_output(seen, min(POKE_AFTER, max(0.01, deadline - now)))


_BEGIN_RE = re.compile(r"__sl_([0-9a-f]+_\d+)_b__")
_EXITED_RE = re.compile(r"__sl_[0-9a-f]+_x__")


def _left_running(console: ConsoleProtocol, size: int = 1 << 18) -> str | None:
    """The token of a framed command begun but not ended at the end of the serial log, or None."""
    if not console.log_path:
        return None
    try:
        with open(console.log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    found = list(_BEGIN_RE.finditer(text))
    begun = found[-1] if found else None
    if begun is None:
        return None
    after = text[begun.end():]
    if f"__sl_{begun.group(1)}_e__" in after or _EXITED_RE.search(after):
        return None
    return begun.group(1)


@dataclass(frozen=True)
class Frame:
    """Markers framing one command (or one resync) in the console text."""

    token: str          # unique: shell nonce + sequence number

    def _marker(self, kind: str) -> tuple[str, str]:
        """(text the shell prints, quoted form that appears on the command line)."""
        text = f"__sl_{self.token}_{kind}__"
        return text, f"'__sl''_{self.token}_{kind}__'"

    def command_line(self, command: str) -> str:
        _, begin = self._marker("b")
        _, end = self._marker("e")
        return (f"printf '%s\\n' {begin}; command eval {shlex.quote(command)}; "
                f"printf '%s:%d:\\n' {end} \"$?\"")

    def sync_line(self) -> str:
        return f"printf '%s\\n' {self._marker('s')[1]}"

    @property
    def end_text(self) -> str:
        """What the shell prints to end the command's output (before ``:<status>:``)."""
        return self._marker("e")[0]

    @property
    def begin_re(self) -> re.Pattern[str]:
        return re.compile(re.escape(self._marker("b")[0]) + r"\r*\n")

    @property
    def end_re(self) -> re.Pattern[str]:
        return re.compile(re.escape(self._marker("e")[0]) + r":(\d+):")

    @property
    def sync_re(self) -> re.Pattern[str]:
        return re.compile(re.escape(self._marker("s")[0]) + r"\r*\n")


def check_typable(command: str, line: str) -> None:
    """Raise ConfigError unless ``line`` (``command`` framed) can be typed into a tty as it is."""
    refuse_nul(command)
    bad = _UNTYPABLE.search(command)
    if bad:
        raise ConfigError(f"command has control character {bad.group()!r} at offset {bad.start()}, "
                          "which the console's terminal would act on; use SSH or GuestShell.put "
                          f"for binary content: {command[:200]!r}")
    longest = max(len(part.encode("utf-8")) for part in line.split("\n")) + 2    # ^U, newline
    if longest > MAX_LINE:
        raise ConfigError(f"command has a {longest}-byte line once framed, over the console's "
                          f"{MAX_LINE}-byte line limit; split it, or use SSH or GuestShell.put "
                          f"for big content: {command[:200]!r}")


def normalise_output(text: str) -> str:
    """Console output as the command printed it: ``\\r\\n`` (``onlcr``) back to ``\\n``."""
    return re.sub(r"\r+\n", "\n", text)


class _OutputStream:
    """Passes a command's console output on as it arrives, normalised like the result.

    Fed the text after the begin marker; holds back what may be the start of
    the end marker or of a ``\\r\\n``, and stops at the end marker.  What it
    passed on is always a prefix of the final output; :meth:`finish` sends the rest.
    """

    def __init__(self, end_marker: str, on_output: OnOutput):
        self.end_marker = end_marker
        self.on_output = on_output
        self.pending = ""
        self.sent = 0           # characters of normalised output passed on
        self.started = False
        self.done = False

    def feed(self, text: str) -> None:
        self.started = True
        if self.done or not text:
            return
        self.pending += text
        cut = self.pending.find(self.end_marker)
        if cut >= 0:
            self.done = True
        else:
            cut = len(self.pending) - _held_back(self.pending, self.end_marker)
        safe, self.pending = self.pending[:cut], self.pending[cut:]
        self._send(normalise_output(safe))

    def finish(self, output: str) -> None:
        self._send(output[self.sent:])

    def _send(self, text: str) -> None:
        if text:
            self.sent += len(text)
            self.on_output(text, "stdout")


def _held_back(text: str, marker: str) -> int:
    """How many characters at the end of ``text`` may start ``marker`` or a ``\\r+\\n``."""
    for n in range(min(len(marker) - 1, len(text)), 0, -1):
        if marker.startswith(text[-n:]):
            return n
    return len(text) - len(text.rstrip("\r"))


class ConsoleShell:
    """Framed commands over a :class:`Console` at a shell prompt (see the module docstring).

    ``relogin()``, when given, logs in again at the console's login prompt
    (e.g. ``functools.partial(login, console, user=..., password=...)``): a
    command that ends the shell is then answered by a new login instead of
    leaving the console at ``login:``.
    """

    transport = "console"

    def __init__(self, console: ConsoleProtocol, *, relogin: Callable[[], object] | None = None):
        self.console = console
        self.relogin = relogin
        self.nonce = secrets.token_hex(4)
        self.prompt = f"sl-{self.nonce}# "
        self._seq = itertools.count(1)
        self._ready = False
        self._lock = threading.RLock()          # one command at a time on the console
        self._exit_re = re.compile(re.escape(f"__sl_{self.nonce}_x__"))
        self._idle_mark = 0                     # console position after the last command

    def _frame(self) -> Frame:
        return Frame(f"{self.nonce}_{next(self._seq)}")

    def setup(self, timeout: float = 30.0) -> None:
        """Prepare the shell at the console's prompt for framed commands.

        The set-up lines are typed one at a time, each after the prompt that
        follows the previous one: while a shell edits lines (raw tty mode),
        text typed ahead would bypass the tty's line handling.  The shell gets
        an ``EXIT`` trap printing a marker, so that a command ending the shell
        is noticed at once.
        """
        with self._lock:
            self._setup(timeout)

    def _setup(self, timeout: float) -> None:
        c = self.console
        deadline = time.monotonic() + timeout
        # login() returned at a prompt that had been quiet for PROMPT_SETTLE; a moment more lets
        # a terminal query sent with it (and our answer) pass before the first line is typed
        c.wait_quiet(SETUP_QUIET, timeout=min(3.0, timeout))
        prompt_re = re.compile(re.escape(self.prompt))     # the echoed PS1= line has it split by quotes
        for line in (f"stty -echo; PS1='sl-''{self.nonce}# '; PS2=''; unset PROMPT_COMMAND",
                     f"trap \"printf '%s\\\\n' '__sl''_{self.nonce}_x__'\" EXIT; "
                     "bind 'set enable-bracketed-paste off' 2>/dev/null; "
                     "set +o vi +o emacs 2>/dev/null; true"):
            self._type(line, deadline)
            try:
                c.expect(prompt_re, timeout=max(0.0, deadline - time.monotonic()))
            except ConsoleTimeout as err:
                raise ConsoleTimeout(f"no shell answers on {c.name}: {err.reason}",
                                     tail=err.tail, log_path=err.log_path) from None
        self._sync(max(0.0, deadline - time.monotonic()))
        self._ready = True
        self._idle_mark = c.mark()

    def _type(self, line: str, deadline: float | None = None) -> None:
        """Type one command line, led by ^U (the tty's line kill) so that stray
        input, e.g. a late answer to a terminal query, cannot prefix it."""
        timeout = SEND_TIMEOUT if deadline is None else max(0.1, deadline - time.monotonic())
        self.console.sendline("\x15" + line, timeout=timeout)

    def _sync(self, timeout: float) -> None:
        frame = self._frame()
        self._type(frame.sync_line(), time.monotonic() + timeout)
        try:
            self.console.expect(frame.sync_re, timeout=timeout, searchwindowsize=WINDOW)
        except ConsoleTimeout as err:
            raise ConsoleTimeout(f"no shell answers on {self.console.name}: {err.reason}",
                                 tail=err.tail, log_path=err.log_path) from None

    def run(self, command: str, timeout: float = 60.0, *,
            on_output: OnOutput | None = None) -> CommandResult:
        """Run ``command``; return its exit status and output (stdout and stderr
        merged, ANSI-stripped, ``\\r\\n`` -> ``\\n``: see the module docstring).

        ``on_output(text, "stdout")`` receives the output as it arrives (see
        :data:`~smartos_lab.machine.result.OnOutput`).  After ``timeout`` s the
        command is interrupted with ^C, the shell is resynchronised and
        :class:`CommandTimeout` is raised (``.output`` holds what the command
        printed so far); the next ``run`` works.  A ``KeyboardInterrupt``
        while it runs (also one raised by ``on_output``) does the same and is
        raised again.  Stopping takes at most ``INTERRUPT_BUDGET`` s more; when
        the shell does not come back, CommandTimeout says so and the next
        ``run`` first tries :meth:`setup` again.  A command that ends the shell
        (``exit``) raises :class:`ShellExited` after logging in again (with
        ``relogin``).  Commands from several threads run one after the other.
        """
        with self._lock:
            return self._run(command, timeout, on_output)

    def check(self, command: str, timeout: float = 60.0, *,
              on_output: OnOutput | None = None) -> CommandResult:
        """:meth:`run`, raising :class:`CommandFailed` on a non-zero exit."""
        return self.run(command, timeout, on_output=on_output).check()

    def _run(self, command: str, timeout: float, on_output: OnOutput | None) -> CommandResult:
        frame = self._frame()
        line = frame.command_line(command)
        check_typable(command, line)
        started = time.monotonic()
        deadline = started + timeout
        if not self._ready:
            self._recover(deadline)
        elif self._ended_while_idle():
            log.warning("%s: the shell had ended since the last command (a background job "
                        "ending it?); logging in again", self.console.name)
            self._log_in_again(max(deadline, time.monotonic() + SETUP_TIMEOUT))
        stream = _OutputStream(frame.end_text, on_output) if on_output else None
        waits: list = [frame.begin_re, [frame.end_re, self._exit_re]]
        try:
            self._type(line, deadline)
            try:
                try:
                    m = self._wait(waits, deadline, stream)
                except _CRASHES as crash:
                    m = self._finish_after_crash_text(waits, crash, stream)
            except ConsoleTimeout:
                partial = normalise_output(self.console.before)
                try:
                    done = self._interrupt()
                except CommandTimeout as err:
                    err.command, err.output = command, partial
                    raise
                err = CommandTimeout(f"command did not finish within {timeout:g} s and was "
                                     f"interrupted{done}: {command}", tail=self.console.tail(),
                                     log_path=self.console.log_path)
                err.command, err.output = command, partial
                raise err from None
        except KeyboardInterrupt:
            self._interrupt_quietly()
            raise
        output = normalise_output(m.before)
        self._idle_mark = self.console.mark()
        if m.index == 1:
            self._shell_ended(command, output, deadline)
        if stream is not None:
            stream.finish(output)
        return CommandResult(command=command, exit_status=int(m.match.group(1)),
                             stdout=output, duration=time.monotonic() - started,
                             transport="console")

    def _wait(self, waits: list, deadline: float, stream: _OutputStream | None,
              check_crash: bool = True):
        """Expect each of ``waits`` in turn (the last one streamed); return the last match."""
        m = None
        while waits:
            last = len(waits) == 1
            if stream is not None and last and not stream.started:
                stream.feed(self.console.unmatched())       # read with the begin marker
            m = self.console.expect(waits[0], timeout=max(0.0, deadline - time.monotonic()),
                                    searchwindowsize=WINDOW, check_crash=check_crash,
                                    on_text=stream.feed if last and stream else None)
            waits.pop(0)
        return m

    def _finish_after_crash_text(self, waits: list, crash: GuestError,
                                 stream: _OutputStream | None = None):
        """A crash was seen while a command ran: if its markers still come within
        ``crash_collect`` s, the crash was text in its output: clear it, return the end match."""
        c = self.console
        try:
            m = self._wait(waits, time.monotonic() + c.profile.crash_collect, stream,
                           check_crash=False)
        except ConsoleTimeout:
            raise crash from None
        c.clear_crash()
        return m

    # --- getting the shell back ------------------------------------------------------------
    def _interrupt_quietly(self) -> None:
        """After a KeyboardInterrupt: ^C the command and resync; the interrupt is what is
        raised, so a shell that does not come back is only marked for a new setup."""
        try:
            self._interrupt()
        except KeyboardInterrupt:           # a second interrupt: stop trying, set up again next time
            self._ready = False
        except GuestError:
            self._ready = False

    def _interrupt(self) -> str:
        """^C the running command and get the shell back within ``INTERRUPT_BUDGET`` s;
        return what was done beyond that (for the message); raise when it does not come back."""
        limit = time.monotonic() + INTERRUPT_BUDGET
        for attempt in range(1, RESYNC_ATTEMPTS + 1):
            if self._at_login_prompt():
                return self._log_in_again(limit)
            remaining = limit - time.monotonic()
            if remaining <= 0:
                break
            try:
                self.console.send(b"\x03", timeout=remaining)
                self._sync(timeout=min(remaining, SYNC_WAIT * attempt))
                return ""
            except ConsoleTimeout:
                continue
        self._ready = False
        raise CommandTimeout(f"the shell on {self.console.name} did not come back after ^C "
                             f"within {INTERRUPT_BUDGET:g} s (is the VM stopped?); the next "
                             "command sets it up again", tail=self.console.tail(),
                             log_path=self.console.log_path)

    def _recover(self, deadline: float) -> None:
        """Before a command, when the last one left the shell unsynchronised."""
        budget = max(1.0, min(SETUP_TIMEOUT, deadline - time.monotonic()))
        if self._at_login_prompt():
            self._log_in_again(time.monotonic() + budget)
            return
        self._setup(budget)

    def _ended_while_idle(self) -> bool:
        """The shell's EXIT trap printed its marker, or a login prompt shows, since the last command."""
        return bool(self._exit_re.search(self.console.text_since(self._idle_mark))
                    or self._at_login_prompt())

    def _at_login_prompt(self) -> bool:
        return bool(LOGIN_PROMPT_RE.search(self.console.tail(200)))

    def _log_in_again(self, limit: float) -> str:
        """At a login prompt: log in with ``relogin`` and set the shell up again."""
        self._ready = False
        if self.relogin is None:
            raise ShellExited(f"the console {self.console.name} is at a login prompt and this "
                              "shell has no relogin to log in again", tail=self.console.tail(),
                              log_path=self.console.log_path)
        self.relogin()
        self._setup(max(SETUP_TIMEOUT, limit - time.monotonic()))
        return "; the shell had ended, so it logged in again at the login prompt"

    def _shell_ended(self, command: str, output: str, deadline: float) -> None:
        """The command ended the shell (its EXIT trap printed the marker): log in again, raise."""
        self._ready = False
        what = "it is at the login prompt"
        if self.relogin is not None:
            limit = max(deadline, time.monotonic() + RELOGIN_TIMEOUT)
            self.console.expect(LOGIN_PROMPT_RE, timeout=max(1.0, limit - time.monotonic()))
            self._log_in_again(limit)
            what = "logged in again and resynchronised"
        err = ShellExited(f"the command ended the shell on {self.console.name}; {what}: "
                          f"{command}", tail=self.console.tail(), log_path=self.console.log_path)
        err.command, err.output = command, output
        raise err
