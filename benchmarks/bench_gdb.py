"""gdb on QEMU's gdb stub: how long attaching, stopping at a breakpoint and detaching take.

    python benchmarks/bench_gdb.py [--quick] [--rounds N]

Runs the Multiboot probe kernel (tests/multiboot_probe, a test substrate, not SmartOS)
under TCG with ``MachineSpec(gdb=True)``; the probe's 100 Hz clock interrupt runs
``probe_tick``.  Per round: ``GdbSession.attach`` (gdb start + symbols + connect),
``break_at`` + ``cont`` + ``wait_stop`` at ``probe_tick`` (bounded below by the 10 ms
tick), ``registers`` + ``read_memory``, ``detach``.  Prints JSON (medians, seconds).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("SMARTOS_LAB_RUNDIR", tempfile.mkdtemp(prefix="sl-bg-", dir="/tmp"))

from smartos_lab.machine.gdb import GdbSession
from smartos_lab.machine.qemu import QemuMachine
from smartos_lab.machine.spec import KernelBoot, MachineSpec
from tests.multiboot_probe.build import END_LINE, SIGNATURE_SYMBOL, TICK_SYMBOL, ensure_probe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 10)
    probe = ensure_probe()
    spec = MachineSpec(name=f"bench-gdb-{os.getpid()}", memory_mib=64, accel="tcg",
                       boot=KernelBoot(kernel=probe), gdb=True)
    machine = QemuMachine.launch(spec)
    timings: dict[str, list[float]] = {"attach_s": [], "break_to_stop_s": [], "inspect_s": [],
                                       "detach_s": []}
    try:
        machine.console.expect_exact(END_LINE, timeout=120)
        for i in range(rounds):
            print(f"round {i + 1}/{rounds}", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            gdb = GdbSession.attach(machine.run_dir.gdb_socket, symbols=probe)
            t1 = time.monotonic()
            gdb.break_at(TICK_SYMBOL)
            gdb.cont()
            gdb.wait_stop(timeout=60)
            t2 = time.monotonic()
            gdb.registers()
            gdb.read_memory(gdb.symbol_address(SIGNATURE_SYMBOL), 4)
            t3 = time.monotonic()
            gdb.detach()
            t4 = time.monotonic()
            for key, value in zip(timings, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                timings[key].append(value)
        running = machine.qmp.status() == "running"
    finally:
        machine.shutdown()
    result = {key: round(statistics.median(values), 4) for key, values in timings.items()}
    result.update(rounds=rounds, accel="tcg", machine_running_after_detach=running)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
