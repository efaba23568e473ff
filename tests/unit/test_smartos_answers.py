"""answers.json: every key SmartOS's setup script reads, and the values that would hang it."""
from __future__ import annotations

import json
import os
import stat

import pytest

from smartos_lab.errors import ConfigError
from smartos_lab.smartos.answers import (
    SetupAnswers,
    generate_root_password,
    normalize_mac,
    read_secret,
    write_secret,
)

# Every key smartos_prompt_config.sh reads with getanswer (smartos-live @ 059ec27268b3):
# skip_instructions 1141..., config_console 1145, admin_nic 493 (promptnic "'admin'"),
# admin_ip 1204, admin_netmask 1211, headnode_default_gateway 1243, dns_resolver1 1259,
# dns_resolver2 1261, dns_search 1263, ntp_host 1280, skip_ntp_check 1283, zpool_layout 812,
# zpool_confirm_layout 818, bootpool 1318, pisource 1328, install_pkgsrc 1346,
# root_password 1361, hostname 1364, simple_headers 626, skip_final_summary 1376,
# skip_final_confirm 1398.
SCRIPT_KEYS = {
    "config_console", "skip_instructions", "simple_headers", "skip_ntp_check", "skip_final_summary",
    "skip_final_confirm", "admin_nic", "admin_ip", "admin_netmask", "headnode_default_gateway",
    "dns_resolver1", "dns_resolver2", "dns_search", "ntp_host", "zpool_layout",
    "zpool_confirm_layout", "bootpool", "pisource", "install_pkgsrc", "root_password", "hostname",
}


def answers(**kw) -> SetupAnswers:
    return SetupAnswers(root_password="pw-1234567890", hostname="lab1", **kw)


def problems(**kw) -> str:
    return "\n".join(answers(**kw).problems())


def test_offline_defaults_are_valid_and_answer_every_key_but_the_optional_ones():
    a = answers()
    assert a.problems() == []
    d = json.loads(a.to_json())
    assert set(d) == SCRIPT_KEYS - {"admin_nic", "admin_netmask"}
    assert d["admin_ip"] == "dhcp"
    assert d["headnode_default_gateway"] == "none"
    assert d["zpool_confirm_layout"] == "yes"
    assert d["bootpool"] == "none"
    assert d["install_pkgsrc"] == "no"
    for flag in ("config_console", "skip_instructions", "simple_headers", "skip_ntp_check",
                 "skip_final_confirm"):
        assert d[flag] is True


def test_static_address_with_netmask_and_admin_nic_write_all_keys():
    a = answers(admin_ip="192.168.5.10", admin_netmask="255.255.255.0",
                headnode_default_gateway="192.168.5.1", admin_nic="52:54:0:12:34:5")
    d = json.loads(a.to_json(nic_count=2))
    assert set(d) == SCRIPT_KEYS
    assert d["admin_nic"] == "52:54:00:12:34:05"
    assert d["admin_netmask"] == "255.255.255.0"


@pytest.mark.parametrize("flag", ["config_console", "skip_instructions", "skip_ntp_check",
                                  "skip_final_confirm"])
def test_unattended_setup_needs_each_skip_flag(flag):
    msg = problems(**{flag: False})
    assert flag in msg and "smartos_prompt_config.sh" in msg
    assert answers(**{flag: False}).problems(unattended=False) == []


def test_static_ip_without_netmask_is_refused():
    assert "admin_netmask" in problems(admin_ip="10.0.0.5")


def test_broadcast_address_as_admin_ip_is_refused_because_setup_would_loop():
    assert "broadcast" in problems(admin_ip="10.0.0.255", admin_netmask="255.255.255.0")


@pytest.mark.parametrize("ip", ["", "10.0.0", "10.0.0.256", "none", "fe80::1"])
def test_admin_ip_must_be_dhcp_or_dotted_quad(ip):
    assert "admin_ip" in problems(admin_ip=ip)


def test_several_nics_need_admin_nic():
    assert answers().problems(nic_count=2) != []
    assert "admin_nic" in "\n".join(answers().problems(nic_count=2))
    assert answers(admin_nic="52:54:00:12:34:56").problems(nic_count=2) == []


@pytest.mark.parametrize("value", ["manual", "no", "", "default", "mirror"])
def test_zpool_confirm_layout_other_than_yes_is_refused(value):
    assert "zpool_confirm_layout" in problems(zpool_confirm_layout=value)


@pytest.mark.parametrize("value", ["", "<default>", "has space.example", "bad_label.example"])
def test_dns_search_must_be_a_domain_name(value):
    assert "dns_search" in problems(dns_search=value)


def test_bootpool_empty_is_refused_and_named_pool_needs_pisource():
    assert "bootpool" in problems(bootpool="")
    assert "pisource" in problems(bootpool="zones", pisource="")
    assert problems(bootpool="zones") == ""


@pytest.mark.parametrize("kw,key", [
    ({"root_password": ""}, "root_password"),
    ({"root_password": "two\nlines"}, "root_password"),
    ({"hostname": "not a host"}, "hostname"),
    ({"dns_resolver1": ""}, "dns_resolver1"),
    ({"ntp_host": "a b"}, "ntp_host"),
    ({"headnode_default_gateway": "gw"}, "headnode_default_gateway"),
    ({"zpool_layout": "raidz9"}, "zpool_layout"),
    ({"admin_nic": "52:54:00"}, "admin_nic"),
])
def test_values_setup_cannot_take_are_named(kw, key):
    a = SetupAnswers(**{"root_password": "pw-1234567890", **kw})
    assert key in "\n".join(a.problems())


def test_validate_lists_every_problem_in_one_config_error():
    with pytest.raises(ConfigError) as err:
        answers(admin_ip="10.0.0.5", dns_search="", zpool_confirm_layout="manual").validate()
    text = str(err.value)
    assert "admin_netmask" in text and "dns_search" in text and "zpool_confirm_layout" in text


def test_to_json_refuses_invalid_answers():
    with pytest.raises(ConfigError):
        answers(skip_final_confirm=False).to_json()


def test_normalize_mac_pads_like_setup_does():
    assert normalize_mac("2:8:20:A:b:C") == "02:08:20:0a:0b:0c"
    with pytest.raises(ConfigError):
        normalize_mac("02:08:20")


def test_generated_passwords_are_long_random_and_shell_safe():
    pws = {generate_root_password() for _ in range(20)}
    assert len(pws) == 20
    assert all(len(p) == 20 and p.isalnum() for p in pws)
    with pytest.raises(ConfigError):
        generate_root_password(8)


def test_secrets_are_written_0600_and_read_back(tmp_path):
    path = write_secret(tmp_path / "lab" / "root.password", "s3cret\n")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert read_secret(path) == "s3cret"
    assert [p.name for p in path.parent.iterdir()] == ["root.password"]     # no temp left


def test_reading_a_secret_others_can_read_is_refused(tmp_path):
    path = tmp_path / "pw"
    path.write_text("x")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="0600"):
        read_secret(path)


def test_answers_file_is_written_private(tmp_path):
    path = answers().write(tmp_path / "answers.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(path.read_text())["root_password"] == "pw-1234567890"
