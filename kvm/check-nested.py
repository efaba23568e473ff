#!/usr/bin/env python3
"""Can this host run SmartOS hardware VMs (KVM brand, bhyve) inside a smartos-lab guest?

Reads /proc/cpuinfo, /dev/kvm and the kvm_intel/kvm_amd module parameters,
prints what it found and the verdict with reasons, and exits

  0  both brands (or bhyve on AMD, where the KVM brand never works) can run nested
  1  nothing can run nested here (TCG, nesting off, missing CPU features)
  2  the check itself failed

Usage: python3 kvm/check-nested.py [--json] [--root DIR]
(--root points at a copy of /proc, /sys and /dev for testing.)
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument("--root", default="/", help="read proc/, sys/ and dev/ below this directory")
    args = parser.parse_args(argv)
    try:
        from smartos_lab.errors import HostError
        from smartos_lab.machine.accel import detect_accel
        from smartos_lab.toolkits.vms import host_virtualization, nested_support
    except ImportError as exc:
        print(f"check-nested: smartos_lab is not importable ({exc}); "
              "run 'pip install -e .' in the repository first", file=sys.stderr)
        return 2
    root = Path(args.root)
    try:
        accel = detect_accel("auto", proc_root=root)
    except HostError as exc:
        print(f"check-nested: {exc}", file=sys.stderr)
        return 2
    host = host_virtualization(root)
    verdict = nested_support(accel, host)
    if args.json:
        print(json.dumps({"accel": asdict(accel), "host": asdict(host),
                          "kvm_brand": verdict.kvm_brand, "bhyve": verdict.bhyve,
                          "reasons": verdict.reasons, "notes": verdict.notes}, indent=2))
    else:
        print(f"accelerator:   {accel.accel} ({accel.reason})")
        print(f"nesting:       {'on' if accel.nested else 'off'} ({accel.nested_reason})")
        print(f"CPU:           vendor={host.vendor or '?'} flag={host.cpu_flag or 'none'} "
              f"ept={host.ept} unrestricted_guest={host.unrestricted_guest} "
              f"npt={host.npt} nrip_save={host.nrip_save} decode_assists={host.decode_assists}")
        if host.module:
            params = " ".join(f"{k}={v}" for k, v in sorted(host.params.items()))
            print(f"module:        {host.module} {params}")
        print(verdict)
    return 0 if verdict.bhyve or verdict.kvm_brand else 1


if __name__ == "__main__":
    sys.exit(main())
