"""Nested hardware VMs: the host-side verdict, payloads, the guest-side check, kvm/check-nested.py."""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from smartos_lab.errors import ConfigError
from smartos_lab.machine.accel import AccelChoice
from smartos_lab.machine.hostvirt import HostVirt, host_virtualization, parse_cpuinfo
from smartos_lab.toolkits.vms import Vms, bhyve_payload, kvm_payload, nested_support

from ._parser_fixtures import fixture
from ._runners import RecordingRunner

REPO = Path(__file__).resolve().parents[2]
IMAGE = "5c7d0d24-3475-11e5-8e67-27953a8b237e"
UUID = "54f1cc77-68f1-42ab-acac-5c4f64f5d6e0"

KVM_NESTED = AccelChoice("kvm", "KVM: /dev/kvm usable", True, "nested on", "intel")
KVM_NOT_NESTED = AccelChoice("kvm", "KVM: /dev/kvm usable", False,
                             "nested virtualization off (kvm_intel nested=N)", "intel")
TCG = AccelChoice("tcg", "TCG: no /dev/kvm", False, "nested virtualization needs KVM", "")

INTEL = HostVirt("intel", "vmx", ept=True, unrestricted_guest=True, module="kvm_intel",
                 params={"nested": "Y", "ept": "Y", "unrestricted_guest": "Y"})
AMD = HostVirt("amd", "svm", npt=True, nrip_save=True, module="kvm_amd",
               params={"nested": "1", "npt": "1", "nrips": "1"})


# ------------------------------------------------------------------ host side
def test_intel_with_nesting_ept_and_unrestricted_guest_runs_both_brands():
    verdict = nested_support(KVM_NESTED, INTEL)
    assert (verdict.kvm_brand, verdict.bhyve, verdict.reasons) == (True, True, [])


def test_tcg_runs_neither_and_says_why():
    verdict = nested_support(TCG, INTEL)
    assert (verdict.kvm_brand, verdict.bhyve) == (False, False)
    assert "TCG" in verdict.reasons[0] and "zones still work" in verdict.reasons[0]


def test_nesting_off_explains_how_to_turn_it_on():
    verdict = nested_support(KVM_NOT_NESTED, INTEL)
    assert not verdict.kvm_brand and not verdict.bhyve
    assert "nested=1" in verdict.reasons[0] and "modprobe" in verdict.reasons[0]


def test_amd_host_runs_bhyve_but_never_the_kvm_brand():
    verdict = nested_support(AccelChoice("kvm", "KVM", True, "on", "amd"), AMD)
    assert (verdict.kvm_brand, verdict.bhyve) == (False, True)
    assert any("AMD" in r and "KVM brand" in r for r in verdict.reasons)
    assert any("decode assists" in n for n in verdict.notes)


def test_amd_without_npt_runs_nothing():
    host = HostVirt("amd", "svm", npt=True, nrip_save=True, module="kvm_amd",
                    params={"nested": "1", "npt": "0"})
    verdict = nested_support(AccelChoice("kvm", "KVM", True, "on", "amd"), host)
    assert not verdict.bhyve and any("NPT" in r for r in verdict.reasons)


def test_intel_without_unrestricted_guest_runs_kvm_brand_only():
    host = HostVirt("intel", "vmx", ept=True, unrestricted_guest=False, module="kvm_intel",
                    params={"nested": "Y"})
    verdict = nested_support(KVM_NESTED, host)
    assert (verdict.kvm_brand, verdict.bhyve) == (True, False)


def test_a_named_cpu_model_hides_vmx():
    verdict = nested_support(KVM_NESTED, INTEL, cpu_model="Haswell")
    assert not verdict.kvm_brand and "-cpu host" in verdict.reasons[0]


def test_cpuinfo_features_come_from_flags_and_vmx_flags():
    text = ("processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme vmx ept vpid\n"
            "vmx flags\t: vnmi ept vpid unrestricted_guest\n\nprocessor\t: 1\n"
            "vendor_id\t: AuthenticAMD\n")
    info = parse_cpuinfo(text)
    assert (info.vendor, info.cpu_flag, info.ept, info.unrestricted_guest) == ("intel", "vmx",
                                                                              True, True)
    amd = parse_cpuinfo("vendor_id\t: AuthenticAMD\nflags\t\t: svm npt nrip_save decodeassists\n")
    assert (amd.cpu_flag, amd.npt, amd.nrip_save, amd.decode_assists) == ("svm", True, True, True)


def fake_host(root: Path, *, vendor: str, flags: str, module: str, params: dict[str, str],
              pvm: bool = False) -> Path:
    (root / "proc").mkdir(parents=True)
    (root / "proc" / "cpuinfo").write_text(f"vendor_id\t: {vendor}\nflags\t\t: {flags}\n")
    if module:
        pdir = root / "sys" / "module" / module / "parameters"
        pdir.mkdir(parents=True)
        for k, v in params.items():
            (pdir / k).write_text(v + "\n")
        (root / "sys" / "module" / "kvm").mkdir()
    if pvm:
        (root / "sys" / "module" / "kvm_pvm").mkdir(parents=True)
    (root / "dev").mkdir()
    return root


def test_host_virtualization_reads_module_parameters(tmp_path):
    root = fake_host(tmp_path, vendor="GenuineIntel", flags="vmx ept", module="kvm_intel",
                     params={"nested": "Y", "ept": "Y"})
    host = host_virtualization(root)
    assert host.module == "kvm_intel" and host.param_on("nested") and host.param_on("ept")
    assert host.param_on("npt") is None


def test_check_script_reports_and_exits_1_on_a_pvm_only_host(tmp_path):
    root = fake_host(tmp_path, vendor="AuthenticAMD", flags="fpu sse", module="", params={},
                     pvm=True)
    (root / "dev" / "kvm").write_text("")
    proc = subprocess.run([sys.executable, str(REPO / "kvm" / "check-nested.py"), "--json",
                           "--root", str(root)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["accel"]["accel"] == "tcg" and report["host"]["pvm_only"] is True
    assert report["kvm_brand"] is False and report["bhyve"] is False


def test_check_script_human_output_names_both_brands(tmp_path):
    root = fake_host(tmp_path, vendor="GenuineIntel", flags="vmx", module="", params={})
    proc = subprocess.run([sys.executable, str(REPO / "kvm" / "check-nested.py"), "--root",
                           str(root)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "KVM brand: no" in proc.stdout and "bhyve:     no" in proc.stdout


# ------------------------------------------------------------------ payloads
def test_bhyve_payload_puts_the_image_on_the_boot_disk():
    payload = bhyve_payload(IMAGE, alias="nested1", ram=2048, vcpus=2)
    assert payload == {
        "brand": "bhyve", "alias": "nested1", "ram": 2048, "vcpus": 2,
        "disks": [{"image_uuid": IMAGE, "boot": True, "model": "virtio"}],
        "nics": [{"nic_tag": "admin", "ips": ["dhcp"], "model": "virtio", "primary": True}]}
    assert kvm_payload(IMAGE, alias="k")["brand"] == "kvm"


@pytest.mark.parametrize("kwargs", [{"ram": 0}, {"vcpus": -1}, {"alias": "a\nb"},
                                    {"ram": "1024"}])
def test_bad_payload_values_are_rejected(kwargs):
    with pytest.raises(ConfigError):
        bhyve_payload(IMAGE, **{"alias": "x", **kwargs})


def test_payload_needs_an_image_uuid():
    with pytest.raises(ConfigError):
        bhyve_payload("ubuntu-20.04", alias="x")


# ------------------------------------------------------------------ guest side
def test_capability_reads_sysinfo_and_device_nodes():
    runner = RecordingRunner({"sysinfo": fixture("sysinfo/sysinfo_smartos_tips.txt")})
    cap = Vms(runner).capability()
    assert runner.commands[0] == "sysinfo"
    assert "/dev/kvm" in runner.commands[1] and "/dev/vmmctl" in runner.commands[1]
    raw = json.loads(fixture("sysinfo/sysinfo_smartos_tips.txt"))
    assert cap.cpu_virtualization == raw["CPU Virtualization"]
    assert cap.devices == () and not cap.kvm_brand_ready      # the probe printed nothing
    assert cap.bhyve_capable is None                          # a 2012 sysinfo has no such key


def test_console_command_and_lifecycle_go_through_vmadm():
    runner = RecordingRunner({})
    vms = Vms(runner)
    assert Vms.console_command(UUID) == f"vmadm console {UUID}"
    vms.start(UUID)
    vms.stop(UUID, force=True)
    assert runner.commands == [f"vmadm start {UUID}", f"vmadm stop {UUID} -F"]


def test_the_lab_toolkit_judges_nesting_from_the_lab_s_accelerator():
    assert Vms(RecordingRunner({}), accel=TCG).nested_support(INTEL).bhyve is False
    assert Vms(RecordingRunner({}), accel=KVM_NESTED).nested_support(INTEL).kvm_brand is True
    with pytest.raises(ConfigError):
        Vms(RecordingRunner({})).nested_support(INTEL)


def test_create_refuses_zone_brands():
    with pytest.raises(ConfigError):
        Vms(RecordingRunner({})).create({"brand": "joyent"})
    assert shlex.split(Vms.console_command(UUID))[-1] == UUID
