"""Watch SmartOS boot (and its first-boot setup) on the serial console, step by step.

:class:`FirstBootWatcher` waits on a :class:`~smartos_lab.machine.console.Console`
for the texts a SmartOS boot prints, records each as a :class:`Milestone`
(and reports it to a callback), and ends at the ``login:`` prompt or when the
guest reboots.  The texts and where they come from:

- ``Welcome to SmartOS``: the loader menu title (illumos
  ``usr/src/boot/forth/menu.4th``, ``menu-create``); USB image boot only.
- ``SunOS Release 5.11 Version joyent_<TS> 64-bit``: the kernel banner
  (illumos ``usr/src/uts/common/os/logsubr.c``, ``log_init``).
- ``Couldn't find USB key``: setup found no boot key (smartos-live
  ``src/lib/sdc/usb-key.sh:280``); normal for ISO and direct platform boot.
- setup section headers (``> Networking`` with ``simple_headers``, else
  ``SmartOS Setup`` screens) and progress lines (``Creating pool zones...``,
  ``Making dump zvol...``, ... ``Creating swap zvol...``): smartos-live
  ``src/smartdc/lib/smartos_prompt_config.sh`` lines 622-636, 895-1018.
- ``rebooting...``: printed by the kernel before a reboot (illumos
  ``usr/src/uts/i86pc/os/machdep.c``, ``mdboot``).  Setup ends with
  ``reboot`` (line 1475).  Under QEMU's ``-no-reboot`` the reboot ends QEMU:
  :meth:`FirstBootWatcher.watch` then returns ``"reboot"`` and the caller
  starts the machine again and calls :meth:`~FirstBootWatcher.watch` on the
  new console (the second boot skips setup: the zones pool exists).  A reboot
  inside the same QEMU (fast reboot, or no ``-no-reboot``) shows the kernel
  banner again and the watch goes on.
- ``login:``: ttymon's console prompt (``<nodename> console login:``).

Screens that would wait for ever stop the watch with :class:`SetupError`
showing the console: setup's questions when no :class:`PromptDriver` answers
them (a key missing from ``answers.json``), ``System configuration failed``
(``fatal``, line 92), no NICs (line 1113), no disks (line 792), the manual
pool shell (line 833), another terminal configuring (line 1155), a line that
looks like an unknown prompt, and a console silent for ``timeouts.idle``.
Panics, kmdb and halts raise the console's own errors
(:class:`GuestPanic` ...).
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import ConsoleClosed, ConsoleTimeout, QemuExited, SetupError
from .boot import BootTimeouts
from .prompts import PROMPTS, PromptDriver, SetupPrompt

SCRIPT = "smartos_prompt_config.sh"
PROMPT_SETTLE = 0.2         # a prompt counts once the console is quiet after it for this long
HEADERS = ("Triton", "Networking - Admin", "Networking - Continued", "Networking", "Storage",
           "Self-booting", "Pkgsrc Tools", "System Configuration", "Verify Configuration")


@dataclass(frozen=True)
class Milestone:
    """A step seen on the console: ``name``, seconds since the watch began, the text matched."""

    name: str
    seen_at: float
    text: str = ""


@dataclass(frozen=True)
class _Rule:
    name: str
    pattern: re.Pattern[str]
    kind: str           # "milestone" | "blocker" | "prompt"
    why: str = ""
    prompt: SetupPrompt | None = None


def _m(name: str, pattern: str, why: str = "") -> _Rule:
    return _Rule(name, re.compile(pattern, re.MULTILINE), "milestone", why)


def _b(name: str, pattern: str, why: str) -> _Rule:
    return _Rule(name, re.compile(pattern, re.MULTILINE), "blocker", why)


_HEADER_RE = (r"^(?:> | )(" + "|".join(re.escape(h) for h in HEADERS) + r")[ \t]*"
              r"(?:https://docs\.smartos\.org/install)?[ \t]*\r?\n")

MILESTONES: tuple[_Rule, ...] = (
    _m("loader_menu", r"Welcome to SmartOS"),
    _m("kernel", r"SunOS Release (\S+) Version (\S+) \d+-bit"),
    _m("no_usb_key", r"Couldn't find USB key"),
    _m("setup", _HEADER_RE),
    _m("pool", r"Creating pool (\S+)\.\.\. "),
    _m("pool_exists", r"Pool '(\S+)' exists, skipping creation"),
    _m("dump_zvol", r"Making dump zvol\.\.\. "),
    _m("zones_config", r"Initializing config dataset for zones\.\.\. "),
    _m("config_dataset", r"Creating config dataset\.\.\. "),
    _m("cores_dataset", r"Creating global cores dataset\.\.\. "),
    _m("opt_dataset", r"Creating opt dataset\.\.\. "),
    _m("var_dataset", r"Initializing var dataset\.\.\. "),
    _m("swap_zvol", r"Creating swap zvol\.\.\. "),
    _m("ntp_failure", r"NTP failure setting date and time"),
    _m("setup_complete", r"System setup has completed\."),
    _m("rebooting", r"rebooting\.\.\."),
    _m("login", r"login: "),
)

BLOCKERS: tuple[_Rule, ...] = (
    _b("setup_failed", r"System configuration failed, launching a shell\.",
       f"setup failed and opened a shell ({SCRIPT}:85-97)"),
    _b("no_nics", r"ERROR: cannot configure the system, no NICs were found\.",
       f"setup found no network card ({SCRIPT}:1112-1115); give the machine a NIC"),
    _b("no_disks", r"WARNING: failed to determine possible disk layout",
       f"setup found no disk for the zones pool and opened a shell ({SCRIPT}:785-803)"),
    _b("manual_pool", r"Please manually create/import a zpool named",
       f"setup opened a shell for a manual pool (zpool_confirm_layout 'manual', {SCRIPT}:827-841)"),
    _b("answer_file_missing", r"ERROR: answer file '[^'\r\n]*' does not exist!",
       f"setup was given an answers file that does not exist ({SCRIPT}:1083-1087)"),
    _b("config_in_progress", r"Configuration is already in progress on another terminal",
       f"setup runs on another terminal ({SCRIPT}:1153-1162)"),
)

# Progress steps that only appear once setup is past the point of no return.
_SETUP_WRITES = {"pool", "pool_exists", "dump_zvol", "zones_config", "config_dataset",
                 "cores_dataset", "opt_dataset", "var_dataset", "swap_zvol", "setup_complete"}
_PROMPT_LIKE = re.compile(r"(?:[:?\]>]|\[[^\]]*\]:?)\s*$")


@dataclass
class BootOutcome:
    """How a watch ended: ``"login"`` (prompt reached) or ``"reboot"`` (QEMU ended on a
    guest reboot; start it again and watch the new console)."""

    reached: str
    milestones: list[Milestone] = field(default_factory=list)
    setup_ran: bool = False
    platform_version: str | None = None


class FirstBootWatcher:
    """Follows one lab's boots; keeps its milestones across QEMU restarts.

    ``driver``: a :class:`PromptDriver` that answers setup's questions; without
    one every question is an error naming the missing ``answers.json`` key.
    ``on_milestone(milestone)`` is called for each step as it is seen.
    """

    def __init__(self, *, timeouts: BootTimeouts, driver: PromptDriver | None = None,
                 on_milestone: Callable[[Milestone], None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.timeouts = timeouts
        self.driver = driver
        self.on_milestone = on_milestone
        self.milestones: list[Milestone] = []
        self.platform_version: str | None = None
        self._clock = clock
        self._started = clock()
        self._rules = MILESTONES + BLOCKERS + tuple(
            _Rule(p.key, p.regex, "prompt", prompt=p) for p in PROMPTS)

    # -- public --------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [m.name for m in self.milestones]

    @property
    def setup_ran(self) -> bool:
        return any(m.name in _SETUP_WRITES or m.name.startswith("setup:") for m in self.milestones)

    def watch(self, console, *, timeout: float | None = None) -> BootOutcome:
        """Watch ``console`` until ``login:`` (returns ``"login"``) or a guest reboot
        that ends QEMU (returns ``"reboot"``).

        ``timeout`` caps this call (default: ``timeouts.first_boot``).  Raises
        :class:`SetupError` on a blocking screen, an unknown prompt or a silent
        console; the console's own errors on panics; :class:`QemuExited` or
        :class:`ConsoleClosed` if QEMU ends without a reboot being seen.
        """
        cap = self.timeouts.first_boot if timeout is None else timeout
        deadline = self._clock() + cap
        since_kernel: list[str] = []
        patterns = [r.pattern for r in self._rules]
        # silence after which a prompt-like last line counts as a question nobody answers
        quiet = min(max(5.0, self.timeouts.idle / 16), self.timeouts.idle / 2)
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise SetupError(f"SmartOS did not reach the login prompt within {cap:.0f} s "
                                 f"(last step: {self._last()})",
                                 tail=console.tail(), log_path=console.log_path)
            try:
                m = console.expect(patterns, timeout=remaining, idle_timeout=min(quiet, remaining))
            except ConsoleTimeout:
                self._on_silence(console, since_kernel)
                continue
            except (QemuExited, ConsoleClosed):
                if {"rebooting", "swap_zvol", "setup_complete"} & set(since_kernel):
                    self._record("qemu_exited", "")
                    return self._outcome("reboot")
                raise
            rule = self._rules[m.index]
            if rule.kind == "prompt":
                self._on_prompt(console, rule.prompt, m, since_kernel)
                continue
            if rule.kind == "blocker":
                raise SetupError(f"SmartOS setup stopped: {rule.why}",
                                 tail=console.tail(), log_path=console.log_path)
            name = rule.name
            if name == "setup":
                name = "setup:" + m.match.group(1)
            elif name == "kernel":
                self.platform_version = m.match.group(2)
                since_kernel.clear()
            self._record(name, m.after.strip())
            since_kernel.append(name)
            if name == "login":
                return self._outcome("login")

    # -- helpers --------------------------------------------------------------
    def _record(self, name: str, text: str) -> None:
        ms = Milestone(name, round(self._clock() - self._started, 3), text)
        self.milestones.append(ms)
        if self.on_milestone is not None:
            self.on_milestone(ms)

    def _last(self) -> str:
        return self.milestones[-1].name if self.milestones else "nothing seen yet"

    def _outcome(self, reached: str) -> BootOutcome:
        return BootOutcome(reached, list(self.milestones), self.setup_ran, self.platform_version)

    def _on_prompt(self, console, prompt: SetupPrompt, m, since_kernel: list[str]) -> None:
        console.wait_quiet(PROMPT_SETTLE, timeout=2.0)
        if not console.tail(len(m.after) + 1).endswith(m.after):
            return                              # more text followed: setup is not waiting here
        screen = m.before[-3000:] + m.after
        if self.driver is None:
            where = f"{SCRIPT}:{prompt.line}"
            if prompt.key in ("continue", "final_confirm", "reboot"):
                hint = ("answers.json needs config_console, skip_instructions, skip_ntp_check and "
                        "skip_final_confirm set to true")
            elif prompt.key == "admin_nic_number":
                hint = "answers.json needs admin_nic (the admin NIC's MAC) when there are several NICs"
            elif prompt.key == "confirm_password":
                hint = "answers.json needs root_password"
            else:
                hint = f"answers.json has no usable {prompt.key!r}"
            raise SetupError(f"SmartOS setup is waiting at the prompt {m.after.strip()!r} "
                             f"({where}): {hint}", tail=console.tail(), log_path=console.log_path)
        shown = self.driver.answer(console, prompt, screen)
        self._record(f"answered:{prompt.key}", shown)
        since_kernel.append(f"answered:{prompt.key}")

    def _on_silence(self, console, since_kernel: list[str]) -> None:
        last_line = console.tail(2000).rsplit("\n", 1)[-1].strip("\r")     # "" after a newline
        if console.idle_seconds >= self.timeouts.idle:
            raise SetupError(f"no console output for {console.idle_seconds:.0f} s "
                             f"(limit {self.timeouts.idle:.0f} s) after step '{self._last()}'; "
                             f"the guest seems stuck", tail=console.tail(),
                             log_path=console.log_path) from None
        if _asking(since_kernel) and last_line.strip() and _PROMPT_LIKE.search(last_line):
            raise SetupError(f"SmartOS setup is waiting at a prompt this lab does not know: "
                             f"{last_line.strip()!r} (quiet for {console.idle_seconds:.0f} s)",
                             tail=console.tail(), log_path=console.log_path) from None


def _asking(since_kernel: list[str]) -> bool:
    """True while setup is in its question phase in the current boot (a header or an
    answer was seen, no progress step yet)."""
    started = any(n.startswith(("setup:", "answered:")) for n in since_kernel)
    return started and not _SETUP_WRITES & set(since_kernel)
