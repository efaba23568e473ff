"""Run every ``benchmarks/bench_*.py`` and print their JSON merged into one object.

    python benchmarks/run_all.py [--quick]

Each script runs in its own process (its progress lines pass through to stderr)
and must print one JSON object as the last line of its stdout; it appears
under the script's name without ``bench_`` (``bench_lab.py`` -> ``"lab"``).
``--quick`` is passed on to every script (scripts without a quick mode ignore
it).  A script that fails or times out is reported as ``{"error": ...}`` and
makes this script exit with status 1.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TIMEOUT_S = {"quick": 300, "full": 1200}        # per script


def bench_scripts() -> list[Path]:
    return sorted(HERE.glob("bench_*.py"))


def run_script(script: Path, quick: bool) -> tuple[dict, float]:
    """The script's JSON (or ``{"error": ...}``) and how long it ran."""
    timeout = TIMEOUT_S["quick" if quick else "full"]
    argv = [sys.executable, str(script)] + (["--quick"] if quick else [])
    start = time.monotonic()
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, text=True, timeout=timeout,
                              cwd=HERE.parent, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}, time.monotonic() - start
    seconds = time.monotonic() - start
    if done.returncode != 0:
        return {"error": f"exit status {done.returncode} (see its stderr above)"}, seconds
    lines = done.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1]), seconds
    except (IndexError, json.JSONDecodeError) as exc:
        return {"error": f"last stdout line is not JSON: {exc}"}, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run all benchmarks; print merged JSON.")
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args(argv)
    merged: dict = {}
    seconds: dict[str, float] = {}
    for script in bench_scripts():
        key = script.stem.removeprefix("bench_")
        print(f"run_all: {script.name}", file=sys.stderr, flush=True)
        merged[key], took = run_script(script, args.quick)
        seconds[key] = round(took, 1)
    merged["run_all"] = {"quick": args.quick, "seconds": seconds,
                         "failed": sorted(k for k, v in merged.items() if "error" in v)}
    print(json.dumps(merged))
    return 1 if merged["run_all"]["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
