"""Disk images through qemu-img: size parsing, checks, overlays, blank disks."""
from __future__ import annotations

import hashlib

import pytest

from smartos_lab.errors import ConfigError, ImageError
from smartos_lab.machine.disks import check_disk_image, create_blank, create_overlay, image_info, parse_size

MIB = 1 << 20


@pytest.mark.parametrize("text, expected", [
    ("20G", 20 << 30), ("512M", 512 * MIB), ("1.5G", 3 << 29), ("64k", 64 << 10),
    ("1T", 1 << 40), ("4096", 4096), ("2GiB", 2 << 30), ("2 GB", 2 << 30), (1234, 1234),
])
def test_parse_size_understands_binary_units(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "G", "-1G", "0", "twenty", "20X", 0, -5, True, 1.5])
def test_parse_size_rejects_nonsense(bad):
    with pytest.raises(ConfigError):
        parse_size(bad)


def test_missing_image_says_no_such_image(tmp_path):
    with pytest.raises(ImageError, match="no such image: .*nope.img"):
        image_info(tmp_path / "nope.img")


def test_a_directory_is_not_an_image(tmp_path):
    with pytest.raises(ImageError, match="directory"):
        image_info(tmp_path)


def test_an_empty_file_is_not_an_image(tmp_path):
    (tmp_path / "empty.img").write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        image_info(tmp_path / "empty.img")


def test_a_text_file_is_not_a_disk_image(tmp_path):
    (tmp_path / "notes.txt").write_text("hello, I am not a disk\n")
    with pytest.raises(ImageError, match="not a disk image"):
        image_info(tmp_path / "notes.txt")


def test_a_raw_image_without_boot_signature_is_not_bootable(tmp_path):
    raw = tmp_path / "blank.img"
    raw.write_bytes(bytes(MIB))
    assert image_info(raw).format == "raw"
    with pytest.raises(ImageError, match="not bootable"):
        check_disk_image(raw, bootable=True)
    data = bytearray(MIB)
    data[510:512] = b"\x55\xaa"
    raw.write_bytes(bytes(data))
    assert check_disk_image(raw, bootable=True).format == "raw"


def test_format_mismatch_is_reported(tmp_path):
    raw = tmp_path / "disk.img"
    raw.write_bytes(bytes(MIB))
    with pytest.raises(ImageError, match="raw image, but format 'qcow2'"):
        check_disk_image(raw, fmt="qcow2")


def test_create_blank_makes_a_qcow2_of_the_given_size(tmp_path):
    path = create_blank(tmp_path / "sub" / "data.qcow2", "64M")
    info = image_info(path)
    assert (info.format, info.virtual_size, info.backing_file) == ("qcow2", 64 * MIB, None)
    with pytest.raises(ImageError, match="already exists"):
        create_blank(path, "64M")
    assert create_blank(path, "64M", exist_ok=True) == path


def test_overlay_is_backed_by_the_absolute_base_path_and_leaves_the_base_untouched(
        tmp_path, monkeypatch):
    base = tmp_path / "base.img"
    base.write_bytes(bytes(4 * MIB))
    before = (base.stat().st_mtime_ns, hashlib.sha256(base.read_bytes()).hexdigest())
    monkeypatch.chdir(tmp_path)
    overlay = create_overlay("base.img", tmp_path / "labs" / "lab1.qcow2")
    info = image_info(overlay)
    assert info.format == "qcow2"
    assert info.backing_file == base.resolve() and info.backing_file.is_absolute()
    assert info.backing_format == "raw"
    assert info.virtual_size == 4 * MIB
    assert (base.stat().st_mtime_ns, hashlib.sha256(base.read_bytes()).hexdigest()) == before


def test_an_existing_overlay_is_refused_unless_reused_with_the_same_base(tmp_path):
    base = create_blank(tmp_path / "base.qcow2", "16M")
    other = create_blank(tmp_path / "other.qcow2", "16M")
    overlay = create_overlay(base, tmp_path / "ov.qcow2")
    with pytest.raises(ImageError, match="already exists"):
        create_overlay(base, overlay)
    assert create_overlay(base, overlay, exist_ok=True) == overlay
    with pytest.raises(ImageError, match="backed by"):
        create_overlay(other, overlay, exist_ok=True)


def test_an_overlay_can_be_bigger_than_its_base(tmp_path):
    base = create_blank(tmp_path / "base.qcow2", "16M")
    overlay = create_overlay(base, tmp_path / "ov.qcow2", size="1G")
    assert image_info(overlay).virtual_size == 1 << 30


def test_an_overlay_over_a_missing_base_is_an_image_error(tmp_path):
    with pytest.raises(ImageError, match="no such image"):
        create_overlay(tmp_path / "nope.img", tmp_path / "ov.qcow2")
