"""The answers file that lets SmartOS's first-boot setup run unattended.

SmartOS's setup script (smartos-live ``src/smartdc/lib/smartos_prompt_config.sh``)
asks its questions through small helpers (``promptval``, ``promptnet``,
``promptopt``, ``promptpw``, ``promptnic``, lines 305-601).  Each helper first
looks its key up in an ``answers.json`` file (``getanswer``, lines 273-302) and
only prompts when the key is absent.  A missing key therefore means the setup
waits at a prompt on the console: a hang, not a default.  Some values make it
loop forever without printing anything.  :meth:`SetupAnswers.problems` names
every such value before a single byte is written; the rules below cite the
script lines they come from.  The keys are documented in smartos-docs
``docs/non-interactive-install.md`` (which calls ``admin_nic`` "admin_mac"; the
script reads ``<tag>_nic``, line 493).
"""
from __future__ import annotations

import json
import re
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_atomic
from ..errors import ConfigError

#: QEMU user-mode networking's built-in DNS forwarder (the guest sees it at 10.0.2.3).
QEMU_USER_DNS = "10.0.2.3"

_IPV4 = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})")
_MAC = re.compile(r"[0-9a-fA-F]{1,2}(?::[0-9a-fA-F]{1,2}){5}")
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_POOL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]*")
_PASSWORD_ALPHABET = string.ascii_letters + string.digits


@dataclass
class SetupAnswers:
    """Every key ``smartos_prompt_config.sh`` reads, with offline defaults that never block.

    The defaults suit a lab under QEMU user-mode networking without Internet:
    DHCP on the single NIC, no gateway prompt, QEMU's DNS forwarder, no NTP
    check, the default pool layout, no pkgsrc (it needs Internet), no boot pool
    and no final confirmation.  ``root_password`` has no default: use
    :func:`generate_root_password`.
    """

    root_password: str
    hostname: str = ""                      # "" = no hostname (nodename stays the default)
    admin_nic: str = ""                     # MAC of the admin NIC; "" = the only NIC
    admin_ip: str = "dhcp"                  # "dhcp" or a dotted quad
    admin_netmask: str = ""                 # required when admin_ip is static
    headnode_default_gateway: str = "none"
    dns_resolver1: str = QEMU_USER_DNS
    dns_resolver2: str = "8.8.8.8"
    dns_search: str = "lab.internal"
    ntp_host: str = "0.smartos.pool.ntp.org"
    skip_ntp_check: bool = True
    zpool_layout: str = "default"
    zpool_confirm_layout: str = "yes"
    bootpool: str = "none"
    pisource: str = "media"
    install_pkgsrc: bool = False
    config_console: bool = True
    skip_instructions: bool = True
    simple_headers: bool = True
    skip_final_summary: bool = False        # the summary is plain output: keep it in the log
    skip_final_confirm: bool = True

    # -- validation ----------------------------------------------------------
    def problems(self, *, nic_count: int = 1, unattended: bool = True) -> list[str]:
        """Everything that would make setup hang, loop or fail (empty when fine).

        ``unattended`` adds the rules that only matter when nobody answers the
        console (the skip flags); :mod:`smartos_lab.smartos.prompts` types the
        same values at the prompts instead.
        """
        p: list[str] = []
        if unattended:
            if self.config_console is not True:
                p.append("config_console must be true: without it setup waits silently for "
                         "Enter after the first header (smartos_prompt_config.sh:1145-1151)")
            if self.skip_instructions is not True:
                p.append("skip_instructions must be true: otherwise setup stops at "
                         "'Press [enter] to continue' (smartos_prompt_config.sh:1181-1185)")
            if self.skip_ntp_check is not True:
                p.append("skip_ntp_check must be true: a failed NTP check shows a warning that "
                         "waits for Enter even with answers (smartos_prompt_config.sh:1283-1287)")
            if self.skip_final_confirm is not True:
                p.append("skip_final_confirm must be true: the final confirmation has no answers "
                         "key and always prompts (smartos_prompt_config.sh:1398-1400, 1471-1474)")
        if nic_count > 1 and not self.admin_nic:
            p.append(f"admin_nic (a MAC address) is required with {nic_count} NICs: otherwise "
                     "setup asks for the NIC number (smartos_prompt_config.sh:506-529)")
        if self.admin_nic and not _MAC.fullmatch(self.admin_nic):
            p.append(f"admin_nic {self.admin_nic!r} is not a MAC address like 52:54:00:12:34:56")
        p += self._network_problems()
        for key in ("dns_resolver1", "dns_resolver2", "ntp_host"):
            value = getattr(self, key)
            if not value or not _single_word(value):
                p.append(f"{key} must be a non-empty host name or IP address without spaces "
                         f"(got {value!r}); an empty value prompts (smartos_prompt_config.sh:385-408)")
        if not _is_domain(self.dns_search):
            p.append(f"dns_search {self.dns_search!r} must be a domain name such as lab.internal: "
                     "an empty value prompts and '<default>' is taken literally "
                     "(smartos_prompt_config.sh:332-370, 1263)")
        if self.zpool_layout not in ("default", "mirror", "raidz2"):
            p.append(f"zpool_layout {self.zpool_layout!r}: use 'default', 'mirror' or 'raidz2' "
                     "(it only changes the label setup shows, smartos_prompt_config.sh:812-814)")
        if self.zpool_confirm_layout != "yes":
            p.append(f"zpool_confirm_layout must be 'yes' (got {self.zpool_confirm_layout!r}): "
                     "'manual' opens a shell on the console and any other value loops forever "
                     "without a prompt (smartos_prompt_config.sh:818-845)")
        if self.bootpool != "none" and not _POOL_NAME.fullmatch(self.bootpool or ""):
            p.append(f"bootpool must be 'none' or a pool name (got {self.bootpool!r}); an empty "
                     "value makes setup try to make a pool bootable (smartos_prompt_config.sh:1317-1321)")
        if self.bootpool != "none" and not self.pisource:
            p.append("pisource must be set when bootpool is not 'none' "
                     "(smartos_prompt_config.sh:1327-1329)")
        if not self.root_password:
            p.append("root_password must not be empty: an empty value prompts "
                     "(smartos_prompt_config.sh:540-581)")
        elif not _printable_line(self.root_password):
            p.append("root_password must be one line of printable ASCII characters")
        if self.hostname and not _is_domain(self.hostname):
            p.append(f"hostname {self.hostname!r} is not a valid host name (letters, digits, '-', "
                     "dots between labels); setup writes it unquoted into a shell-sourced file "
                     "(smartos_prompt_config.sh:1441)")
        return p

    def _network_problems(self) -> list[str]:
        p: list[str] = []
        if self.admin_ip != "dhcp":
            if not _is_ipv4(self.admin_ip):
                p.append(f"admin_ip must be 'dhcp' or a dotted-quad address (got {self.admin_ip!r}); "
                         "anything else prompts (smartos_prompt_config.sh:443-474)")
            elif not _is_ipv4(self.admin_netmask):
                p.append("admin_netmask (e.g. 255.255.255.0) is required with a static admin_ip: "
                         "otherwise setup stops at the netmask prompt (smartos_prompt_config.sh:1207-1213)")
            elif _is_broadcast(self.admin_ip, self.admin_netmask):
                p.append(f"admin_ip {self.admin_ip} is the broadcast address of its network: setup "
                         "would loop forever (smartos_prompt_config.sh:1214-1215)")
        gw = self.headnode_default_gateway
        if gw != "none" and not _is_ipv4(gw):
            p.append(f"headnode_default_gateway must be 'none' or a dotted-quad address (got {gw!r}) "
                     "(smartos_prompt_config.sh:1243)")
        return p

    def validate(self, *, nic_count: int = 1, unattended: bool = True) -> SetupAnswers:
        """Return self, or raise :class:`ConfigError` listing every problem."""
        found = self.problems(nic_count=nic_count, unattended=unattended)
        if found:
            raise ConfigError("answers.json would not let SmartOS setup finish:\n  - "
                              + "\n  - ".join(found))
        return self

    # -- serialisation -------------------------------------------------------
    def to_dict(self) -> dict[str, object]:
        """The answers as the script reads them (booleans as JSON ``true``/``false``)."""
        d: dict[str, object] = {
            "config_console": self.config_console,
            "skip_instructions": self.skip_instructions,
            "simple_headers": self.simple_headers,
            "admin_ip": self.admin_ip,
            "headnode_default_gateway": self.headnode_default_gateway,
            "dns_resolver1": self.dns_resolver1,
            "dns_resolver2": self.dns_resolver2,
            "dns_search": self.dns_search,
            "ntp_host": self.ntp_host,
            "skip_ntp_check": self.skip_ntp_check,
            "zpool_layout": self.zpool_layout,
            "zpool_confirm_layout": self.zpool_confirm_layout,
            "bootpool": self.bootpool,
            "pisource": self.pisource,
            "install_pkgsrc": "yes" if self.install_pkgsrc else "no",
            "root_password": self.root_password,
            "hostname": self.hostname,
            "skip_final_summary": self.skip_final_summary,
            "skip_final_confirm": self.skip_final_confirm,
        }
        if self.admin_nic:
            d["admin_nic"] = normalize_mac(self.admin_nic)
        if self.admin_ip != "dhcp":
            d["admin_netmask"] = self.admin_netmask
        return d

    def to_json(self, *, nic_count: int = 1) -> str:
        """Validated JSON text for ``answers.json``."""
        self.validate(nic_count=nic_count)
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def write(self, path: str | Path, *, nic_count: int = 1) -> Path:
        """Write ``answers.json`` (it holds the root password: mode 0600)."""
        return write_secret(path, self.to_json(nic_count=nic_count))


def normalize_mac(mac: str) -> str:
    """``52:54:0:a:B:c`` -> ``52:54:00:0a:0b:0c``: the form setup compares against
    (it reformats ``dladm`` addresses with ``%02x``, smartos_prompt_config.sh:1104-1108)."""
    if not _MAC.fullmatch(mac):
        raise ConfigError(f"{mac!r} is not a MAC address")
    return ":".join(f"{int(part, 16):02x}" for part in mac.split(":"))


def generate_root_password(length: int = 20) -> str:
    """A random password of letters and digits (nothing a shell or sed could mangle)."""
    if length < 12:
        raise ConfigError("a root password needs at least 12 characters")
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(length))


def write_secret(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` readable only by the owner (0600), atomically.

    The file is created 0600 before any byte is written, so the secret is never
    readable by others, not even briefly.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, text, mode=0o600)


def read_secret(path: str | Path) -> str:
    """Read a file written by :func:`write_secret`, refusing one others can read."""
    path = Path(path)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(f"{path} has mode {mode:04o}; a secret must be 0600 (chmod 600 {path})")
    return path.read_text().strip("\n")


def _is_ipv4(value: str) -> bool:
    m = _IPV4.fullmatch(value or "")
    return bool(m) and all(int(part) <= 255 for part in m.groups())


def _ipv4_int(value: str) -> int:
    a, b, c, d = (int(x) for x in value.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def _is_broadcast(ip: str, netmask: str) -> bool:
    ip_n, mask_n = _ipv4_int(ip), _ipv4_int(netmask)
    return ip_n == (ip_n & mask_n) | (~mask_n & 0xFFFFFFFF)


def _is_domain(value: str) -> bool:
    if not value or len(value) > 253:
        return False
    return all(_HOST_LABEL.fullmatch(label) for label in value.rstrip(".").split("."))


def _single_word(value: str) -> bool:
    return _printable_line(value) and not any(c.isspace() or c in "'`\"" for c in value)


def _printable_line(value: str) -> bool:
    return all(32 <= ord(c) < 127 for c in value)
