"""Answer SmartOS's first-boot setup questions by typing at the console.

For images whose setup ignores ``answers.json`` (or when a key is missing),
:class:`PromptDriver` recognises each question ``smartos_prompt_config.sh``
prints and types the value from :class:`SetupAnswers`.  The prompt texts are
built the way the script's helpers build them (``promptval``/``promptnet``:
``"<text> [<default>]: "`` or ``"<text>: "``; ``promptopt``: ``"<text>
[press enter for none]: "``; ``promptpw``: ``"<text>: "``; lines 305-601), so
each pattern accepts an optional ``[...]`` default.  On a first boot the
script's own variables are empty (``load_sdc_config`` prefixes the config
keys with ``CONFIG_``, smartos-live ``src/lib/sdc/config.sh``), which is why
e.g. the IP prompt has no default the first time round.

Typing waits ``answer_delay`` seconds after the prompt appeared: input sent
within a millisecond of a prompt can be held back (smartos-facts section 3).
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import SetupError
from .answers import SetupAnswers, normalize_mac

_DEFAULT = r"(?: \[[^\]\r\n]*\])?"   # the optional " [default]" part of a prompt


@dataclass(frozen=True)
class SetupPrompt:
    """One question setup may ask.

    ``key`` is the answers key whose value is typed (or a pseudo key:
    ``continue``, ``admin_nic_number``, ``confirm_password``, ``final_confirm``,
    ``reboot``).  ``line`` is where the script prints it.
    """

    key: str
    pattern: str
    line: int
    secret: bool = False

    @property
    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern)


#: Every prompt of smartos_prompt_config.sh, in the order setup asks them.
PROMPTS: tuple[SetupPrompt, ...] = (
    SetupPrompt("continue", r"Press \[enter\] to continue ?", 1139),
    SetupPrompt("admin_nic_number",
                r"Enter the number of the NIC for the 'admin' interface: ", 515),
    SetupPrompt("admin_ip", r"\(admin\) IP address \(or dhcp\)" + _DEFAULT + ": ", 1204),
    SetupPrompt("admin_netmask", r"\(admin\) netmask" + _DEFAULT + ": ", 1211),
    SetupPrompt("headnode_default_gateway", r"Enter the default gateway IP" + _DEFAULT + ": ", 1243),
    SetupPrompt("dns_resolver1", r"Enter the Primary DNS server IP" + _DEFAULT + ": ", 1259),
    SetupPrompt("dns_resolver2", r"Enter the Secondary DNS server IP" + _DEFAULT + ": ", 1261),
    SetupPrompt("dns_search", r"Default DNS search domain" + _DEFAULT + ": ", 1263),
    SetupPrompt("ntp_host", r"Enter an NTP server IP address or hostname" + _DEFAULT + ": ", 1280),
    SetupPrompt("zpool_confirm_layout", r"Selected zpool layout" + _DEFAULT + ": ", 818),
    SetupPrompt("bootpool", r"Specify a \(configured\) zpool from which to boot" + _DEFAULT + ": ",
                1317),
    SetupPrompt("pisource", r"Source for SmartOS to install" + _DEFAULT + ": ", 1327),
    SetupPrompt("install_pkgsrc", r"Install pkgsrc\?" + _DEFAULT + ": ", 1346),
    SetupPrompt("root_password", r"Enter root password(?: \[enter to keep existing\])?: ", 1361,
                secret=True),
    SetupPrompt("confirm_password", r"Confirm password: ", 588, secret=True),
    SetupPrompt("hostname", r"Enter system hostname" + _DEFAULT + ": ", 1364),
    SetupPrompt("final_confirm", r"Is this correct, proceed with installation\?" + _DEFAULT + ": ",
                1399),
    SetupPrompt("reboot", r"Press enter to reboot\.\r*\n", 1472),
)

# A row of setup's NIC table: "%-6d %-9s %-18s %-7s %-10s" (printnics, line 482).
_NIC_ROW = re.compile(r"^\s*(\d+)\s+(\S+)\s+([0-9a-fA-F:]{11,17})\s", re.MULTILINE)


def prompt_for_key(key: str) -> SetupPrompt:
    for p in PROMPTS:
        if p.key == key:
            return p
    raise KeyError(key)


def typed_answer(prompt: SetupPrompt, answers: SetupAnswers, screen: str = "") -> str:
    """What to type at ``prompt`` (without the Enter).  ``screen`` is the console
    text before the prompt (the NIC prompt needs the table printed above it)."""
    key = prompt.key
    if key in ("continue", "reboot"):
        return ""
    if key == "admin_nic_number":
        return _nic_number(answers, screen)
    if key in ("root_password", "confirm_password"):
        return answers.root_password
    if key == "install_pkgsrc":
        return "yes" if answers.install_pkgsrc else "no"
    if key == "final_confirm":
        return "y"
    if key == "admin_netmask" and not answers.admin_netmask:
        return ""                                   # take the offered 255.255.255.0
    return str(getattr(answers, key))


def _nic_number(answers: SetupAnswers, screen: str) -> str:
    rows = [(num, mac) for num, _link, mac in _NIC_ROW.findall(screen)]
    if not answers.admin_nic:
        return "1"
    want = normalize_mac(answers.admin_nic)
    for num, mac in rows:
        try:
            if normalize_mac(mac) == want:
                return num
        except Exception:       # a row that only looks like one
            continue
    raise SetupError(f"setup asks for the admin NIC, but no NIC in its table has MAC {want}",
                     tail=screen[-2000:])


class PromptDriver:
    """Types answers at setup's prompts.

    :class:`~smartos_lab.smartos.milestones.FirstBootWatcher` waits for the
    prompts of :data:`PROMPTS` together with its milestones and hands each one
    it sees to :meth:`answer`.  ``on_answer(prompt, shown)`` reports each answer
    (passwords as ``****``).
    """

    def __init__(self, answers: SetupAnswers, *, answer_delay: float = 0.1,
                 on_answer: Callable[[SetupPrompt, str], None] | None = None):
        answers.validate(unattended=False)
        self.answers = answers
        self.answer_delay = answer_delay
        self.on_answer = on_answer
        self.answered: list[tuple[str, str]] = []      # (key, shown value)

    @property
    def prompts(self) -> tuple[SetupPrompt, ...]:
        return PROMPTS

    def answer(self, console, prompt: SetupPrompt, screen: str = "") -> str:
        """Type the answer to ``prompt`` on ``console``; returns what was shown (secrets masked)."""
        value = typed_answer(prompt, self.answers, screen)
        time.sleep(self.answer_delay)
        console.sendline(value)
        shown = "****" if prompt.secret else value
        self.answered.append((prompt.key, shown))
        if self.on_answer is not None:
            self.on_answer(prompt, shown)
        return shown
