"""The toolkits end to end on a real SmartOS image (``SMARTOS_LAB_IMAGE``).

Skipped unless SMARTOS_LAB_IMAGE names a SmartOS USB image, ISO or platform.
One lab boots for the module and is destroyed afterwards.
"""
from __future__ import annotations

import os

import pytest

from smartos_lab.errors import ConfigError, DTraceError
from smartos_lab.lab import Lab
from smartos_lab.parsers.dtrace import DTraceCompileError
from smartos_lab.toolkits.selfheal import SelfHealingDemo
from smartos_lab.toolkits.vms import nested_support
from tests.smartos.artifacts import keep_serial_log

pytestmark = [pytest.mark.smartos, pytest.mark.slow, pytest.mark.timeout(3600)]


@pytest.fixture(scope="module")
def lab():
    lab = Lab.up(name=f"toolkits-{os.getpid()}", image=os.environ["SMARTOS_LAB_IMAGE"],
                 progress=False)
    try:
        yield lab
    finally:
        keep_serial_log(lab.serial_log, "toolkits")
        lab.destroy()


# ------------------------------------------------------------------ ZFS
def test_zones_pool_is_listed_and_healthy(lab):
    pools = {p.name: p for p in lab.zfs.pools()}
    assert "zones" in pools and pools["zones"].health == "ONLINE"
    assert pools["zones"].size > 0
    names = [d.name for d in lab.zfs.datasets("zones", depth=1)]
    assert "zones/config" in names and "zones/var" in names
    assert lab.zfs.status("zones").root.name == "zones"


def test_dataset_snapshot_rollback_on_illumos(lab):
    ds = "zones/sl-toolkit-test"
    lab.zfs.create(ds, properties={"compression": "lz4"})
    try:
        lab.check(f"echo v1 > /{ds}/f")
        lab.zfs.snapshot(ds, "s1")
        lab.check(f"echo v2 > /{ds}/f")
        lab.zfs.rollback(f"{ds}@s1")
        assert lab.check(f"cat /{ds}/f").stdout.strip() == "v1"
        assert lab.zfs.get(ds, "compression") == "lz4"
        assert isinstance(lab.zfs.get(ds, "used"), int)
    finally:
        lab.zfs.destroy(ds, recursive=True)


def test_self_healing_on_file_vdevs(lab):
    base = "/var/tmp/sl-heal"
    lab.check(f"mkdir -p {base} && mkfile 128m {base}/a {base}/b", timeout=300)
    demo = SelfHealingDemo(lab.zfs, (f"{base}/a", f"{base}/b"), pool="slheal",
                           import_dirs=(base,), corrupt_mib=64)
    try:
        report = demo.run()
    finally:
        demo.destroy()
        lab.sh(f"rm -rf {base}")
    assert report.data_intact and report.errors_detected > 0 and report.healed


# ------------------------------------------------------------------ zones & images
def test_vmadm_zoneadm_and_imgadm_answer(lab):
    assert isinstance(lab.zones.list(), list)
    assert isinstance(lab.zones.lookup(), list)
    zones = lab.zones.zoneadm_list()
    assert zones[0].name == "global" and zones[0].state == "running"
    assert isinstance(lab.images.list(), list)


def test_vmadm_validate_rejects_a_bad_payload(lab):
    with pytest.raises(ConfigError):
        lab.zones.validate({"brand": "joyent", "max_physical_memory": "lots"})


def test_zlogin_reports_the_exit_status_of_a_global_zone_refusal(lab):
    # no zone with this UUID exists: zlogin itself fails, non-zero
    result = lab.zones.zlogin("00000000-0000-0000-0000-000000000000", "true")
    assert result.exit_status != 0


# ------------------------------------------------------------------ DTrace
def test_syscalls_by_process_one_liner(lab):
    result = lab.dtrace.one_liner("syscalls_by_process", duration=2, timeout=180)
    agg = result.aggregation("@")
    assert agg is not None and agg.kind == "scalar" and agg.rows
    assert any("dtrace" in " ".join(map(str, r.keys)) for r in agg.rows)


def test_per_interval_snapshots(lab):
    result = lab.dtrace.run("syscall:::entry { @[probefunc] = count(); }", duration=4,
                            aggregate_interval=1, timeout=240)
    assert len(result.intervals) >= 2
    assert all(i.timestamp_ns for i in result.intervals)


def test_compile_error_is_typed(lab):
    with pytest.raises(DTraceCompileError):
        lab.dtrace.run("BEGIN {\n  printf(\"%s\", 1);\n}", duration=1, timeout=120)


def test_stream_yields_intervals(lab):
    got = []
    for interval in lab.dtrace.stream("profile-97 { @[cpu] = count(); }", interval=1,
                                      duration=4, timeout=240):
        got.append(interval)
    assert len(got) >= 2
    with pytest.raises(DTraceError):
        list(lab.dtrace.stream("nosuchprovider:::x { @ = count(); }", interval=1, duration=2,
                               timeout=120))


# ------------------------------------------------------------------ sysinfo & nested VMs
def test_sysinfo_summary(lab):
    info = lab.sysinfo.sysinfo()
    assert info.uuid and info.live_image
    summary = lab.sysinfo.summary()
    assert summary.disks and summary.memory_mib
    assert isinstance(lab.sysinfo.services_in_trouble(), list)


def test_guest_capability_agrees_with_the_host_verdict(lab):
    cap = lab.vms.capability()
    verdict = nested_support(lab.machine.accel)
    if lab.machine.accel.accel == "tcg":
        assert cap.cpu_virtualization == "none" and not cap.kvm_brand_ready
        assert not verdict.kvm_brand and not verdict.bhyve
    assert cap.bhyve_ready == bool(cap.bhyve_capable)
