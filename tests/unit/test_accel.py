"""Accelerator detection on fake host trees (dev/kvm, proc/cpuinfo, sys/module)."""
from __future__ import annotations

from pathlib import Path

import pytest

from smartos_lab.errors import ConfigError, HostError
from smartos_lab.machine.accel import detect_accel

INTEL = "vendor_id\t: GenuineIntel\nflags\t\t: fpu vme de pse tsc msr vmx sse2\n"
AMD = "vendor_id\t: AuthenticAMD\nflags\t\t: fpu vme de pse tsc msr svm sse2\n"
AMD_NO_SVM = "vendor_id\t: AuthenticAMD\nflags\t\t: fpu vme de pse tsc msr sse2\n"


def host(tmp_path: Path, *, cpuinfo: str, modules: dict[str, str | None], dev_kvm: bool = True) -> Path:
    """A fake root: ``modules`` maps module name -> its ``nested`` parameter (None: no parameter)."""
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_text(cpuinfo * 2)
    (tmp_path / "dev").mkdir()
    if dev_kvm:
        (tmp_path / "dev" / "kvm").write_text("")
    for module, nested in modules.items():
        d = tmp_path / "sys" / "module" / module / "parameters"
        d.mkdir(parents=True)
        if nested is not None:
            (d / "nested").write_text(nested + "\n")
    return tmp_path


def test_pvm_only_kvm_falls_back_to_tcg_with_the_reason(tmp_path):
    root = host(tmp_path, cpuinfo=AMD_NO_SVM, modules={"kvm": None, "kvm_pvm": None})
    choice = detect_accel(proc_root=root)
    assert choice.accel == "tcg"
    assert choice.reason.startswith("TCG: /dev/kvm is PVM-only (kvm_pvm loaded, no vmx/svm")
    assert "would hang" in choice.reason
    assert not choice.nested
    assert choice.cpu_vendor == "amd"


def test_requesting_kvm_on_a_pvm_only_host_raises_host_error(tmp_path):
    root = host(tmp_path, cpuinfo=AMD_NO_SVM, modules={"kvm": None, "kvm_pvm": None})
    with pytest.raises(HostError, match="PVM-only"):
        detect_accel("kvm", proc_root=root)


def test_intel_with_nested_on_uses_kvm_and_reports_nested(tmp_path):
    root = host(tmp_path, cpuinfo=INTEL, modules={"kvm": None, "kvm_intel": "Y"})
    choice = detect_accel(proc_root=root)
    assert choice.accel == "kvm"
    assert "kvm_intel" in choice.reason and "vmx" in choice.reason
    assert choice.nested is True
    assert "nested=Y" in choice.nested_reason
    assert choice.cpu_vendor == "intel"


def test_amd_with_nested_1_uses_kvm_and_nested(tmp_path):
    root = host(tmp_path, cpuinfo=AMD, modules={"kvm": None, "kvm_amd": "1"})
    choice = detect_accel(proc_root=root)
    assert (choice.accel, choice.nested, choice.cpu_vendor) == ("kvm", True, "amd")


def test_kvm_with_nested_off_is_kvm_without_nested(tmp_path):
    root = host(tmp_path, cpuinfo=INTEL, modules={"kvm": None, "kvm_intel": "N"})
    choice = detect_accel(proc_root=root)
    assert choice.accel == "kvm" and choice.nested is False
    assert "off" in choice.nested_reason


def test_no_dev_kvm_means_tcg(tmp_path):
    root = host(tmp_path, cpuinfo=INTEL, modules={}, dev_kvm=False)
    choice = detect_accel(proc_root=root)
    assert choice.accel == "tcg"
    assert "no /dev/kvm" in choice.reason


def test_cpu_without_vmx_or_svm_means_tcg(tmp_path):
    root = host(tmp_path, cpuinfo=AMD_NO_SVM, modules={"kvm": None, "kvm_amd": "1"})
    choice = detect_accel(proc_root=root)
    assert choice.accel == "tcg" and "no vmx/svm" in choice.reason


def test_tcg_requested_is_tcg_even_with_real_kvm(tmp_path):
    root = host(tmp_path, cpuinfo=INTEL, modules={"kvm": None, "kvm_intel": "Y"})
    choice = detect_accel("tcg", proc_root=root)
    assert choice.accel == "tcg" and choice.reason == "TCG: requested"


def test_unknown_accelerator_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError):
        detect_accel("hvf", proc_root=tmp_path)


def test_this_host_gets_an_answer_with_a_one_line_reason():
    choice = detect_accel()
    assert choice.accel in ("kvm", "tcg")
    assert "\n" not in choice.reason and choice.reason
