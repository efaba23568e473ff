"""zoneadm list parser, on real output from illumos, OmniOS and SmartOS sources."""
from __future__ import annotations

import pytest

from smartos_lab.errors import ParseError
from smartos_lab.parsers import parse_zoneadm_list

from ._parser_fixtures import fixture


def zones(name: str, **kw):
    return parse_zoneadm_list(fixture(f"zoneadm/{name}", **kw))


def test_zoneadm_list_cv_reads_running_and_installed_zones():
    glob, zone = zones("list_cv_illumos_sysadrm.txt")
    assert (glob.name, glob.zoneid, glob.state, glob.path, glob.brand, glob.ip_type) == (
        "global", 0, "running", "/", "native", "shared")
    assert (zone.name, zone.zoneid, zone.state, zone.path) == (
        "my-zone", None, "installed", "/export/home/my-zone")


def test_zoneadm_list_v_zone_ids_are_ints():
    assert [z.zoneid for z in zones("list_v_running_illumos_sysadrm.txt")] == [0, 1]


def test_zoneadm_list_iv_reports_an_incomplete_zone():
    _, testzone = zones("list_iv_incomplete_lx_illumos_sysadrm.txt")
    assert (testzone.state, testzone.brand) == ("incomplete", "lx")


def test_zoneadm_list_cv_tolerates_trailing_spaces():
    listed = zones("list_cv_omnios.txt")
    assert [(z.name, z.zoneid, z.brand, z.ip_type) for z in listed] == [
        ("global", 0, "ipkg", "shared"), ("lx0", 1, "lx", "excl"), ("lx2", 2, "lx", "excl"),
        ("lx1", 3, "lx", "excl"), ("lipkg0", 5, "lipkg", "excl")]


def test_zoneadm_list_pc_on_smartos_carries_uuid_brand_and_debug_id():
    glob, running, installed = zones("list_pc_smartos_imgadm_source.txt", drop_elisions=True)
    assert (glob.name, glob.brand, glob.ip_type, glob.uuid, glob.debugid) == (
        "global", "liveimg", "shared", None, None)
    assert (running.zoneid, running.brand, running.debugid) == (21, "joyent-minimal", 21)
    assert running.uuid == running.name == "dc5cbce7-798a-4bc8-bdc5-61b4be00a22e"
    assert (installed.zoneid, installed.state, installed.brand, installed.debugid) == (
        None, "installed", "kvm", 22)


def test_zoneadm_list_p_with_six_fields_has_no_ip_type():
    glob, centos = zones("list_p_six_fields_illumos_sysadrm.txt")
    assert (glob.brand, glob.ip_type) == ("native", None)
    assert (centos.zoneid, centos.uuid, centos.brand) == (
        1, "27fabdc8-d8ce-e8aa-9921-ad1ea23ab063", "lx")


def test_zoneadm_list_p_unescapes_colons_in_the_zonepath():
    # Constructed input, not captured output: zoneadm(8) says a ':' in the
    # zonepath is printed as '\:'; the other fields are the SmartOS fixture's.
    (zone,) = parse_zoneadm_list(
        r"-:7970c690-1738-4e58-a04f-8ce4ea8ebfca:installed:/zones/a\:b:"
        r"7970c690-1738-4e58-a04f-8ce4ea8ebfca:kvm:excl:22" + "\n")
    assert zone.path == "/zones/a:b" and zone.debugid == 22


def test_zoneadm_list_plain_prints_zone_names():
    # The first column of the "zoneadm list -cv" fixture is what plain "zoneadm list -c" prints.
    assert [z.name for z in parse_zoneadm_list("global\nmy-zone\n")] == ["global", "my-zone"]


def test_zoneadm_list_rejects_a_truncated_parseable_line():
    text = fixture("zoneadm/list_pc_smartos_imgadm_source.txt", drop_elisions=True)
    truncated = text.replace(":joyent-minimal:excl:21", "")
    with pytest.raises(ParseError, match="at least 6") as err:
        parse_zoneadm_list(truncated)
    assert err.value.command == "zoneadm list" and err.value.lineno == 2


def test_zoneadm_list_rejects_an_unknown_state():
    text = fixture("zoneadm/list_cv_illumos_sysadrm.txt").replace("installed", "sleeping")
    with pytest.raises(ParseError, match="unknown zone state 'sleeping'"):
        parse_zoneadm_list(text)


def test_zoneadm_list_rejects_a_verbose_row_with_a_missing_column():
    text = fixture("zoneadm/list_cv_illumos_sysadrm.txt").replace("native     shared\n", "\n", 1)
    with pytest.raises(ParseError, match="expected 6 columns"):
        parse_zoneadm_list(text)


def test_zoneadm_list_rejects_a_non_numeric_zone_id():
    text = fixture("zoneadm/list_v_running_illumos_sysadrm.txt").replace(" 1  my-zone", " x  my-zone")
    with pytest.raises(ParseError, match="bad zone id"):
        parse_zoneadm_list(text)


def test_zoneadm_list_rejects_empty_output():
    with pytest.raises(ParseError, match="global zone is always listed"):
        parse_zoneadm_list("")
