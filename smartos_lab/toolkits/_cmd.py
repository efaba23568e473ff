"""Building guest command lines safely, and running them.

Every argument goes through :func:`shlex.quote`; names that the guest tool
would refuse anyway (control characters, characters outside ZFS's name
alphabet, malformed UUIDs) are rejected early with :class:`ConfigError`, so a
typo never becomes a confusing shell or tool error.
"""
from __future__ import annotations

import re
import secrets
import shlex
from collections.abc import Iterable

from ..errors import ConfigError
from ..machine.result import CommandRunner

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# ZFS component alphabet (zfs(8), "ZFS component names"): alphanumerics and - _ . : space
_ZFS_COMPONENT = re.compile(r"[A-Za-z0-9_.: -]+")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ZFS_MAX_NAME = 255


def q(value: object) -> str:
    """Quote one argument for a POSIX shell."""
    return shlex.quote(str(value))


def cmd(*args: object) -> str:
    """Join arguments into one command line, each quoted; ``None`` is skipped."""
    return " ".join(q(a) for a in args if a is not None)


def no_control(value: str, what: str) -> str:
    """Return ``value``; raise ConfigError if it is empty or has control characters."""
    if not isinstance(value, str) or value == "":
        raise ConfigError(f"{what} must be a non-empty string, got {value!r}")
    if _CONTROL.search(value):
        raise ConfigError(f"{what} must not contain control characters (newline, tab, ...): {value!r}")
    return value


def pool_name(name: str) -> str:
    """Check a pool name by zpool's rules: starts with a letter, ZFS alphabet, not reserved."""
    no_control(name, "pool name")
    if not _ZFS_COMPONENT.fullmatch(name) or not name[0].isalpha():
        raise ConfigError(f"invalid pool name {name!r}: starts with a letter; only letters, "
                          "digits and - _ . : space")
    if name in ("mirror", "raidz", "draid", "spare", "log") or re.match(r"c[0-9]", name):
        raise ConfigError(f"invalid pool name {name!r}: reserved or looks like a disk name")
    if len(name) > _ZFS_MAX_NAME:
        raise ConfigError(f"pool name too long: {name!r}")
    return name


def dataset_name(name: str, *, snapshot: bool | None = False) -> str:
    """Check ``pool/fs[/child]`` (``snapshot=True``: must end in ``@snap``; None: either)."""
    no_control(name, "dataset name")
    if len(name) > _ZFS_MAX_NAME:
        raise ConfigError(f"dataset name too long ({len(name)} > {_ZFS_MAX_NAME}): {name!r}")
    path, at, snap = name.partition("@")
    if snapshot is True and not at:
        raise ConfigError(f"{name!r} is not a snapshot name (pool/fs@snap)")
    if snapshot is False and at:
        raise ConfigError(f"{name!r} is a snapshot name; a dataset name was expected")
    parts = path.split("/")
    for part in parts:
        if not part or not _ZFS_COMPONENT.fullmatch(part.replace("%", "_")):
            raise ConfigError(f"invalid dataset name {name!r}: components use letters, digits "
                              "and - _ . : space, separated by /")
    pool_name(parts[0])
    if at:
        snapshot_component(snap)
    return name


def snapshot_component(snap: str) -> str:
    """Check the part after ``@``."""
    no_control(snap, "snapshot name")
    if not _ZFS_COMPONENT.fullmatch(snap):
        raise ConfigError(f"invalid snapshot name {snap!r}: letters, digits and - _ . : space")
    return snap


def property_name(name: str) -> str:
    """Check a ZFS/pool property name (native ``compression`` or user ``com.example:tag``)."""
    no_control(name, "property name")
    if not re.fullmatch(r"[a-z][a-z0-9_.:@-]*", name):
        raise ConfigError(f"invalid property name {name!r}")
    return name


def uuid(value: str) -> str:
    """Check a lowercase UUID as vmadm/imgadm print them."""
    no_control(value, "uuid")
    if not _UUID.fullmatch(value):
        raise ConfigError(f"not a UUID: {value!r}")
    return value


#: typed characters per write_file command once quoted for the console's ``eval`` framing
#: (the framed line must stay under the tty's ~4 KB line limit; see machine/shell.py)
WRITE_LINE_BUDGET = 3400
_QUOTE_COST = 17            # a ' in an argument: '"'"' inside the word, each ' of it quoted again
_ARG_COST = 12              # an argument's two quotes, quoted again, and a space


def write_file_commands(path: str, content: str, *, budget: int = WRITE_LINE_BUDGET) -> list[str]:
    """Commands that write ``content`` to ``path`` in the guest, line by line.

    ``printf '%s\\n' <line> <line> ...`` keeps every line one quoted argument, so
    no raw newline is ever typed into the guest shell (no continuation prompts).
    Each command stays within ``budget`` characters even after a second round
    of quoting (the console frames a command as one quoted ``eval`` word), so
    content full of single quotes still fits a console line.
    """
    no_control(path, "guest path")
    room = budget - _typed_len(path) - 40           # printf, its format, the redirect
    if room < 2 * _QUOTE_COST:
        raise ConfigError(f"guest path too long for a console command line: {path!r}")
    lines = content.split("\n")
    last = lines.pop()             # text after the final newline ("" if content ends in \n)
    commands: list[str] = []
    batch: list[str] = []
    used = 0

    def flush(fmt: str, items: list[str]) -> None:
        redirect = ">" if not commands else ">>"
        commands.append(f"printf {q(fmt)} {' '.join(q(i) for i in items)} {redirect} {q(path)}")

    for line in lines:
        pieces = _split(line, room)
        for piece in pieces[:-1]:
            if batch:
                flush("%s\\n", batch)
                batch, used = [], 0
            flush("%s", [piece])
        piece = pieces[-1]
        cost = _typed_len(piece)
        if batch and used + cost > room:
            flush("%s\\n", batch)
            batch, used = [], 0
        batch.append(piece)
        used += cost
    if batch:
        flush("%s\\n", batch)
    for piece in _split(last, room) if last else []:
        flush("%s", [piece])
    if not commands:
        commands.append(f": > {q(path)}")
    return commands


def _char_cost(ch: str) -> int:
    return _QUOTE_COST if ch == "'" else len(ch.encode("utf-8", "surrogatepass"))


def _typed_len(text: str) -> int:
    """An upper bound of the bytes ``text`` takes as an argument quoted twice."""
    return _ARG_COST + sum(_char_cost(ch) for ch in text)


def _split(text: str, room: int) -> list[str]:
    """``text`` in pieces of at most ``room`` typed bytes each (at least one piece)."""
    pieces, start, used = [], 0, _ARG_COST
    for i, ch in enumerate(text):
        cost = _char_cost(ch)
        if used + cost > room and i > start:
            pieces.append(text[start:i])
            start, used = i, _ARG_COST
        used += cost
    pieces.append(text[start:])
    return pieces


def temp_path(prefix: str, suffix: str = "") -> str:
    """A fresh, unguessable path under /tmp in the guest."""
    return f"/tmp/{prefix}-{secrets.token_hex(6)}{suffix}"


def write_file(runner: CommandRunner, path: str, content: str, timeout: float = 60.0) -> None:
    """Write ``content`` to a new file ``path`` (mode 0600) in the guest through the runner."""
    for command in [f"(umask 077 && : > {q(path)})", *write_file_commands(path, content)]:
        runner.run(command, timeout=timeout).check()


def key_values(pairs: dict[str, object], what: str) -> Iterable[str]:
    """``key=value`` arguments (unquoted; pass them through :func:`cmd`)."""
    for key, value in pairs.items():
        no_control(str(key), f"{what} name")
        if "=" in str(key):
            raise ConfigError(f"{what} name must not contain '=': {key!r}")
        no_control(_plain(value), f"{what} value for {key}")
        yield f"{key}={_plain(value)}"


def _plain(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
