"""vmadm list / get / lookup -j parsers, on real output from the SmartOS docs."""
from __future__ import annotations

import pytest

from smartos_lab.errors import ParseError
from smartos_lab.parsers import (
    VMADM_LIST_DEFAULT_FIELDS,
    VmadmVm,
    parse_vmadm_get,
    parse_vmadm_json,
    parse_vmadm_list,
)
from smartos_lab.parsers.vmadm import VM_TYPES

from ._parser_fixtures import fixture, fixtures_in


# ----------------------------------------------------------------------------- list
def test_vmadm_list_reads_the_default_columns():
    vms = parse_vmadm_list(fixture("vmadm/list_headnode_smartos.txt"))
    assert len(vms) == 16
    first = vms[0]
    assert (first.uuid, first.type, first.ram, first.state, first.alias) == (
        "1e6ea123-dca0-44e6-8c0c-34c7f543fe82", "OS", 128, "running", "zone55")
    assert [vm.alias for vm in vms if vm.type == "KVM"] == ["ubuntu1"]
    assert vms[-1].ram == 32768


def test_vm_types_are_the_four_vmadm_documents():
    """smartos-live src/vm/man/vmadm.8.md, ``type``: one of ['OS', 'LX', 'KVM', 'BHYVE']
    (not BHYV: the 4-wide TYPE column of vmadm.js does not cut the value)."""
    assert VM_TYPES == ("OS", "LX", "KVM", "BHYVE")
    seen = {vm.type for name in fixtures_in("vmadm") if name.split("/")[1].startswith("list_")
            and "type" in fixture(name).split("\n", 1)[0].lower()
            for vm in parse_vmadm_list(fixture(name))}
    assert seen and seen <= set(VM_TYPES)


def test_vmadm_list_dash_means_no_value():
    vms = parse_vmadm_list(fixture("vmadm/list_missing_ram_smartos_issue.txt"))
    assert [vm.alias for vm in vms if vm.ram is None] == ["clouddb3", "cleanroom", "clouddb3"]
    assert vms[0].raw["ram"] == "1024"


def test_vmadm_list_maps_custom_column_headers_to_field_names():
    vms = parse_vmadm_list(fixture("vmadm/list_o_custom_columns_smartos.txt"))
    assert vms[0].fields == {"uuid": "1e6ea123-dca0-44e6-8c0c-34c7f543fe82", "type": "OS",
                             "ram": 128, "quota": 20, "cpu_shares": 100, "zfs_io_priority": 30}
    kvm = next(vm for vm in vms if vm.type == "KVM")
    assert kvm.fields["quota"] is None and kvm.fields["zfs_io_priority"] == 100
    assert vms[0].state is None and vms[0].alias is None


def test_vmadm_list_with_state_and_alias_columns():
    (vm,) = parse_vmadm_list(fixture("vmadm/list_o_with_state_alias_smartos.txt"))
    assert (vm.state, vm.alias, vm.fields["quota"], vm.fields["cpu_shares"]) == (
        "running", "zone70", 40, 100)


def test_vmadm_list_keeps_flattened_nic_fields():
    vms = parse_vmadm_list(fixture("vmadm/list_tips_nics_ip_smartos.txt"))
    assert [(vm.alias, vm.fields["nics.0.ip"]) for vm in vms] == [
        ("dnsmasq", "10.1.1.125"), ("standard64", "10.1.1.86"), ("fifo", "10.1.1.240"),
        ("confl-jira-dev", "10.1.1.130")]


def test_vmadm_list_p_uses_the_callers_field_list_and_empty_means_none():
    # Constructed input, not captured output (no real "vmadm list -p" output was
    # found): the ':' layout of vmadm.js outputVMListLine with the values of the
    # "vmadm list" fixture; a missing value prints as an empty field under -p.
    text = ("1e6ea123-dca0-44e6-8c0c-34c7f543fe82:OS:128:running:zone55\n"
            "492add60-13cc-4239-a4c6-a6a561251416:OS::running:clouddb3\n")
    first, second = parse_vmadm_list(text, fields=list(VMADM_LIST_DEFAULT_FIELDS))
    assert (first.ram, first.alias) == (128, "zone55")
    assert second.ram is None and second.raw["ram"] == ""


def test_vmadm_list_p_refuses_rows_where_a_value_contained_a_colon():
    # vmadm does not escape ':' under -p, so a MAC address splits into extra fields.
    with pytest.raises(ParseError, match="does not escape ':'") as err:
        parse_vmadm_list("zone70:b2:1e:ba:a5:6e:70\n", fields="alias,nics.0.mac")
    assert err.value.command == "vmadm list" and err.value.lineno == 1


def test_vmadm_list_rejects_a_row_with_a_missing_column():
    text = fixture("vmadm/list_o_custom_columns_smartos.txt").replace(
        "OS    128      5      50         1\n2508", "OS    128      5      50\n2508", 1)
    with pytest.raises(ParseError, match="expected 6 columns") as err:
        parse_vmadm_list(text)
    assert err.value.line.startswith("20de2bfc") and err.value.lineno == 3


def test_vmadm_list_rejects_a_non_numeric_ram():
    text = fixture("vmadm/list_headnode_smartos.txt").replace("OS    128 ", "OS    12B ", 1)
    with pytest.raises(ParseError, match="bad ram value '12B'") as err:
        parse_vmadm_list(text)
    assert err.value.lineno == 2


def test_vmadm_list_rejects_output_without_a_header():
    text = fixture("vmadm/list_headnode_smartos.txt").split("\n", 1)[1]
    with pytest.raises(ParseError, match="upper-case field names"):
        parse_vmadm_list(text)


def test_vmadm_list_rejects_empty_output():
    with pytest.raises(ParseError, match="empty output"):
        parse_vmadm_list("")


# ----------------------------------------------------------------------------- JSON
def test_vmadm_get_returns_one_vm_with_typed_fields():
    vm = parse_vmadm_get(fixture("vmadm/get_zone70_smartos.txt"))
    assert (vm.uuid, vm.alias, vm.brand, vm.state) == (
        "54f1cc77-68f1-42ab-acac-5c4f64f5d6e0", "zone70", "joyent", "running")
    assert (vm.max_physical_memory, vm.quota, vm.cpu_shares, vm.autoboot) == (256, 20, 100, True)
    assert vm.ram is None                       # vmadm get has no "ram" for OS VMs
    assert vm.raw["zfs_io_priority"] == 30


def test_vmadm_get_reads_old_style_nics():
    vm = parse_vmadm_get(fixture("vmadm/get_zone70_smartos.txt"))
    (nic,) = vm.nics
    assert (nic.interface, nic.mac, nic.nic_tag, nic.ip, nic.netmask, nic.gateway) == (
        "net0", "b2:1e:ba:a5:6e:70", "external", "10.2.121.70", "255.255.0.0", "10.2.121.1")
    assert nic.ips == ["10.2.121.70"] and nic.primary is False


def test_vmadm_lookup_j_returns_a_list_with_ram_and_type():
    (vm,) = parse_vmadm_json(fixture("vmadm/lookup_j_by_ip_smartos.txt"))
    assert isinstance(vm, VmadmVm)
    assert (vm.ram, vm.raw["type"]) == (256, "OS")


def test_vmadm_lookup_j_reads_every_vm_and_nic():
    vms = parse_vmadm_json(fixture("vmadm/lookup_j_three_vms_smartos.txt"))
    assert [vm.alias for vm in vms] == ["billapi0", "amon0", "adminui0"]
    assert [n.nic_tag for n in vms[0].nics] == ["admin", "external"]
    assert vms[0].raw["customer_metadata"]["package_name"] == "regular_128"


def test_vmadm_get_refuses_an_array():
    with pytest.raises(ParseError, match="expected one JSON object"):
        parse_vmadm_get(fixture("vmadm/lookup_j_three_vms_smartos.txt"))


def test_vmadm_json_rejects_truncated_json_naming_the_line():
    text = fixture("vmadm/get_zone70_smartos.txt")
    truncated = text[: text.index('"nics"')]
    with pytest.raises(ParseError, match="not JSON") as err:
        parse_vmadm_json(truncated)
    assert err.value.command == "vmadm get/lookup -j" and err.value.lineno is not None


def test_vmadm_json_rejects_a_vm_without_uuid():
    with pytest.raises(ParseError, match="has no 'uuid'"):
        parse_vmadm_json('[{"alias": "zone70"}]')


def test_vmadm_json_rejects_a_non_numeric_quota():
    text = fixture("vmadm/get_zone70_smartos.txt").replace('"quota": 20', '"quota": "lots"')
    with pytest.raises(ParseError, match="quota is 'lots'"):
        parse_vmadm_json(text)


def test_vmadm_json_rejects_a_scalar():
    with pytest.raises(ParseError, match="object or array"):
        parse_vmadm_json("42")
