"""The instructor's view (root): every user's labs on this host.

Running labs are found from their QEMU processes (``-name smartos-lab:<name>``,
any uid); stopped ones from each user's default labs folder
(``~/.local/share/smartos-lab/labs``).  Reading other users' folders needs root;
users themselves can never see each other's labs (0700 folders and run dirs).
"""
from __future__ import annotations

import json
import os
import pwd
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import LabError
from .machine.rundir import lab_name_from_cmdline, proc_cmdline, proc_rss_mib, proc_uid

USER_LABS = Path(".local/share/smartos-lab/labs")


@dataclass(frozen=True)
class UserLab:
    user: str
    name: str
    state: str          # running | stopped
    pid: int | None
    ram_mib: int
    origin: str


def all_users_labs() -> list[UserLab]:
    """Every user's labs, running and stopped (root only)."""
    from .clones import origin_label
    from .lab import lab_names

    if os.geteuid() != 0:
        raise LabError("--all-users lists every user's labs and needs root "
                       "(your own: 'smartos-lab ps --all')")
    running: dict[tuple[str, str], int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        argv = proc_cmdline(pid)
        name = lab_name_from_cmdline(argv) if argv else None
        uid = proc_uid(pid)
        if name is None or uid is None or not os.path.basename(argv[0]).startswith("qemu-system"):
            continue
        running[(_user(uid), name)] = pid
    found = []
    seen = set()
    for user in pwd.getpwall():
        labs = Path(user.pw_dir) / USER_LABS
        for name in lab_names(labs) if labs.is_dir() else []:
            pid = running.get((user.pw_name, name))
            found.append(UserLab(user.pw_name, name, "running" if pid else "stopped", pid,
                                 proc_rss_mib(pid), origin_label(name, labs)))
            seen.add((user.pw_name, name))
    for (user, name), pid in running.items():
        if (user, name) not in seen:        # labs kept outside the default folder
            found.append(UserLab(user, name, "running", pid, proc_rss_mib(pid), "?"))
    return sorted(found, key=lambda lab: (lab.user, lab.name))


def print_all_users(*, as_json: bool = False) -> int:
    labs = all_users_labs()
    if as_json:
        print(json.dumps([asdict(lab) for lab in labs], indent=2))
        return 0
    if not labs:
        print("no user has a lab")
        return 0
    rows = [("USER", "NAME", "STATE", "PID", "RAM", "ORIGIN")]
    rows += [(lab.user, lab.name, lab.state, str(lab.pid or "-"),
              f"{lab.ram_mib}M" if lab.pid else "-", lab.origin) for lab in labs]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print("\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows))
    return 0


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


