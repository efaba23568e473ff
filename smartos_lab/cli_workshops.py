"""Workshop subcommands of ``smartos-lab``: clone, share, seats.

Registered in :data:`smartos_lab.cli.COMMANDS` as ``(name, help, add_arguments, run)``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

from .errors import ConfigError


# --- clone ------------------------------------------------------------------------------------
def add_clone(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="the golden lab: a name, or the path of a lab folder (shared)")
    p.add_argument("name", help="name of the new lab")
    p.add_argument("--checkpoint", help="start from this checkpoint of the source (RAM too: no boot)")


def cmd_clone(args: argparse.Namespace) -> int:
    from .clones import clone

    info = clone(args.source, args.name, checkpoint=args.checkpoint)
    how = f"checkpoint {args.checkpoint}" if args.checkpoint else "its disks"
    print(f"cloned {info.origin.lab} ({how}) as {info.name} in {info.seconds:.1f} s; "
          f"start it with 'smartos-lab up {info.name}'")
    if info.base is not None and not info.base.reused:
        print(f"materialised checkpoint {args.checkpoint}: disks {info.base.disk_bytes >> 20} MiB "
              f"in {info.base.disk_seconds:.1f} s, RAM {info.base.ram_bytes >> 20} MiB in "
              f"{info.base.ram_seconds:.1f} s ({info.base.path})")
    return 0


# --- share --------------------------------------------------------------------------------------
def add_share(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="the golden lab (name or folder)")
    p.add_argument("--checkpoint", action="append", default=[],
                   help="materialise this checkpoint for clones (repeatable)")
    p.add_argument("--group", help="make the lab readable by this group (its secrets too)")


def cmd_share(args: argparse.Namespace) -> int:
    from .clones import lab_folder, materialise

    source = lab_folder(Path(args.source))
    for checkpoint in args.checkpoint:
        base = materialise(source, checkpoint)
        print(f"checkpoint {checkpoint}: {base.path}" + (" (already there)" if base.reused else
              f" (disks {base.disk_seconds:.1f} s, RAM {base.ram_seconds:.1f} s)"))
    if args.group:
        try:
            shutil.chown(source, group=args.group)
        except LookupError:
            raise ConfigError(f"no group named {args.group!r}") from None
        for path in [source, *source.rglob("*")]:
            if path.is_symlink():
                continue
            shutil.chown(path, group=args.group)
            mode = path.stat().st_mode & 0o777
            path.chmod(mode | (0o050 if path.is_dir() else 0o040))
        print(f"lab {source.name} is readable by group {args.group} (its folder's parents must "
              f"be too); members clone it with 'smartos-lab clone {source} NAME --checkpoint C'")
    return 0


# --- seats ----------------------------------------------------------------------------------------
def add_seats(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="seats_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="make N seats (linked clones) of GOLDEN")
    create.add_argument("golden")
    create.add_argument("count", type=_count, help="number of seats")
    create.add_argument("--prefix", default="seat", help="seat names: PREFIX1..PREFIXN")
    create.add_argument("--checkpoint", help="seats start from this checkpoint (no boot)")
    for action, text in (("up", "start the stopped seats (admission control first)"),
                         ("down", "stop the seats"), ("reset", "put the seats back on a checkpoint"),
                         ("destroy", "delete the seats"), ("status", "one line per seat")):
        sp = sub.add_parser(action, help=text)
        sp.add_argument("golden")
        if action == "up":
            sp.add_argument("--ratio", type=float,
                            help="allowed seat memory / MemAvailable (default 1.0, "
                                 "SMARTOS_LAB_OVERCOMMIT)")
        if action == "reset":
            sp.add_argument("--checkpoint", help="checkpoint of the golden (default: the seats' own)")
        if action == "status":
            sp.add_argument("--json", action="store_true")


def cmd_seats(args: argparse.Namespace) -> int:
    from . import seats

    action = args.seats_command

    def show(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if action == "create":
        made = seats.create(args.golden, args.count, prefix=args.prefix, checkpoint=args.checkpoint)
        print(f"made {len(made)} seats: {', '.join(i.name for i in made)}")
    elif action == "up":
        started = seats.up(args.golden, ratio=args.ratio, progress=show)
        for s in started:
            print(f"{s.name}: shell after {s.seconds:.1f} s ({'resumed' if s.resumed else 'booted'})")
    elif action == "down":
        print("stopped: " + (", ".join(seats.down(args.golden)) or "none was running"))
    elif action == "reset":
        restarted = seats.reset(args.golden, args.checkpoint, progress=show)
        print("reset; running again: " + (", ".join(f"{s.name} ({s.seconds:.1f} s)"
                                                  for s in restarted) or "none"))
    elif action == "destroy":
        print("destroyed: " + ", ".join(seats.destroy(args.golden)))
    elif action == "status":
        rows = seats.status(args.golden)
        if args.json:
            print(json.dumps([asdict(r) for r in rows], indent=2))
            return 0
        table = [("SEAT", "STATE", "RAM", "CPU%", "LAST ACTIVITY", "ORIGIN")]
        table += [(r.name, r.state, f"{r.ram_mib}M" if r.pid else "-",
                   f"{r.cpu_percent:.0f}" if r.pid else "-", r.last_activity or "-", r.origin)
                  for r in rows]
        widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
        print("\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table))
    return 0


def _count(text: str) -> int:
    from .seats import MAX_SEATS
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seat count must be a whole number, got {text!r}") from None
    if not 1 <= value <= MAX_SEATS:
        raise argparse.ArgumentTypeError(f"seat count must be from 1 to {MAX_SEATS}, got {value}"
                                         + (" (past one host, see deploy/kubernetes)"
                                            if value > MAX_SEATS else ""))
    return value


# --- doctor --seats ---------------------------------------------------------------------------------
def add_doctor_seats(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seats", type=int, metavar="N", help="can this host hold N workshop seats?")
    p.add_argument("--seat-memory", default="4G", help="guest RAM per seat (default 4G)")


def doctor_seats(args: argparse.Namespace) -> int:
    from .machine.disks import parse_size
    from .seats import capacity

    if args.seats is None or args.seats < 1:
        raise ConfigError(f"--seats must be a positive number, got {args.seats}")
    cap = capacity(parse_size(args.seat_memory) >> 20)
    fits = args.seats <= cap.seats
    report = {"seats_asked": args.seats, "seats_fit": cap.seats, "fits": fits,
              **asdict(cap), "per_seat_mib": cap.per_seat_mib, "limit_mib": cap.limit_mib}
    if getattr(args, "json", False):
        print(json.dumps(report, indent=2))
    else:
        print(("ok" if fits else "NO") + f": {args.seats} seats asked; " + cap.describe())
        if cap.cpus < args.seats:
            print(f"note: {args.seats} seats share {cap.cpus} CPUs; idle guests cost little, "
                  "but booting many at once under TCG is slow (clone seats from a checkpoint)")
    return 0 if fits else 1


WORKSHOP_COMMANDS = [
    ("clone", "make a linked clone of a lab (from its disks or a checkpoint)", add_clone, cmd_clone),
    ("share", "prepare a golden lab for clones by other users (checkpoints, group)", add_share,
     cmd_share),
    ("seats", "workshop seats: create GOLDEN N, up, down, reset, destroy, status", add_seats,
     cmd_seats),
]
