"""Workshop seats on the Linux *test guest* (a test substrate, not SmartOS).

    python benchmarks/bench_seats.py [--quick] [--seats 1,2,4] [--memory 256]

Makes a golden test-guest lab, checkpoints it, then for each seat count N makes N
seats (linked clones) twice - from the golden's disks (each seat boots) and from
the checkpoint (each seat loads the checkpoint's RAM: no boot) - and measures:

- ``up_to_all_shells_s``: from ``seats.up`` to every seat having a logged-in shell;
- ``rss_mib_per_seat``: QEMU resident memory per running seat (mean); ``bare_qemu_rss_mib``:
  a QEMU with no guest OS, i.e. QEMU's own overhead;
- ``disk_kib_per_clone``: bytes the clone's own overlays hold after it came up;
- ``create_s``: making the N clones; for checkpoint seats also ``reset_s``.

Plus ``materialise``: the one-off cost of turning the checkpoint into a shared base
(disk state via qemu-img convert, RAM copied out of the qcow2 file), and
``estimate``: seats per host for SmartOS labs of 4 GiB on a 64-core / 512 GiB host
from the measured QEMU overhead.  Progress to stderr, one JSON object to stdout.
Every QEMU started here is stopped before the script ends.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))           # for tests.guest (the test guest and its strategy)

_TMP = tempfile.mkdtemp(prefix="sl-bench-seats-", dir="/tmp")
os.environ["SMARTOS_LAB_HOME"] = f"{_TMP}/home"
os.environ["SMARTOS_LAB_RUNDIR"] = f"{_TMP}/run"

from smartos_lab import clones, seats  # noqa: E402
from smartos_lab.lab import Lab, register_strategy  # noqa: E402
from smartos_lab.machine.qemu import QemuMachine  # noqa: E402
from smartos_lab.machine.registry import running_labs, stop  # noqa: E402
from smartos_lab.machine.rundir import proc_rss_mib  # noqa: E402
from smartos_lab.machine.spec import MachineSpec  # noqa: E402
from tests.guest.strategy import TestGuestStrategy  # noqa: E402

GOLDEN = "bench-golden"
HOST_CORES, HOST_GIB, LAB_GIB = 64, 512, 4
HOST_RESERVE = 0.10                     # kept for the host OS, JupyterHub, page cache
VCPUS_PER_LAB, CPU_OVERCOMMIT = 2, 4    # idle labs: 4 vCPUs per core is a common KVM ratio


def log(msg: str) -> None:
    print(f"[bench_seats] {msg}", file=sys.stderr, flush=True)


def disk_kib(lab_path: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in lab_path.rglob("*.qcow2")) // 1024


def measure(golden: Path, n: int, checkpoint: str | None) -> dict:
    prefix = f"{'c' if checkpoint else 'b'}{n}-"
    started = time.monotonic()
    made = seats.create(golden, n, prefix=prefix, checkpoint=checkpoint)
    create_s = time.monotonic() - started
    try:
        starts = seats.up(golden, progress=log)
        result = {"create_s": round(create_s, 3),
                  "up_to_all_shells_s": round(max(s.seconds for s in starts), 2),
                  "resumed": all(s.resumed for s in starts)}
        rows = [r for r in seats.status(golden) if r.name.startswith(prefix)]
        result["rss_mib_per_seat"] = round(statistics.mean(r.ram_mib for r in rows), 1)
        result["disk_kib_per_clone"] = round(statistics.mean(disk_kib(i.path) for i in made), 1)
        if checkpoint:
            started = time.monotonic()
            seats.reset(golden)
            result["reset_s"] = round(time.monotonic() - started, 2)
        return result
    finally:
        seats.destroy(golden)


def bare_qemu_rss_mib(memory_mib: int) -> int:
    """RSS of a QEMU with no guest OS (its own overhead: guest RAM is barely touched)."""
    machine = QemuMachine.launch(MachineSpec(name="bench-bare", memory_mib=memory_mib),
                                 console_factory=lambda _m: None)
    try:
        time.sleep(3)
        return proc_rss_mib(machine.pid)
    finally:
        machine.shutdown()


def estimate(overhead_mib: float) -> dict:
    usable_mib = HOST_GIB * 1024 * (1 - HOST_RESERVE)
    per_seat = LAB_GIB * 1024 + overhead_mib
    by_memory = int(usable_mib // per_seat)
    by_cpu = HOST_CORES * CPU_OVERCOMMIT // VCPUS_PER_LAB
    return {"host": f"{HOST_CORES} cores, {HOST_GIB} GiB", "lab_gib": LAB_GIB,
            "qemu_overhead_mib": round(overhead_mib), "host_reserve": HOST_RESERVE,
            "seats_by_memory": by_memory, "seats_by_cpu": by_cpu,
            "seats": min(by_memory, by_cpu),
            "assumes": "KVM; guest RAM fully touched (SmartOS's ARC grows into it); no KSM; "
                       f"{VCPUS_PER_LAB} vCPUs per lab at {CPU_OVERCOMMIT}:1 over cores"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seats 1 and 2 only")
    parser.add_argument("--seats", default="1,2,4", help="seat counts (default 1,2,4)")
    parser.add_argument("--memory", type=int, default=256, help="guest MiB per seat")
    args = parser.parse_args()
    counts = [1, 2] if args.quick else [int(c) for c in args.seats.split(",")]

    def strategy() -> TestGuestStrategy:
        return TestGuestStrategy(memory_mib=args.memory)

    register_strategy("test-guest", strategy)
    out: dict = {"guest_memory_mib": args.memory, "host_cpus": os.cpu_count(),
                 "accel": "tcg", "seats": {}}
    try:
        started = time.monotonic()
        golden = Lab.up(GOLDEN, strategy=strategy(), progress=False)
        out["golden_boot_s"] = round(time.monotonic() - started, 2)
        golden.check("echo golden > /root/who")
        out["checkpoint_s"] = round(golden.checkpoint("ready"), 3)
        golden.down()
        base = clones.materialise(golden.lab_dir.path, "ready")
        out["materialise"] = {"disk_s": base.disk_seconds, "ram_s": base.ram_seconds,
                              "disk_mib": round(base.disk_bytes / 2**20, 1),
                              "ram_mib": round(base.ram_bytes / 2**20, 1)}
        for n in counts:
            for mode, checkpoint in (("boot", None), ("checkpoint", "ready")):
                log(f"{n} seat(s) from {mode}")
                out["seats"].setdefault(str(n), {})[mode] = measure(golden.lab_dir.path, n,
                                                                      checkpoint)
        out["bare_qemu_rss_mib"] = bare_qemu_rss_mib(args.memory)
        overheads = [r["rss_mib_per_seat"] - args.memory for per in out["seats"].values()
                     for r in per.values()]
        out["estimate"] = estimate(max(*overheads, out["bare_qemu_rss_mib"]))
    finally:
        for status in running_labs():
            stop(status.name)
        shutil.rmtree(_TMP, ignore_errors=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
