"""Lab-core benchmarks on the Linux *test guest* (a test substrate, not SmartOS).

    python benchmarks/bench_lab.py [--quick] [--boots N] [--round-trips N]

Boots the test guest (``tests.guest``) through the real :class:`smartos_lab.lab.Lab`
facade with :class:`tests.guest.strategy.TestGuestStrategy`, and through plain QEMU
for comparison, then prints one JSON object with these sections:

- ``boot_to_shell``: ``Lab.up`` (SSH off) vs raw QEMU booting the same machine to
  a logged-in shell prompt (median of N interleaved runs).
- ``command_round_trip``: ``true`` over the console and over SSH (p50/p99).
- ``bulk_output``: 10 MB of guest output over the console vs over SSH.
- ``checkpoint``: save and restore vs a fresh boot to the same state.
- ``qmp``: ``query-status`` round trip through the QMP facade and a bare socket.

Numbers carry their unit in the key; sections with a target carry ``target`` and
``meets_target``.  Progress goes to stderr, the JSON to stdout.  Every QEMU
started here is stopped before the script ends, whatever happens.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))           # for tests.guest (the test guest and its strategy)

from smartos_lab.errors import LabError, LabNotFound, LoginFailed
from smartos_lab.lab import Lab, LabConfig, LabDir
from smartos_lab.machine.accel import detect_accel
from smartos_lab.machine.qemu import find_qemu
from smartos_lab.machine.registry import stop
from smartos_lab.machine.spec import KernelBoot, MachineSpec
from tests.guest.build import LOGIN_PROMPT, SHELL_PROMPT
from tests.guest.strategy import TestGuestStrategy

MB = 1_000_000
BULK_BYTES = 10 * MB
BULK_FILE = "/tmp/bench-bulk"           # in the guest's tmpfs root
CONSOLE_PROBE_BYTES = 1 * MB            # always measured; 10 MB only when it fits the budget
CONSOLE_BULK_BUDGET_S = 180.0
BOOT_ATTEMPTS = 3                       # a boot whose login input was lost is retried
# The "little state" a checkpoint holds: a file in RAM, the shell's directory, bytes on disk.
STATE_COMMANDS = (
    "echo bench-state > /root/state",
    "mkdir -p /tmp/work && cd /tmp/work",
    "printf bench-disk | dd of=/dev/vda bs=10 count=1 conv=notrunc,fsync 2>/dev/null",
)
STATE_CHECK = "cat /root/state; pwd; dd if=/dev/vda bs=10 count=1 2>/dev/null"
STATE_EXPECTED = "bench-state\n/tmp/work\nbench-disk"
STATE_CHANGE = ("echo changed > /root/state; cd /; "
                "printf changed___ | dd of=/dev/vda bs=10 count=1 conv=notrunc,fsync 2>/dev/null")

_started = time.monotonic()


def note(msg: str) -> None:
    print(f"[{time.monotonic() - _started:6.1f}s] {msg}", file=sys.stderr, flush=True)


# --- statistics -------------------------------------------------------------------------
def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile (p50 of 100 samples is the 50th smallest)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def round_trips(func: Callable[[], object], runs: int, warmup: int = 5) -> dict[str, float]:
    for _ in range(warmup):
        func()
    samples = [timed(func) for _ in range(runs)]
    return {"p50_ms": ms(percentile(samples, 50)), "p99_ms": ms(percentile(samples, 99)),
            "min_ms": ms(min(samples)), "max_ms": ms(max(samples))}


# --- labs -----------------------------------------------------------------------------------
class TimedStrategy:
    """A strategy that delegates everything and notes when the login prompt came."""

    def __init__(self, inner: TestGuestStrategy):
        self.inner = inner
        self.name = inner.name
        self.login_prompt_at: float | None = None

    def prepare(self, lab, config, steps):
        return self.inner.prepare(lab, config, steps)

    def spec(self, lab, config, accel):
        return self.inner.spec(lab, config, accel)

    def console_factory(self):
        return self.inner.console_factory()

    def boot(self, machine, lab, config, steps):
        outcome = self.inner.boot(machine, lab, config, steps)
        self.login_prompt_at = time.perf_counter()
        return outcome

    def login(self, machine, lab, config, steps):
        return self.inner.login(machine, lab, config, steps)


def discard_lab(lab: Lab | None, name: str) -> None:
    """Stop lab ``name`` (also when ``Lab.up`` failed half-way) and delete its directory."""
    if lab is not None:
        lab.destroy()
        return
    try:
        stop(name, timeout=5)
    except LabNotFound:
        pass
    shutil.rmtree(LabDir(name).path, ignore_errors=True)


def make_state(lab: Lab) -> None:
    for command in STATE_COMMANDS:
        lab.check(command, via="console")


# --- raw QEMU -------------------------------------------------------------------------------
class LoginLost(Exception):
    """The guest said "Login incorrect": typed input was lost; the run is retried."""


def raw_argv(spec: MachineSpec, accel: str, console_socket: Path) -> list[str]:
    """Plain QEMU for ``spec``: same kernel, initrd, command line, memory, CPUs, accelerator,
    machine type, disks and NICs; serial on a unix socket; no QMP, no ``-S``, no log file."""
    boot = spec.boot
    assert isinstance(boot, KernelBoot)
    argv = [find_qemu(), "-machine", spec.machine_type, "-accel", accel,
            "-cpu", "host" if accel == "kvm" else "max", "-smp", str(spec.cpus),
            "-m", str(spec.memory_mib), "-nodefaults", "-display", "none", "-vga", "std",
            "-no-reboot", "-kernel", str(boot.kernel), "-append", boot.cmdline,
            "-initrd", ",".join(boot.modules),
            "-chardev", f"socket,id=serial0,path={console_socket},server=on,wait=on",
            "-serial", "chardev:serial0"]
    for i, disk in enumerate(spec.disks):
        blockdev = f"driver={disk.format},node-name=d{i},file.driver=file,file.filename={disk.path}"
        argv += ["-blockdev", blockdev, "-device", f"virtio-blk-pci,drive=d{i}"]
    for i, _nic in enumerate(spec.nics):
        argv += ["-netdev", f"user,id=n{i}", "-device", f"virtio-net-pci,netdev=n{i}"]
    return argv


class RawReader:
    """Bare reads and writes on a serial socket: ``recv()`` into a buffer, search it."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()

    def expect(self, needles: tuple[bytes, ...], timeout: float) -> bytes:
        """Read until one of ``needles`` arrives; return it and drop everything up to it."""
        deadline = time.monotonic() + timeout
        scanned = 0
        while True:
            for needle in needles:
                at = self.buf.find(needle, max(0, scanned - len(needle)))
                if at >= 0:
                    del self.buf[:at + len(needle)]
                    return needle
            scanned = len(self.buf)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"raw serial: no {needles} within {timeout:g} s; "
                                   f"tail: {bytes(self.buf[-300:])!r}")
            self.sock.settimeout(min(left, 1.0))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise RuntimeError(f"raw serial closed; tail: {bytes(self.buf[-300:])!r}")
            self.buf += data

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def probe_rate(self) -> float:
        """MB/s of ``CONSOLE_PROBE_BYTES`` of ``BULK_FILE`` printed by the shell at the other end."""
        self.send(f"head -c {CONSOLE_PROBE_BYTES} {BULK_FILE}; echo __E''ND__\n".encode())
        start = time.perf_counter()
        self.expect((b"__END__",), 600)
        return CONSOLE_PROBE_BYTES / (time.perf_counter() - start) / MB


class RawGuest(RawReader):
    """The test guest under plain QEMU, driven over its serial socket with bare reads/writes."""

    def __init__(self, argv: list[str], console_socket: Path):
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        super().__init__(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
        deadline = time.monotonic() + 30
        while True:
            try:
                self.sock.connect(str(console_socket))
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"raw QEMU did not open its serial socket: "
                                       f"{self.proc.stderr.read().decode(errors='replace')}") from None
                time.sleep(0.01)

    def login(self, password: str, timeout: float = 180.0) -> float:
        """Wait for the login prompt, log in; return when the login prompt came (perf_counter)."""
        self.expect((LOGIN_PROMPT.encode(),), timeout)
        login_prompt_at = time.perf_counter()
        self.send(b"root\n")
        self.expect((b"Password: ",), 30)
        self.send(password.encode() + b"\n")
        if self.expect((SHELL_PROMPT.encode(), b"Login incorrect"), 30) != SHELL_PROMPT.encode():
            raise LoginLost("raw QEMU login refused (input lost)")
        return login_prompt_at

    def close(self) -> None:
        self.sock.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.proc.stderr.close()


@dataclass
class Boot:
    """One boot to a logged-in shell; seconds from the start of the launch."""

    login_prompt_s: float
    shell_s: float              # raw: shell prompt seen; lab: Lab.up returned
    qemu_cpu_s: float           # CPU QEMU used until then
    python_cpu_s: float         # CPU this process used meanwhile (console reader, QMP, ...)
    to_state_s: float = 0.0     # lab only: Lab.up + the state commands
    console_MBps: float | None = None


def raw_boot(strategy: TestGuestStrategy, accel: str, workdir: Path, *,
             measure_console: bool) -> Boot:
    """Boot the strategy's machine under plain QEMU to a shell prompt (SSH off)."""
    labdir = LabDir("raw", workdir / "labs")
    config = LabConfig(name="raw", strategy=strategy.name)
    shutil.rmtree(labdir.path, ignore_errors=True)
    labdir.create()
    strategy.prepare(labdir, config, lambda _msg: None)       # its blank qcow2 data disk
    console_socket = workdir / "raw-console.sock"
    console_socket.unlink(missing_ok=True)
    argv = raw_argv(strategy.spec(labdir, config, accel), accel, console_socket)
    start, cpu_start = time.perf_counter(), time.process_time()
    guest = RawGuest(argv, console_socket)
    try:
        login_prompt_at = guest.login(strategy.guest.root_password)
        result = Boot(login_prompt_at - start, time.perf_counter() - start,
                      cpu_seconds(guest.proc.pid), time.process_time() - cpu_start)
        if measure_console:
            result.console_MBps = raw_console_rate(guest)
        return result
    finally:
        guest.close()


def raw_console_rate(guest: RawGuest) -> float:
    """MB/s of ``CONSOLE_PROBE_BYTES`` of output over the raw serial socket."""
    prompt = SHELL_PROMPT.encode()
    guest.send(f"{make_bulk_command(CONSOLE_PROBE_BYTES)}\n".encode())
    guest.expect((prompt,), 120)
    return guest.probe_rate()


# --- sections -------------------------------------------------------------------------------
def lab_boot(strategy: TestGuestStrategy, tag: str) -> Boot:
    """Lab.up, then the state commands."""
    name = f"bench-boot-{os.getpid()}-{tag}"
    timed_strategy = TimedStrategy(strategy)
    lab = None
    try:
        start, cpu_start = time.perf_counter(), time.process_time()
        lab = Lab.up(name, strategy=timed_strategy, progress=False)
        boot = Boot(timed_strategy.login_prompt_at - start, time.perf_counter() - start,
                    cpu_seconds(lab.machine.pid), time.process_time() - cpu_start)
        make_state(lab)
        boot.to_state_s = time.perf_counter() - start
        return boot
    finally:
        discard_lab(lab, name)


def bench_boot(strategy: TestGuestStrategy, accel: str, runs: int, workdir: Path) -> dict:
    """Interleaved raw/lab boots to a logged-in shell; each lab run also makes the state."""
    raw: list[Boot] = []
    lab: list[Boot] = []
    retries = {"raw": 0, "lab": 0}
    for run in range(runs):
        # alternate which goes first, so neither always meets a colder or busier host
        order = ("raw", "lab") if run % 2 == 0 else ("lab", "raw")
        for kind in order:
            note(f"boot {run + 1}/{runs}: {'raw QEMU' if kind == 'raw' else 'Lab.up'}")
            for attempt in range(BOOT_ATTEMPTS):
                try:
                    if kind == "raw":
                        raw.append(raw_boot(strategy, accel, workdir,
                                            measure_console=run == runs - 1))
                    else:
                        lab.append(lab_boot(strategy, f"{run}-{attempt}"))
                    break
                except (LoginLost, LoginFailed):
                    retries[kind] += 1
                    if attempt == BOOT_ATTEMPTS - 1:
                        raise
    def median(boots: list[Boot], field: str) -> float:
        return round(statistics.median(getattr(b, field) for b in boots), 3)

    ratio = median(lab, "shell_s") / median(raw, "shell_s")
    return {
        "marker": (f"the shell prompt after logging in as root: raw QEMU when {SHELL_PROMPT!r} "
                   "arrives; the lab when Lab.up returns, i.e. also after ConsoleShell.setup "
                   "(stty -echo, PS1, a sync round trip), so the lab side does more"),
        "raw_qemu_setup": ("same kernel, initrd, cmdline, memory, CPUs, accel, q35, virtio "
                           "disk and NIC as the lab's MachineSpec; serial on a unix socket "
                           "(server, wait=on) read with bare recv(); no QMP, -S or serial "
                           "log file"),
        "lab_setup": "Lab.up(name, strategy=TestGuestStrategy(ssh=False), progress=False)",
        "runs": runs,
        "raw_qemu_login_prompt_s": median(raw, "login_prompt_s"),
        "raw_qemu_shell_prompt_s": median(raw, "shell_s"),
        "lab_login_prompt_s": median(lab, "login_prompt_s"),
        "lab_up_s": median(lab, "shell_s"),
        "raw_qemu_shell_prompt_samples_s": [round(b.shell_s, 3) for b in raw],
        "lab_up_samples_s": [round(b.shell_s, 3) for b in lab],
        "raw_qemu_login_prompt_to_shell_s": round(statistics.median(
            b.shell_s - b.login_prompt_s for b in raw), 3),
        "lab_login_prompt_to_up_s": round(statistics.median(
            b.shell_s - b.login_prompt_s for b in lab), 3),
        "raw_qemu_cpu_s": median(raw, "qemu_cpu_s"),
        "lab_qemu_cpu_s": median(lab, "qemu_cpu_s"),
        "raw_python_cpu_s": median(raw, "python_cpu_s"),
        "lab_python_cpu_s": median(lab, "python_cpu_s"),
        "login_retries": retries,
        "lab_over_raw_ratio": round(ratio, 3),
        "target": "lab_up_s <= 1.1 x raw_qemu_shell_prompt_s",
        "meets_target": ratio <= 1.1,
        # used by the other sections, removed before printing
        "_fresh_boot_to_state_s": [b.to_state_s for b in lab],
        "_raw_console_MBps": next(b.console_MBps for b in raw if b.console_MBps is not None),
    }


def bench_commands(lab: Lab, runs: int) -> dict:
    console, ssh = lab.shell.console_shell, lab.shell.ssh
    note(f"round trips: {runs} x true over the console")
    over_console = round_trips(lambda: console.check("true"), runs)
    note(f"round trips: {runs} x true over SSH (persistent session)")
    over_ssh = round_trips(lambda: ssh.check("true"), runs)
    note(f"round trips: {runs} x true over SSH (exec channel per command)")
    over_exec = round_trips(lambda: ssh.run("true", clean=True).check(), runs)
    ratio = over_ssh["p50_ms"] / over_console["p50_ms"]
    return {
        "command": "true",
        "runs_each": runs,
        "console_p50_ms": over_console["p50_ms"], "console_p99_ms": over_console["p99_ms"],
        "console_min_ms": over_console["min_ms"], "console_max_ms": over_console["max_ms"],
        "ssh_p50_ms": over_ssh["p50_ms"], "ssh_p99_ms": over_ssh["p99_ms"],
        "ssh_min_ms": over_ssh["min_ms"], "ssh_max_ms": over_ssh["max_ms"],
        "ssh_note": "SSHShell.run: a framed line in a persistent session channel",
        "ssh_exec_p50_ms": over_exec["p50_ms"], "ssh_exec_p99_ms": over_exec["p99_ms"],
        "ssh_exec_note": "SSHShell.run(clean=True): a new exec channel (the server forks a shell)",
        "ssh_over_console_ratio": round(ratio, 2),
        "target": "console_p50_ms < 50 (TCG) and ssh_p50_ms <= 3 x console_p50_ms",
        "meets_target": over_console["p50_ms"] < 50 and ratio <= 3,
    }


def bench_concurrency(lab: Lab, threads: int = 6, each: int = 10) -> dict:
    """``threads`` threads each running ``each`` commands over SSH at once."""
    ssh = lab.shell.ssh
    failures: list[str] = []

    def worker(n: int) -> None:
        for i in range(each):
            try:
                if ssh.run(f"echo {n}-{i}", timeout=60).stdout != f"{n}-{i}\n":
                    failures.append(f"{n}-{i}: wrong output")
            except Exception as err:        # counted, not raised: the figure is how many fail
                failures.append(f"{n}-{i}: {type(err).__name__}: {err}")
    note(f"concurrency: {threads} threads x {each} commands over SSH")
    start = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(300)
    seconds = time.perf_counter() - start
    return {
        "threads": threads, "commands_each": each, "failed": len(failures),
        "first_failures": failures[:3], "seconds": round(seconds, 3),
        "commands_per_s": round(threads * each / seconds, 1),
        "target": "every command succeeds",
        "meets_target": not failures,
    }


def make_bulk_command(size: int) -> str:
    """Shell line writing ``size`` bytes of 100-byte text lines (99 x 'x' + newline) to BULK_FILE."""
    return f"yes {'x' * 99} | head -c {size} > {BULK_FILE}"


def console_seconds(lab: Lab, size: int) -> float:
    """Seconds to print ``size`` bytes of ``BULK_FILE`` over the lab's console shell."""
    note(f"bulk: {size} bytes over the console")
    start = time.perf_counter()
    out = lab.shell.console_shell.check(f"head -c {size} {BULK_FILE}", timeout=900).stdout
    seconds = time.perf_counter() - start
    if len(out) != size:
        raise RuntimeError(f"console bulk: got {len(out)} of {size} bytes")
    return seconds


def bench_bulk(lab: Lab, quick: bool, raw_console_MBps: float | None) -> dict:
    """Bulk over the console and SSH; the console also against a bare reader of the same
    lab's serial socket (:func:`bare_reader_on_lab`, run afterwards by the caller)."""
    ssh = lab.shell.ssh
    lab.check(make_bulk_command(BULK_BYTES), via="console", timeout=300)

    probe_s = console_seconds(lab, CONSOLE_PROBE_BYTES)
    probe_rate = CONSOLE_PROBE_BYTES / probe_s / MB
    estimate_s = probe_s * BULK_BYTES / CONSOLE_PROBE_BYTES
    if not quick and estimate_s <= CONSOLE_BULK_BUDGET_S:
        console_bytes, console_s = BULK_BYTES, console_seconds(lab, BULK_BYTES)
    else:
        console_bytes, console_s = CONSOLE_PROBE_BYTES, probe_s
    console_rate = console_bytes / console_s / MB

    ssh_times = []
    for _ in range(1 if quick else 3):
        note(f"bulk: {BULK_BYTES} bytes over SSH (persistent session)")
        start = time.perf_counter()
        out = ssh.run_bytes(f"cat {BULK_FILE}", timeout=600).stdout
        ssh_times.append(time.perf_counter() - start)
        if len(out) != BULK_BYTES:
            raise RuntimeError(f"SSH bulk: got {len(out)} of {BULK_BYTES} bytes")
    ssh_s = statistics.median(ssh_times)
    ssh_rate = BULK_BYTES / ssh_s / MB
    ratio = ssh_rate / console_rate
    raw_ratio = probe_rate / raw_console_MBps if raw_console_MBps else None
    return {
        "payload": (f"{BULK_BYTES} bytes of 100-byte text lines from a tmpfs file made "
                    f"beforehand (cat/head -c {BULK_FILE}); MB = 10^6 bytes"),
        "console_bytes_measured": console_bytes,
        "console_extrapolated": console_bytes != BULK_BYTES,
        "console_note": ("10 MB over the console measured in full" if console_bytes == BULK_BYTES
                         else f"rate measured on {console_bytes} bytes and extrapolated to "
                              f"{BULK_BYTES} (10 MB would take ~{estimate_s:.0f} s)"),
        "console_seconds_measured_s": round(console_s, 3),
        "console_10MB_s": round(BULK_BYTES / MB / console_rate, 1),
        "console_MBps": round(console_rate, 4),
        "console_probe_MBps": round(probe_rate, 4),
        "raw_qemu_socket_console_MBps": (round(raw_console_MBps, 4) if raw_console_MBps
                                         else None),
        "raw_qemu_note": ("1 MB over a plain QEMU's serial socket (the last raw boot): no "
                          "serial log file, which costs QEMU a write() per byte the guest "
                          "prints; the lab keeps it, so output is logged while no client is "
                          "attached (see benchmarks/README.md)"),
        "console_probe_over_raw_qemu_ratio": round(raw_ratio, 3) if raw_ratio else None,
        "ssh_10MB_s": round(ssh_s, 3),
        "ssh_MBps": round(ssh_rate, 3),
        "ssh_over_console_ratio": round(ratio, 1),
        "target": "ssh_MBps >= 50 x console_MBps",
        "meets_target": ratio >= 50,
    }


def bench_checkpoint(lab: Lab, fresh_boot_to_state: list[float], saves: int = 3,
                     restores: int = 3) -> dict:
    make_state(lab)
    save_wall, save_reported = [], []
    for _ in range(saves):
        note("checkpoint: save")
        start = time.perf_counter()
        save_reported.append(lab.checkpoint("bench"))
        save_wall.append(time.perf_counter() - start)
    size = next(c.vm_state_size for c in lab.checkpoints() if c.name == "bench")
    restore_wall, restore_reported, usable = [], [], []
    for _ in range(restores):
        lab.check(STATE_CHANGE, via="console")
        note("checkpoint: restore")
        start = time.perf_counter()
        restore_reported.append(lab.restore("bench"))
        restore_wall.append(time.perf_counter() - start)
        lab.check("true", via="console")
        usable.append(time.perf_counter() - start)
        got = lab.check(STATE_CHECK, via="console").stdout.strip()
        if got != STATE_EXPECTED:
            raise RuntimeError(f"restore did not bring the state back: {got!r}")
    try:
        ssh_after = lab.sh("true", via="ssh", timeout=20).ok
    except LabError as err:
        note(f"checkpoint: SSH after restore failed: {err}")
        ssh_after = False
    fresh = statistics.median(fresh_boot_to_state)
    usable_s = statistics.median(usable)
    ratio = fresh / usable_s
    return {
        "state": "; ".join(STATE_COMMANDS),
        "vm_state_size_bytes": size,
        "save_lab_s": round(statistics.median(save_wall), 3),
        "save_qemu_s": round(statistics.median(save_reported), 3),
        "restore_lab_s": round(statistics.median(restore_wall), 3),
        "restore_qemu_s": round(statistics.median(restore_reported), 3),
        "restore_to_usable_s": round(usable_s, 3),
        "restore_to_usable_note": ("wall time of Lab.restore (all it does before returning, "
                                   "e.g. resynchronising the console and reconnecting SSH) "
                                   "+ the first console command answered"),
        "restore_verified": True,       # a wrong state raises above
        "ssh_works_after_restore": ssh_after,
        "fresh_boot_to_state_s": round(fresh, 3),
        "fresh_boot_note": ("Lab.up (SSH off) + the same state commands, median of the "
                            "boot_to_shell lab runs"),
        "fresh_over_restore_ratio": round(ratio, 1),
        "target": "restore_to_usable_s at least 5x faster than fresh_boot_to_state_s",
        "meets_target": ratio >= 5,
    }


def bare_reader_on_lab(lab: Lab, name: str, strategy: TestGuestStrategy) -> tuple[Lab, dict]:
    """1 MB over the lab's console, then the same 1 MB from the same lab's serial socket with
    bare ``recv()``, best of 2 each: the lab is detached for the bare reads (the socket serves
    one client), then attached again."""
    console = [CONSOLE_PROBE_BYTES / console_seconds(lab, CONSOLE_PROBE_BYTES) / MB
               for _ in range(2)]
    note(f"bulk: {CONSOLE_PROBE_BYTES} bytes over the lab's serial socket, bare reader")
    sock_path = lab.machine.run_dir.console_socket
    lab.detach()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(60)
        sock.connect(str(sock_path))
        reader = RawReader(sock)
        reader.send(b"echo __RE''ADY__\n")        # the lab's shell does not echo: no prompt
        reader.expect((b"__READY__",), 30)        # needed, the markers frame the output
        rates = [reader.probe_rate() for _ in range(2)]
    lab = Lab.attach(name, strategy=strategy, progress=False)
    bare = max(rates)
    ratio = max(console) / bare
    return lab, {
        "console_1MB_best_MBps": round(max(console), 4),
        "bare_reader_same_qemu_MBps": round(bare, 4),
        "bare_reader_note": ("1 MB from the same lab's serial socket (same QEMU, same serial "
                             "log file) read with bare recv() while the lab is detached; best "
                             "of 2, like console_1MB_best_MBps, measured just before"),
        "console_over_bare_reader_ratio": round(ratio, 3),
        "console_target": "console_1MB_best_MBps >= 0.9 x bare_reader_same_qemu_MBps",
        "console_meets_target": ratio >= 0.9,
    }


def bench_qmp(lab: Lab, runs: int) -> dict:
    note(f"QMP: {runs} x query-status")
    facade = round_trips(lambda: lab.qmp.execute("query-status"), runs)
    bare = bare_qmp_round_trips(lab.machine.run_dir.control_socket, runs)
    return {
        "command": "query-status",
        "runs": runs,
        "facade_p50_ms": facade["p50_ms"], "facade_p99_ms": facade["p99_ms"],
        "bare_socket_p50_ms": bare["p50_ms"], "bare_socket_p99_ms": bare["p99_ms"],
        "bare_socket_note": "newline-delimited JSON on the lab's control QMP socket, no library",
        "reference_raw_ms": 0.3,
        "facade_over_bare_ratio": round(facade["p50_ms"] / bare["p50_ms"], 2),
        "target": "facade_p50_ms <= 2 x bare_socket_p50_ms",
        "meets_target": facade["p50_ms"] <= 2 * bare["p50_ms"],
    }


def bare_qmp_round_trips(path: Path, runs: int) -> dict[str, float]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        reader = sock.makefile("rb")
        reader.readline()                               # greeting

        def execute(command: bytes) -> None:
            sock.sendall(b'{"execute": "' + command + b'"}\n')
            while b'"return"' not in reader.readline():  # skip events
                pass

        execute(b"qmp_capabilities")
        return round_trips(lambda: execute(b"query-status"), runs)


def environment(accel) -> dict:
    qemu = subprocess.run([find_qemu(), "--version"], capture_output=True, text=True,
                          timeout=30, check=True).stdout.splitlines()[0]
    return {"accel": accel.accel, "accel_reason": accel.reason, "host_cores": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "qemu_version": qemu, "python": sys.version.split()[0]}


# --- main ------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 boot each, 30 round trips, 1 MB over the console")
    parser.add_argument("--boots", type=int, help="boots of each kind (default 3, quick 1)")
    parser.add_argument("--round-trips", type=int, help="runs per transport (default 100)")
    args = parser.parse_args(argv)
    boots = args.boots or (1 if args.quick else 3)
    trips = args.round_trips or (30 if args.quick else 100)

    workdir = Path(tempfile.mkdtemp(prefix="slb-", dir="/tmp"))   # short: socket paths
    os.environ["SMARTOS_LAB_HOME"] = str(workdir / "home")
    os.environ["SMARTOS_LAB_RUNDIR"] = str(workdir / "run")
    try:
        results = run(workdir, boots, trips, args.quick)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(results))


def run(workdir: Path, boots: int, trips: int, quick: bool) -> dict:
    accel = detect_accel("auto")
    note(f"accelerator: {accel.reason}")
    note("test guest: ensure_test_guest() (cached after the first build)")
    no_ssh = TestGuestStrategy(ssh=False)
    results: dict = {"environment": environment(accel)}
    results["environment"].update({
        "guest": "Linux test guest (tests/guest: a test substrate, not SmartOS)",
        "guest_kernel_version": no_ssh.guest.kernel_version,
        "guest_memory_mib": no_ssh.memory_mib, "guest_cpus": 1, "mode": "quick" if quick else "full"})

    boot = bench_boot(no_ssh, accel.accel, boots, workdir)
    fresh_to_state = boot.pop("_fresh_boot_to_state_s")
    raw_console = boot.pop("_raw_console_MBps")
    results["boot_to_shell"] = boot

    name = f"bench-session-{os.getpid()}"
    lab = None
    note("session lab (SSH on): Lab.up")
    try:
        session = TestGuestStrategy(ssh=True)
        lab = Lab.up(name, strategy=session, progress=False)
        results["command_round_trip"] = bench_commands(lab, trips)
        results["ssh_concurrency"] = bench_concurrency(lab)
        bulk = results["bulk_output"] = bench_bulk(lab, quick, raw_console)
        lab, same_qemu = bare_reader_on_lab(lab, name, session)
        bulk.update(same_qemu)
        results["qmp"] = bench_qmp(lab, max(trips, 50) * 2)
        results["checkpoint"] = bench_checkpoint(lab, fresh_to_state)
    finally:
        discard_lab(lab, name)
    results["environment"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["environment"]["bench_seconds"] = round(time.monotonic() - _started, 1)
    results["targets_met"] = {k: v["meets_target"] for k, v in results.items()
                              if isinstance(v, dict) and "meets_target" in v}
    return results


if __name__ == "__main__":
    main()
