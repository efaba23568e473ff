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
import re
import secrets
import shlex
import threading
import time
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
)
from .consoleprotocol import ConsoleProtocol
from .result import CommandResult

LOGIN_REFUSED = r"Login incorrect|Permission denied|Authentication fail|Sorry"
PROMPT_SETTLE = 0.1         # a prompt counts only when nothing follows it for this long
POKE_AFTER = 3.0            # send a newline when no prompt appeared for this long
WINDOW = 4096               # search window for markers (keeps long outputs cheap)
RESYNC_ATTEMPTS = 3
MAX_LINE = 4000             # bytes per typed line (the tty's canonical line holds 4095)
_UNTYPABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")     # control characters but \t and \n
_CRASHES = (GuestPanic, GuestDebugger, GuestHalted)


def login(console: ConsoleProtocol, *, user: str = "root", password: str | None,
          login_prompt: str = r"login: ?$", password_prompt: str = r"[Pp]assword: ?$",
          shell_prompt: str = r"[#$] ?$", timeout: float = 60.0) -> None:
    """Log in as ``user`` and return at a shell prompt.

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
    """
    refused = re.compile(LOGIN_REFUSED)
    prompts = [(kind, re.compile(p)) for kind, p in
               (("shell", shell_prompt), ("password", password_prompt), ("login", login_prompt))]
    deadline = time.monotonic() + timeout
    since = max(0, console.mark() - 2000)       # a prompt may already be on the screen
    last_typed = time.monotonic()
    typed_any = sent_password = False

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
        text = console.text_since(since)
        if text and console.idle_seconds >= PROMPT_SETTLE:
            m = refused.search(text) if typed_any else None
            if m:
                raise LoginFailed(f"login as {user} refused: {m.group()}", tail=console.tail(),
                                  log_path=console.log_path)
            kind = next((k for k, p in prompts if p.search(text)), None)
            if kind == "shell":
                console.skip_pending()
                return
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
            type_line("")                       # nothing to answer: poke for a fresh prompt
            continue
        time.sleep(0.02)


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


class ConsoleShell:
    """Framed commands over a :class:`Console` at a shell prompt (see the module docstring)."""

    transport = "console"

    def __init__(self, console: ConsoleProtocol):
        self.console = console
        self.nonce = secrets.token_hex(4)
        self.prompt = f"sl-{self.nonce}# "
        self._seq = itertools.count(1)
        self._ready = False
        self._lock = threading.RLock()          # one command at a time on the console

    def _frame(self) -> Frame:
        return Frame(f"{self.nonce}_{next(self._seq)}")

    def setup(self, timeout: float = 30.0) -> None:
        """Prepare the shell at the console's prompt for framed commands.

        The set-up lines are typed one at a time, each after the prompt that
        follows the previous one: while a shell edits lines (raw tty mode),
        text typed ahead would bypass the tty's line handling.
        """
        with self._lock:
            self._setup(timeout)

    def _setup(self, timeout: float) -> None:
        c = self.console
        deadline = time.monotonic() + timeout
        c.wait_quiet(0.3, timeout=min(3.0, timeout))    # let the prompt (and its queries) finish
        prompt_re = re.compile(re.escape(self.prompt))     # the echoed PS1= line has it split by quotes
        for line in (f"stty -echo; PS1='sl-''{self.nonce}# '; PS2=''; unset PROMPT_COMMAND",
                     "bind 'set enable-bracketed-paste off' 2>/dev/null; "
                     "set +o vi +o emacs 2>/dev/null; true"):
            self._type(line)
            try:
                c.expect(prompt_re, timeout=max(0.0, deadline - time.monotonic()))
            except ConsoleTimeout as err:
                raise ConsoleTimeout(f"no shell answers on {c.name}: {err.reason}",
                                     tail=err.tail, log_path=err.log_path) from None
        self._sync(max(0.0, deadline - time.monotonic()))
        self._ready = True

    def _type(self, line: str) -> None:
        """Type one command line, led by ^U (the tty's line kill) so that stray
        input, e.g. a late answer to a terminal query, cannot prefix it."""
        self.console.sendline("\x15" + line)

    def _sync(self, timeout: float) -> None:
        frame = self._frame()
        self._type(frame.sync_line())
        try:
            self.console.expect(frame.sync_re, timeout=timeout, searchwindowsize=WINDOW)
        except ConsoleTimeout as err:
            raise ConsoleTimeout(f"no shell answers on {self.console.name}: {err.reason}",
                                 tail=err.tail, log_path=err.log_path) from None

    def run(self, command: str, timeout: float = 60.0) -> CommandResult:
        """Run ``command``; return its exit status and output (stdout and stderr
        merged, ANSI-stripped, ``\r\n`` -> ``\n``: see the module docstring).

        After ``timeout`` s the command is interrupted with ^C, the shell is
        resynchronised and :class:`CommandTimeout` is raised (``.output``
        holds what the command printed so far); the next ``run`` works.  When
        the shell does not come back after three ^C, CommandTimeout says so
        and the next ``run`` first tries :meth:`setup` again.
        Commands from several threads run one after the other.
        """
        with self._lock:
            return self._run(command, timeout)

    def _run(self, command: str, timeout: float) -> CommandResult:
        frame = self._frame()
        line = frame.command_line(command)
        check_typable(command, line)
        if not self._ready:
            self.setup()
        started = time.monotonic()
        deadline = started + timeout
        self._type(line)
        waits = [frame.begin_re, frame.end_re]
        try:
            try:
                while waits:
                    m = self.console.expect(waits[0], timeout=max(0.0, deadline - time.monotonic()),
                                            searchwindowsize=WINDOW)
                    waits.pop(0)
            except _CRASHES as crash:
                m = self._finish_after_crash_text(waits, crash)
        except ConsoleTimeout:
            partial = normalise_output(self.console.before)
            try:
                self._interrupt()
            except CommandTimeout as err:
                err.command, err.output = command, partial
                raise
            err = CommandTimeout(f"command did not finish within {timeout:g} s and was "
                                 f"interrupted: {command}", tail=self.console.tail(),
                                 log_path=self.console.log_path)
            err.command, err.output = command, partial
            raise err from None
        return CommandResult(command=command, exit_status=int(m.match.group(1)),
                             stdout=normalise_output(m.before),
                             duration=time.monotonic() - started, transport="console")

    def check(self, command: str, timeout: float = 60.0) -> CommandResult:
        """:meth:`run`, raising :class:`CommandFailed` on a non-zero exit."""
        return self.run(command, timeout).check()

    def _finish_after_crash_text(self, waits: list, crash: GuestError):
        """A crash was seen while a command ran: if its markers still come within
        ``crash_collect`` s, the crash was text in its output: clear it, return the end match."""
        c = self.console
        limit = time.monotonic() + c.profile.crash_collect
        try:
            while waits:
                m = c.expect(waits[0], timeout=max(0.0, limit - time.monotonic()),
                             searchwindowsize=WINDOW, check_crash=False)
                waits.pop(0)
        except ConsoleTimeout:
            raise crash from None
        c.clear_crash()
        return m

    def _interrupt(self) -> None:
        """^C the running command and get the shell back; raise when it does not come back."""
        for attempt in range(1, RESYNC_ATTEMPTS + 1):
            self.console.sendcontrol("c")
            time.sleep(0.2)
            try:
                self._sync(timeout=5.0 * attempt)
                return
            except ConsoleTimeout:
                continue
        self._ready = False
        raise CommandTimeout(f"the shell on {self.console.name} did not come back after "
                             f"{RESYNC_ATTEMPTS} x ^C", tail=self.console.tail(),
                             log_path=self.console.log_path)
