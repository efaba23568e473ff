"""The ``smartos-lab`` command line.

Each subcommand is one small ``add_*`` (arguments) + ``cmd_*`` (action)
pair registered in :data:`COMMANDS`; add new ones there.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from .cli_workshops import WORKSHOP_COMMANDS, add_doctor_seats, doctor_seats
from .errors import LabError, LabNotFound


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# --- ps -----------------------------------------------------------------------------
def add_ps(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("-a", "--all", action="store_true",
                   help="also list stopped labs (their disks are kept for the next 'up')")
    p.add_argument("--all-users", action="store_true",
                   help="(root) every user's labs, running and stopped: the instructor's view")


def cmd_ps(args: argparse.Namespace) -> int:
    from .lab import lab_names
    from .machine.registry import running_labs

    if args.all_users:
        from .admin import print_all_users
        return print_all_users(as_json=args.json)
    labs = running_labs()
    stopped = sorted(set(lab_names()) - {s.name for s in labs}) if args.all else []
    if args.json:
        print(json.dumps([asdict(s) for s in labs] + [{"name": n, "state": "stopped"}
                                                       for n in stopped], indent=2, default=str))
        return 0
    if not labs and not stopped:
        print("no labs running" + ("" if args.all else " ('smartos-lab ps --all' lists stopped ones)"))
        return 0
    from .clones import origin_label
    rows = [("NAME", "STATE", "PID", "ACCEL", "PORTS", "STARTED", "ORIGIN")]
    for s in labs:
        ports = " ".join(f"{k}={v}" for k, v in s.ports.items()) or "-"
        rows.append((s.name, s.state, str(s.pid or "-"), s.accel or "-", ports, s.started or "-",
                     origin_label(s.name)))
    rows += [(name, "stopped", "-", "-", "-", "-", origin_label(name)) for name in stopped]
    print(_table(rows))
    for s in labs:
        if s.state == "dead":
            print(f"note: lab {s.name!r} had died; its run dir was removed")
        elif s.state == "gdb":
            print(f"note: lab {s.name!r} is stopped in gdb; 'continue' or detach there to let it run")
        elif s.state == "kmdb":
            print(f"note: lab {s.name!r} is stopped in kmdb (its serial log ends at the prompt); "
                  f"lab.kmdb / 'smartos-lab console {s.name}' to use it, ':c' continues")
        elif s.state == "orphan":
            print(f"note: lab {s.name!r} is a QEMU without a run dir; stop it with "
                  f"'smartos-lab down {s.name}'")
    return 0


# --- down ---------------------------------------------------------------------------
def add_down(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="lab to stop")
    p.add_argument("--all", action="store_true", help="stop every lab (and orphan)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds to wait for a clean quit before killing (default 10)")


def cmd_down(args: argparse.Namespace) -> int:
    from .lab import LabState, lookup
    from .machine.registry import running_labs, stop

    if args.all == bool(args.name):
        print("smartos-lab down: give a lab NAME or --all", file=sys.stderr)
        return 2
    if args.name:
        found = lookup(args.name).require_exists()
        if found.state is LabState.STOPPED:
            print(f"{args.name} is not running (stopped; its disks are kept)")
            return 0
    names = [args.name] if args.name else sorted({s.name for s in running_labs()
                                                  if s.state != "dead"})
    for name in names:
        try:
            status = stop(name, timeout=args.timeout)
        except LabNotFound:
            if args.all:        # it went away meanwhile
                continue
            raise
        if status.state == "dead":
            print(f"{name} was not running (its QEMU had died); removed its run dir")
        else:
            print(f"stopped {name} ({status.state}, pid {status.pid})")
    if args.all and not names:
        print("no labs running")
    return 0


# --- doctor -------------------------------------------------------------------------
def add_doctor(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_doctor_seats(p)


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import all_required_ok, format_report, run_checks, to_json

    if args.seats is not None:
        return doctor_seats(args)
    checks = run_checks()
    print(to_json(checks) if args.json else format_report(checks))
    return 0 if all_required_ok(checks) else 1


# --- up -----------------------------------------------------------------------------
def add_up(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", default="smartos", help="lab name (default: smartos)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--image", help="a SmartOS USB image (.img/.img.gz) or ISO you already have")
    src.add_argument("--platform", help="a platform tarball or build folder (output/platform-<TS>/)")
    src.add_argument("--release", help="download this release ('latest' or e.g. 20250724T001011Z)")
    p.add_argument("--memory", default="4G", help="guest RAM (default 4G)")
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--disks", type=int, default=1, help="zones pool disks (default 1)")
    p.add_argument("--disk-size", help="size of each zones disk (default: sized from RAM)")
    p.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto")
    p.add_argument("--boot", choices=("auto", "usb", "direct"),
                   help="boot path (default: auto for a new lab, unchanged for an existing one)")
    p.add_argument("--kernel-args", default="", help="extra kernel flags, e.g. -k for kmdb (direct boot)")
    p.add_argument("--hostname", default="")
    p.add_argument("--gdb", action="store_true",
                   help="start QEMU with its gdb stub (a private unix socket; see 'smartos-lab gdb')")
    p.add_argument("--force", action="store_true",
                   help="first make this lab's clones standalone (it is read-only while they "
                        "depend on it)")


def cmd_up(args: argparse.Namespace) -> int:
    from .clones import release_source
    from .lab import Lab, LabDir
    from .steps import StepEvent, StepKind, print_events

    if args.force and LabDir(args.name).exists():
        for name in release_source(LabDir(args.name).path):
            print(f"made clone {name} standalone")

    printed = print_events()

    def progress(event: StepEvent) -> None:
        if event.kind is not StepKind.FAILED:       # main() prints the error, once
            printed(event)

    image = args.platform or args.image
    lab = Lab.up(args.name, image=image, release=args.release, memory=args.memory,
                 cpus=args.cpus, disks=args.disks, disk_size=args.disk_size, accel=args.accel,
                 boot="direct" if args.platform else args.boot, kernel_args=args.kernel_args,
                 hostname=args.hostname, progress=progress, gdb=True if args.gdb else None)
    status = lab.status()
    lab.detach()
    if lab.stopped_at_boot is not None:
        print(f"lab {args.name} stopped in kmdb at boot (QEMU runs); serial log: "
              f"{status['serial_log']}")
        print(f"  smartos-lab console {args.name}    # kmdb's prompt (':c' continues the boot; "
              "Ctrl-] leaves)")
        print(f"  smartos-lab up {args.name}         # once continued: wait for the boot, log in")
        return 0
    ports = " ".join(f"{k}=127.0.0.1:{v}" for k, v in status["ports"].items())
    print(f"lab {args.name} is up ({status['accel']}; {ports}); serial log: {status['serial_log']}")
    print(f"  smartos-lab ssh {args.name}        # a shell over SSH")
    print(f"  smartos-lab console {args.name}    # the serial console (Ctrl-] leaves)")
    print(f"  smartos-lab down {args.name}       # stop it (disks are kept)")
    if args.gdb:
        print(f"  smartos-lab gdb {args.name}        # gdb on the kernel (QEMU's gdb stub)")
    return 0


# --- console / ssh ------------------------------------------------------------------------
def add_console(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="lab name")


def cmd_console(args: argparse.Namespace) -> int:
    from .lab import lookup
    from .machine.interactive import interactive_console

    lookup(args.name).require_running()
    return interactive_console(args.name)


def add_ssh(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="lab name")
    p.add_argument("remote_command", nargs=argparse.REMAINDER, metavar="command",
                   help="command to run (default: a shell)")


def cmd_ssh(args: argparse.Namespace) -> int:
    import os
    import shutil

    from .lab import lookup

    found = lookup(args.name).require_running()
    port = found.run_dir.read_meta().get("ports", {}).get("ssh") if found.run_dir else None
    key = found.lab_dir.key_file() if found.lab_dir else None
    if not port or key is None:
        raise LabError(f"lab {args.name!r} has no SSH port or key (use 'smartos-lab console "
                       f"{args.name}')")
    ssh = shutil.which("ssh")
    if ssh is None:
        raise LabError("no ssh client; apt-get install openssh-client")
    from .machine.ssh import known_hosts_file
    known = known_hosts_file(key)
    if not known.is_file():
        raise LabError(f"lab {args.name!r} has no pinned host key yet ({known}); it is pinned "
                       "when the lab first connects over SSH")
    # the host key the lab pinned, and no other (a changed key is refused by ssh)
    argv = [ssh, "-i", str(key), "-p", str(port), "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "root@127.0.0.1", *args.remote_command]
    os.execv(ssh, argv)
    return 1  # not reached


# --- checkpoints ---------------------------------------------------------------------------
def add_checkpoint(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="lab name")
    p.add_argument("checkpoint", nargs="?", default="checkpoint", help="checkpoint name")


def cmd_checkpoint(args: argparse.Namespace) -> int:
    with _attached(args.name) as machine:
        seconds = machine.checkpoint(args.checkpoint)
    print(f"saved checkpoint {args.checkpoint!r} of {args.name} in {seconds:.2f} s")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    with _attached(args.name) as machine:
        seconds = machine.restore(args.checkpoint)
    print(f"restored {args.name} to {args.checkpoint!r} in {seconds:.2f} s")
    return 0


def add_checkpoints(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="lab name")
    p.add_argument("--delete", metavar="CHECKPOINT", help="delete this checkpoint")


def cmd_checkpoints(args: argparse.Namespace) -> int:
    with _attached(args.name) as machine:
        if args.delete:
            machine.delete_checkpoint(args.delete)
            print(f"deleted checkpoint {args.delete!r}")
            return 0
        rows = [("NAME", "VM STATE", "DATE")]
        for c in machine.checkpoints():
            rows.append((c.name, f"{c.vm_state_size / 2**20:.0f} MiB", str(c.date)))
    print(_table(rows) if len(rows) > 1 else "no checkpoints")
    return 0


class _attached:
    """Attach to a running lab's QEMU (QMP only) and let go afterwards."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        from .lab import lookup
        from .machine.qemu import QemuMachine
        lookup(self.name).require_running()
        self.machine = QemuMachine.attach(self.name, tool=True)
        return self.machine

    def __exit__(self, *exc) -> None:
        self.machine.detach()


# --- images ---------------------------------------------------------------------------------
def add_images(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="images_command", metavar="ACTION")
    sub.add_parser("list", help="list cached images (default)")
    add = sub.add_parser("add", help="add an image file you already have (offline workshops)")
    add.add_argument("path")
    add.add_argument("--release", help="release timestamp, if the file name lacks it")
    fetch = sub.add_parser("fetch", help="download and verify a release")
    fetch.add_argument("release", nargs="?", default="latest")
    fetch.add_argument("--kind", choices=("usb", "platform", "iso"), default="usb")
    rm = sub.add_parser("rm", help="remove a cached release")
    rm.add_argument("release")
    rm.add_argument("--kind", choices=("usb", "platform", "iso"))
    zone = sub.add_parser("zone", help="zone images (manifest + file) for offline workshops")
    zone_sub = zone.add_subparsers(dest="zone_command", metavar="ACTION")
    zone_sub.add_parser("list", help="list cached zone images (default)")
    zfetch = zone_sub.add_parser("fetch", help="download a zone image from the image server")
    zfetch.add_argument("uuid")
    zadd = zone_sub.add_parser("add", help="add a manifest + image file you already have")
    zadd.add_argument("manifest")
    zadd.add_argument("file")


def cmd_images(args: argparse.Namespace) -> int:
    from .images.cache import ImageCache
    from .images.progress import auto_progress

    action = getattr(args, "images_command", None) or "list"
    if action == "zone":
        return _zone_images(args)
    cache = ImageCache()
    if action == "add":
        img = cache.add(args.path, release=args.release, progress=auto_progress())
        print(f"added {img.kind} image {img.release}: {img.path}")
    elif action == "fetch":
        img = cache.fetch(args.release, args.kind, progress=auto_progress())
        print(f"{img.kind} image {img.release}: {img.path}")
    elif action == "rm":
        for path in cache.remove(args.release, args.kind):
            print(f"removed {path}")
    else:
        images = cache.list()
        if not images:
            print(f"no images cached in {cache.root}; 'smartos-lab images fetch' downloads the "
                  "latest release, 'smartos-lab images add PATH' adds a file you have")
            return 0
        rows = [("RELEASE", "KIND", "SIZE", "VERIFIED", "PATH")]
        for img in images:
            rows.append((img.release, img.kind, f"{img.size / 2**20:.0f} MiB",
                         "yes" if img.verified else "no", str(img.path)))
        print(_table(rows))
    return 0


def _zone_images(args: argparse.Namespace) -> int:
    from .images.progress import auto_progress
    from .images.zone_images import ZoneImageCache

    cache = ZoneImageCache()
    action = getattr(args, "zone_command", None) or "list"
    if action == "fetch":
        image = cache.fetch(args.uuid, progress=auto_progress())
        print(f"zone image {image.uuid} ({image.name} {image.version}): {image.file_path}")
    elif action == "add":
        image = cache.add(args.manifest, args.file, progress=auto_progress())
        print(f"added zone image {image.uuid} ({image.name} {image.version}): {image.file_path}")
    else:
        images = cache.list()
        if not images:
            print(f"no zone images in {cache.root}; 'smartos-lab images zone fetch UUID' downloads "
                  "one, 'smartos-lab images zone add MANIFEST FILE' adds a pair you have")
            return 0
        rows = [("UUID", "NAME", "VERSION", "OS", "TYPE", "SIZE", "VERIFIED")]
        for i in images:
            rows.append((i.uuid, i.name, i.version, i.os, i.type, f"{i.size / 2**20:.1f} MiB",
                         "yes" if i.verified else "no"))
        print(_table(rows))
    return 0


# --- log ---------------------------------------------------------------------------------------
def add_log(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="lab name")
    p.add_argument("-n", "--lines", type=int, default=40, help="lines to show (default 40)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new output (Ctrl-C stops)")


def cmd_log(args: argparse.Namespace) -> int:
    """Print the end of a lab's serial log (everything the guest printed on its console)."""
    import time

    from .lab import lookup
    from .machine.ansi import strip_ansi

    found = lookup(args.name).require_exists()
    if found.lab_dir is not None:
        path = found.lab_dir.serial_log
    else:                           # a machine launched without a lab dir logs in its run dir
        meta = found.run_dir.read_meta() if found.run_dir else {}
        path = Path(meta.get("serial_log", "")) if meta.get("serial_log") else None
    if path is None or not path.is_file():
        raise LabError(f"lab {args.name!r} has printed nothing yet (no serial log {path or ''})")
    with open(path, "rb") as f:
        lines = f.read().decode("utf-8", "replace").splitlines()[-args.lines:] if args.lines > 0 else []
        print("\n".join(strip_ansi(line).rstrip("\r") for line in lines), flush=True)
        while args.follow:
            chunk = f.read()
            if chunk:
                sys.stdout.write(strip_ansi(chunk.decode("utf-8", "replace")).replace("\r\n", "\n"))
                sys.stdout.flush()
            else:
                time.sleep(0.2)
    return 0


# --- destroy ----------------------------------------------------------------------------------
def add_destroy(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="lab name")
    p.add_argument("--yes", action="store_true", help="do not ask")
    p.add_argument("--force", action="store_true",
                   help="first make the lab's clones standalone copies (qemu-img rebase)")


def cmd_destroy(args: argparse.Namespace) -> int:
    from .clones import guard_source, release_source
    from .lab import LabDir, LabState, lookup
    from .machine.registry import stop

    found = lookup(args.name).require_exists()
    if found.state is LabState.STARTING:
        raise found.error()
    lab_dir = found.lab_dir or LabDir(args.name)
    if args.force:
        for name in release_source(lab_dir.path):
            print(f"made clone {name} standalone")
    guard_source(lab_dir.path, "destroy")
    if not args.yes:
        if not sys.stdin.isatty():
            raise LabError(f"destroy asks for confirmation on a terminal; without one, run "
                           f"'smartos-lab destroy {args.name} --yes'")
        answer = input(f"delete lab {args.name!r} and its disks in {lab_dir.path}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return 1
    if found.state in (LabState.RUNNING, LabState.ORPHAN):
        stop(args.name)
    lab_dir.remove()
    print(f"destroyed lab {args.name}")
    return 0


# --- kernel debugging ---------------------------------------------------------------------------
def add_gdb(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="lab name (started with 'smartos-lab up NAME --gdb')")
    p.add_argument("--modules-root", metavar="DIR",
                   help="a build's proto area: add each module loaded in the lab (modinfo over SSH) "
                        "at its load address (default: smartos-live's proto/ next to the platform's "
                        "output/, when it is there)")


def cmd_gdb(args: argparse.Namespace) -> int:
    import subprocess

    from .debug import default_modules_root, gdb_argv, guest_modules, module_symbols, ssh_runner
    from .lab import LabDir

    modules = ()
    lab_dir = LabDir(args.name)
    root = Path(args.modules_root) if args.modules_root else \
        default_modules_root(lab_dir.load().image if lab_dir.exists() else None)
    if root is not None:
        with ssh_runner(args.name) as shell:
            modules = module_symbols(guest_modules(shell), root)
        print(f"adding {len(modules)} module(s) from {root}", file=sys.stderr)
    return subprocess.run(gdb_argv(args.name, modules=modules)).returncode


def add_crash(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="lab name")
    p.add_argument("number", nargs="?", type=int, help="dump number (default: the newest)")


def cmd_crash(args: argparse.Namespace) -> int:
    from .debug import ssh_runner
    from .toolkits.crash import Crash

    with ssh_runner(args.name) as shell:
        crash = Crash(shell, name=args.name)
        dumps = crash.dumps()
        if not dumps:
            print(f"lab {args.name} has no crash dumps in {crash.directory}")
            return 0
        print("dumps: " + ", ".join(str(d.number) for d in dumps))
        print(crash.analyze(args.number))
    return 0


def add_compare(p: argparse.ArgumentParser) -> None:
    p.add_argument("lab_a", help="first lab (e.g. the stock platform)")
    p.add_argument("lab_b", help="second lab (e.g. your patched platform)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND to run on both")


def cmd_compare(args: argparse.Namespace) -> int:
    from .debug import compare, ssh_runner

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("smartos-lab compare: give the command after --, e.g. "
              "smartos-lab compare stock mine -- uname -a", file=sys.stderr)
        return 2
    line = command[0] if len(command) == 1 else shlex.join(command)
    with ssh_runner(args.lab_a) as a, ssh_runner(args.lab_b) as b:
        print(compare((args.lab_a, a), (args.lab_b, b), line))
    return 0


COMMANDS: list[Command] = [
    Command("ps", "list running labs", add_ps, cmd_ps),
    Command("down", "stop a lab", add_down, cmd_down),
    Command("doctor", "check that this host can run labs", add_doctor, cmd_doctor),
    Command("up", "boot (or attach to) a lab; first boot runs SmartOS setup", add_up, cmd_up),
    Command("console", "interactive serial console of a lab", add_console, cmd_console),
    Command("ssh", "SSH into a lab as root", add_ssh, cmd_ssh),
    Command("checkpoint", "save a running lab (RAM + disks)", add_checkpoint, cmd_checkpoint),
    Command("restore", "return a lab to a checkpoint", add_checkpoint, cmd_restore),
    Command("checkpoints", "list (or --delete) a lab's checkpoints", add_checkpoints,
            cmd_checkpoints),
    Command("images", "list, add, fetch or remove SmartOS images (and zone images: images zone)",
            add_images, cmd_images),
    Command("log", "show a lab's serial log (-f follows it)", add_log, cmd_log),
    Command("destroy", "delete a lab and its disks", add_destroy, cmd_destroy),
    Command("gdb", "gdb on a lab's kernel through QEMU's gdb stub", add_gdb, cmd_gdb),
    Command("crash", "list a lab's crash dumps and analyze one with mdb", add_crash, cmd_crash),
    Command("compare", "run one command on two labs, results side by side", add_compare,
            cmd_compare),
    *(Command(*c) for c in WORKSHOP_COMMANDS),
]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="smartos-lab",
                                     description="A hands-on SmartOS lab on QEMU.")
    parser.add_argument("--version", action="version", version=f"smartos-lab {__version__}")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(p)
        p.set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except LabError as exc:
        print(f"smartos-lab {args.subcommand}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


if __name__ == "__main__":
    sys.exit(main())
