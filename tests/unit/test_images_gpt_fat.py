"""GPT parsing and FAT editing on a test disk with the SmartOS USB image's layout
(smartos-live tools/format_image: loader at 2048, boot, root at 528384), built with
sgdisk + mkfs.fat."""
import struct

import pytest

from smartos_lab.errors import ImageError
from smartos_lab.images.fat import (
    fat_copy_in,
    fat_copy_out,
    fat_delete,
    fat_exists,
    fat_label,
    fat_list,
    fat_mkdir,
    fat_read,
    fat_write,
)
from smartos_lab.images.gpt import find_partition, read_partitions
from tests.images_support.disks import REAL_LAYOUT, SMALL_LAYOUT, make_gpt_disk


@pytest.fixture(scope="module")
def real_layout_disk(tmp_path_factory):
    img = tmp_path_factory.mktemp("gpt") / "disk.img"
    make_gpt_disk(img, REAL_LAYOUT)
    return img


@pytest.fixture
def disk(tmp_path):
    img = tmp_path / "disk.img"
    offset = make_gpt_disk(img, SMALL_LAYOUT)
    return img, offset


def test_partitions_are_read_with_names_slots_and_offsets(real_layout_disk):
    parts = read_partitions(real_layout_disk)
    assert [(p.index, p.name) for p in parts] == [(0, "loader"), (1, "boot"), (2, "root")]
    assert parts[0].offset_bytes == 1 << 20
    assert parts[1].size_bytes == 1 << 20
    assert parts[2].first_lba == 528384
    assert parts[0].type_guid == "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"


def test_root_partition_offset_is_computed_not_assumed(real_layout_disk, tmp_path):
    assert find_partition(real_layout_disk, "root").offset_bytes == 270532608
    small = tmp_path / "small.img"
    make_gpt_disk(small, SMALL_LAYOUT)
    assert find_partition(small, "root").offset_bytes == (2048 + 2048 + 2048) * 512


def test_missing_partition_names_the_ones_present(disk):
    with pytest.raises(ImageError, match="no partition named 'data' .*'loader', 'boot', 'root'"):
        find_partition(disk[0], "data")


def test_a_disk_without_gpt_is_rejected(tmp_path):
    f = tmp_path / "blank.img"
    f.write_bytes(bytes(1 << 16))
    with pytest.raises(ImageError, match="no GPT"):
        read_partitions(f)


def test_damaged_partition_entries_are_detected_by_crc(disk):
    img, _ = disk
    with open(img, "r+b") as f:
        f.seek(512)
        header = f.read(92)
        entries_lba = struct.unpack_from("<Q", header, 72)[0]
        f.seek(entries_lba * 512 + 56)          # inside the first entry's name
        f.write(b"X\0")
    with pytest.raises(ImageError, match="entries are damaged"):
        read_partitions(img)


def test_damaged_header_is_detected_by_crc(disk):
    img, _ = disk
    with open(img, "r+b") as f:
        f.seek(512 + 40)
        f.write(b"\xff")
    with pytest.raises(ImageError, match="header checksum"):
        read_partitions(img)


def test_fat_label_of_the_root_partition_is_smartosboot(real_layout_disk):
    assert fat_label(real_layout_disk, find_partition(real_layout_disk, "root").offset_bytes) == "SMARTOSBOOT"


def test_fat_write_creates_parents_and_fat_read_returns_the_bytes(disk):
    img, off = disk
    fat_write(img, off, "/boot/loader.conf.local", b'os_console="ttya"\n')
    assert fat_read(img, off, "/boot/loader.conf.local") == b'os_console="ttya"\n'
    assert "::/boot/loader.conf.local" in fat_list(img, off, "/boot")


def test_fat_write_replaces_an_existing_file(disk):
    img, off = disk
    fat_write(img, off, "/private/answers.json", b"{}" * 1000)
    fat_write(img, off, "/private/answers.json", b'{"a": 1}')
    assert fat_read(img, off, "/private/answers.json") == b'{"a": 1}'


def test_binary_data_and_long_names_survive(disk, tmp_path):
    img, off = disk
    data = bytes(range(256)) * 4096
    fat_write(img, off, "/platform/i86pc/amd64/boot_archive.hash", data)
    out = fat_copy_out(img, off, "/platform/i86pc/amd64/boot_archive.hash", tmp_path / "h")
    assert out.read_bytes() == data


def test_fat_list_recursive_marks_directories_with_a_slash(disk):
    img, off = disk
    fat_mkdir(img, off, "/a/b/c")
    fat_write(img, off, "/a/b/file", b"x")
    listing = fat_list(img, off, "/a", recursive=True)
    assert {"::/a/b/", "::/a/b/c/", "::/a/b/file"} <= set(listing)


def test_fat_exists_and_delete(disk):
    img, off = disk
    fat_write(img, off, "/x.txt", b"1")
    assert fat_exists(img, off, "/x.txt") and fat_exists(img, off, "x.txt")
    fat_delete(img, off, "/x.txt")
    assert not fat_exists(img, off, "/x.txt")


def test_reading_a_missing_file_raises_image_error_with_mtools_message(disk):
    img, off = disk
    with pytest.raises(ImageError, match="reading /nope .* not found"):
        fat_read(img, off, "/nope")


def test_fat_paths_with_dotdot_and_images_named_with_double_at_are_refused(disk, tmp_path):
    img, off = disk
    with pytest.raises(ImageError, match="'..' is not allowed"):
        fat_write(img, off, "/boot/../../x", b"")
    with pytest.raises(ImageError, match="@@"):
        fat_read(tmp_path / "a@@b.img", off, "/x")


def test_writes_stay_inside_the_partition(disk):
    img, off = disk
    before = img.read_bytes()[:off]
    fat_write(img, off, "/big", b"z" * (1 << 20))
    assert img.read_bytes()[:off] == before


def test_fat_copy_in_copies_a_host_file_into_new_directories(disk, tmp_path):
    img, off = disk
    src = tmp_path / "archive"
    src.write_bytes(b"A" * (3 << 20))
    fat_copy_in(img, off, src, "/platform/i86pc/amd64/boot_archive")
    assert fat_read(img, off, "/platform/i86pc/amd64/boot_archive") == src.read_bytes()
