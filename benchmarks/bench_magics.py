"""Lab magics benchmarks on the Linux *test guest* (a test substrate, not SmartOS).

    python benchmarks/bench_magics.py [--quick] [--rounds N]

Boots the test guest through the real :class:`smartos_lab.lab.Lab` facade (SSH
on), loads the magics into a real in-process IPython ``InteractiveShell`` and
prints one JSON object:

- ``sh_overhead``: a ``%%sh true`` cell's round trip vs ``lab.sh("true")``
  (interleaved, p50 of each and of the difference; target: under 20 ms).
- ``line_to_cell``: time from the guest printing a line (its clock, from
  ``/proc/uptime``: 10 ms steps; busybox ``date`` has no ``%N``) to the line
  reaching the cell's stdout, over SSH and over the console.  Guest and host
  clocks are related by the shortest of several round trips reading it;
  ``clock_uncertainty_ms`` is half that round trip plus the 10 ms step.  Target: p50 under 100 ms
  over SSH.
- ``undo``: with ``%autocheckpoint on``, what an undo point costs before a cell
  (seconds, bytes of VM state) and how long ``%undo`` takes.

Progress goes to stderr, the JSON to stdout.  The lab is stopped before the
script ends, whatever happens.
"""
from __future__ import annotations

import argparse
import io
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

from IPython.core.interactiveshell import InteractiveShell

from smartos_lab.lab import Lab, register_strategy
from tests.guest.strategy import TestGuestStrategy
from tests.streams import Stamped

LINES = 20
LINE_GAP_S = 0.2
GUEST_CLOCK = "cut -d' ' -f1 /proc/uptime"      # seconds since boot, 10 ms resolution
CLOCK_STEP_S = 0.01


def log(message: str) -> None:
    print(f"[bench_magics] {message}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run_cell(ip: InteractiveShell, cell: str, stdout: io.StringIO | None = None) -> float:
    saved = sys.stdout
    sys.stdout = stdout or io.StringIO()
    try:
        started = time.perf_counter()
        result = ip.run_cell(cell, silent=True)
        took = time.perf_counter() - started
    finally:
        sys.stdout = saved
    if result.error_in_exec is not None:
        raise RuntimeError(f"cell failed: {cell!r}: {result.error_in_exec}")
    return took


def sh_overhead(lab: Lab, ip: InteractiveShell, rounds: int) -> dict:
    direct, cells = [], []
    for _ in range(3):                                      # warm up both paths
        lab.sh("true")
        run_cell(ip, "%%sh\ntrue")
    for _ in range(rounds):
        started = time.perf_counter()
        lab.sh("true")
        direct.append(time.perf_counter() - started)
        cells.append(run_cell(ip, "%%sh\ntrue"))
    overhead = [c - d for c, d in zip(cells, direct)]
    p50 = statistics.median(overhead) * 1000
    return {"rounds": rounds, "lab_sh_true_p50_ms": round(statistics.median(direct) * 1000, 2),
            "cell_sh_true_p50_ms": round(statistics.median(cells) * 1000, 2),
            "overhead_p50_ms": round(p50, 2), "overhead_p90_ms": round(pct(overhead, 0.9) * 1000, 2),
            "target": "magic overhead under 20 ms", "meets_target": p50 < 20}


def clock_offset(lab: Lab, via: str, samples: int = 15) -> tuple[float, float]:
    """(guest clock - host clock, half the shortest round trip), in seconds."""
    best = None
    for _ in range(samples):
        before = time.time()
        out = lab.sh(GUEST_CLOCK, via=via).stdout.strip()
        after = time.time()
        rtt = after - before
        if best is None or rtt < best[1]:
            best = (float(out) - (before + after) / 2, rtt)
    return best[0], best[1] / 2 + CLOCK_STEP_S


def line_to_cell(lab: Lab, ip: InteractiveShell, via: str) -> dict:
    offset, uncertainty = clock_offset(lab, via)
    out = Stamped(clock=time.time)           # host wall time, compared with the guest's
    loop = f"for i in $(seq {LINES}); do {GUEST_CLOCK}; sleep {LINE_GAP_S}; done"
    run_cell(ip, f"%%sh --via {via}\n{loop}", out)
    latencies = []
    pending = ""
    for arrived, text in out.times:
        pending += text
        *lines, pending = pending.split("\n")
        latencies += [arrived - (float(line) - offset) for line in lines if line.strip()]
    p50 = statistics.median(latencies) * 1000
    result = {"lines": len(latencies), "p50_ms": round(p50, 1),
              "p95_ms": round(pct(latencies, 0.95) * 1000, 1), "max_ms": round(max(latencies) * 1000, 1),
              "clock_uncertainty_ms": round(uncertainty * 1000, 1)}
    if via == "ssh":
        result.update(target="p50 under 100 ms over SSH", meets_target=p50 < 100)
    return result


def undo(ip: InteractiveShell, rounds: int) -> dict:
    magics = ip.magics_manager.registry["LabMagics"]
    run_cell(ip, "%autocheckpoint on")
    saves, undos = [], []
    try:
        for i in range(rounds):
            run_cell(ip, f"%%sh\necho {i} > /root/undo-bench")
            saves.append(magics.history.points[-1])
            undos.append(run_cell(ip, "%undo"))
    finally:
        run_cell(ip, "%autocheckpoint off")
    return {"rounds": rounds,
            "save_p50_s": round(statistics.median(p.seconds for p in saves), 3),
            "state_bytes_p50": int(statistics.median(p.state_bytes for p in saves)),
            "disk_growth_bytes_p50": int(statistics.median(p.disk_bytes for p in saves)),
            "undo_p50_s": round(statistics.median(undos), 3), "undo_max_s": round(max(undos), 3)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args(argv)
    rounds = args.rounds or (10 if args.quick else 40)
    workdir = Path(tempfile.mkdtemp(prefix="slm-", dir="/tmp"))     # short: socket paths
    os.environ["SMARTOS_LAB_HOME"] = str(workdir / "home")
    os.environ["SMARTOS_LAB_RUNDIR"] = str(workdir / "run")
    register_strategy("test-guest", TestGuestStrategy)
    lab = None
    try:
        log("booting the test guest")
        lab = Lab.up("bench-magics", strategy=TestGuestStrategy(), progress=False)
        ip = InteractiveShell.instance(history_load_length=0)
        ip.history_manager.enabled = False
        saved, sys.stdout = sys.stdout, sys.stderr         # the extension's notice is progress
        try:
            ip.run_line_magic("load_ext", "smartos_lab")
        finally:
            sys.stdout = saved
        run_cell(ip, "%lab bench-magics")
        report = {"accel": lab.accel.accel, "transport": lab.shell.transport}
        log("%%sh overhead")
        report["sh_overhead"] = sh_overhead(lab, ip, rounds)
        log("line to cell latency")
        report["line_to_cell"] = {"ssh": line_to_cell(lab, ip, "ssh"),
                                  "console": line_to_cell(lab, ip, "console")}
        log("undo")
        report["undo"] = undo(ip, 3 if args.quick else 5)
    finally:
        if lab is not None and lab.machine.alive():
            lab.down()
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
