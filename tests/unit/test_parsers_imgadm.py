"""imgadm list / avail parsers, on real output from the SmartOS docs."""
from __future__ import annotations

import json

import pytest

from smartos_lab.errors import ParseError
from smartos_lab.parsers import parse_imgadm_avail, parse_imgadm_list

from ._parser_fixtures import fixture


def test_imgadm_list_reads_the_installed_image():
    (image,) = parse_imgadm_list(fixture("imgadm/list_nfs_smartos.txt"))
    assert (image.uuid, image.name, image.version, image.os, image.published) == (
        "cf7e2f40-9276-11e2-af9a-0bad2233fb0b", "base64", "1.9.1", "smartos",
        "2013-03-22T17:11:29Z")
    assert image.type is None and image.manifest is None


def test_imgadm_list_does_not_depend_on_column_alignment():
    (image,) = parse_imgadm_list(fixture("imgadm/list_managing_images_smartos.txt"))
    assert (image.name, image.version, image.os) == ("base-64", "15.2.0", "smartos")


def test_imgadm_avail_reads_every_row():
    images = parse_imgadm_avail(fixture("imgadm/avail_head_tail_smartos.txt"))
    assert len(images) == 10
    assert [i.name for i in images[:4]] == ["debian-7", "centos-6", "freebsd-10", "ubuntu-14.04"]
    assert {i.os for i in images} == {"linux", "bsd", "smartos"}


def test_imgadm_avail_type_and_pub_columns():
    images = parse_imgadm_avail(fixture("imgadm/avail_type_pub_smartos.txt"))
    assert [i.version for i in images] == ["16.1.0", "16.2.0", "16.3.0", "16.3.1", "17.1.0",
                                           "17.2.0"]
    assert all(i.type == "zone-dataset" for i in images)
    assert images[0].published == "2016-04-27" and images[0].fields["pub"] == "2016-04-27"


def test_imgadm_avail_rows_without_header_take_the_callers_fields():
    images = parse_imgadm_avail(fixture("imgadm/avail_grep_no_header_smartos.txt"),
                                fields=("uuid", "name", "version", "os", "published"))
    assert [(i.name, i.version) for i in images] == [
        ("base-64-lts", "14.4.0"), ("base-64-lts", "14.4.1"), ("base-64", "15.1.0"),
        ("base-64-lts", "14.4.2"), ("base-64", "15.1.1"), ("base-64", "15.2.0")]


def test_imgadm_list_j_reads_manifest_pool_and_clones():
    # Constructed input, not captured output (no complete real "imgadm list -j"
    # was found): the {manifest, zpool, clones} shape of imgadm's cli.js
    # listImagesInfo around the manifest fields of the "imgadm list" fixture.
    text = json.dumps([{"manifest": {"v": 2, "uuid": "cf7e2f40-9276-11e2-af9a-0bad2233fb0b",
                                     "name": "base64", "version": "1.9.1", "os": "smartos",
                                     "type": "zone-dataset",
                                     "published_at": "2013-03-22T17:11:29Z"},
                        "zpool": "zones", "clones": 1}], indent=2)
    (image,) = parse_imgadm_list(text)
    assert (image.uuid, image.type, image.zpool, image.clones) == (
        "cf7e2f40-9276-11e2-af9a-0bad2233fb0b", "zone-dataset", "zones", 1)
    assert image.manifest["v"] == 2


def test_imgadm_list_rejects_a_row_with_a_missing_column():
    text = fixture("imgadm/list_nfs_smartos.txt").replace("  2013-03-22T17:11:29Z", "")
    with pytest.raises(ParseError, match="expected 5 columns") as err:
        parse_imgadm_list(text)
    assert err.value.command == "imgadm list" and err.value.lineno == 2


def test_imgadm_avail_rejects_rows_without_header_when_no_fields_are_given():
    with pytest.raises(ParseError, match="header") as err:
        parse_imgadm_avail(fixture("imgadm/avail_grep_no_header_smartos.txt"))
    assert err.value.command == "imgadm avail"


def test_imgadm_list_rejects_empty_output():
    with pytest.raises(ParseError, match="empty output"):
        parse_imgadm_list("   \n")


def test_imgadm_list_j_rejects_an_entry_without_manifest_uuid():
    with pytest.raises(ParseError, match="entry #0 has no manifest"):
        parse_imgadm_list('[{"zpool": "zones"}]')


def test_imgadm_list_j_rejects_truncated_json():
    with pytest.raises(ParseError, match="not JSON"):
        parse_imgadm_list('[\n  {\n    "manifest": {\n      "v": 2,\n')
