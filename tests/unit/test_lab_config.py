"""What `Lab.up` does with its arguments for a lab that already exists (pure: no VM)."""
from __future__ import annotations

import pytest

from smartos_lab.errors import ConfigError
from smartos_lab.lab import LabConfig, _apply_overrides

NOTHING = dict(image=None, release=None, memory=None, cpus=None, disks=None, disk_size=None,
               accel=None, boot=None, kernel_args=None, hostname=None)


def test_arguments_not_given_keep_the_saved_settings():
    config = LabConfig(name="a", memory_mib=4096, cpus=2, accel="tcg", kernel_args="-k")
    _apply_overrides(config, **NOTHING)
    assert (config.memory_mib, config.cpus, config.accel, config.kernel_args) == (4096, 2, "tcg", "-k")


def test_given_arguments_override_a_stopped_labs_settings_and_empty_kernel_args_clear_them():
    config = LabConfig(name="a", memory_mib=1024, accel="kvm", kernel_args="-k", set_up=True)
    _apply_overrides(config, **{**NOTHING, "memory": "4G", "accel": "tcg", "kernel_args": ""})
    assert (config.memory_mib, config.accel, config.kernel_args) == (4096, "tcg", "")


def test_the_pool_layout_can_change_until_setup_has_run():
    config = LabConfig(name="a", disk_count=1)
    _apply_overrides(config, **{**NOTHING, "disks": 2, "disk_size": "40G", "hostname": "h1"})
    assert (config.disk_count, config.disk_size, config.hostname) == (2, 40 << 30, "h1")


@pytest.mark.parametrize("change", [{"disks": 3}, {"disk_size": "99G"}, {"hostname": "other"}])
def test_the_pool_layout_and_hostname_cannot_change_after_setup(change):
    config = LabConfig(name="a", disk_count=1, disk_size=20 << 30, hostname="h1", set_up=True)
    with pytest.raises(ConfigError, match="destroy the lab"):
        _apply_overrides(config, **{**NOTHING, **change})


def test_repeating_the_saved_values_after_setup_is_fine():
    config = LabConfig(name="a", disk_count=1, disk_size=20 << 30, hostname="h1", set_up=True)
    _apply_overrides(config, **{**NOTHING, "disks": 1, "disk_size": "20G", "hostname": "h1"})
