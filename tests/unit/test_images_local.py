"""identify(): what kind of SmartOS image a local path is, judged by content.
The files here are test files with the right structure, not SmartOS."""
import gzip
import os

import pytest

from smartos_lab.errors import ImageError
from smartos_lab.images.local import identify
from tests.images_support.disks import (
    SMALL_LAYOUT,
    add_member,
    gzip_file,
    make_gpt_disk,
    make_iso_like,
    make_platform_dir,
    make_platform_tarball,
    make_usb_test_image,
)

TS = "20250724T001011Z"


def test_raw_usb_image_is_recognised_by_its_gpt_and_the_stamp_taken_from_its_name(tmp_path):
    img = tmp_path / f"smartos-{TS}-USB.img"
    make_gpt_disk(img, SMALL_LAYOUT)
    info = identify(img)
    assert (info.kind, info.release, info.compressed) == ("usb", TS, False)
    assert info.path == img


def test_gzipped_usb_image_is_recognised_without_decompressing_all_of_it(tmp_path):
    img = tmp_path / "disk.img"
    make_gpt_disk(img, SMALL_LAYOUT)
    gz = gzip_file(img, tmp_path / "smartos-latest-USB.img.gz")
    info = identify(gz)
    assert (info.kind, info.release, info.compressed) == ("usb", None, True)


def test_iso_is_recognised_by_cd001_at_0x8001(tmp_path):
    info = identify(make_iso_like(tmp_path / f"smartos-{TS}.iso"))
    assert (info.kind, info.release) == ("iso", TS)


def test_platform_tarball_is_recognised_by_its_unix_member_and_its_stamp(tmp_path):
    tgz = make_platform_tarball(tmp_path / "renamed.tgz", TS)
    info = identify(tgz)
    assert (info.kind, info.release, info.compressed) == ("platform", TS, True)


def test_tarball_without_platform_unix_is_rejected(tmp_path):
    import tarfile
    tgz = tmp_path / "other.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        add_member(tar, "something/else", b"data")
    with pytest.raises(ImageError, match="without platform-\\*/i86pc/kernel/amd64/unix"):
        identify(tgz)


def test_a_build_output_platform_directory_is_recognised_with_its_version(tmp_path):
    pdir = make_platform_dir(tmp_path, TS)
    info = identify(pdir)
    assert (info.kind, info.release) == ("platform-dir", TS)


def test_a_directory_holding_platform_is_accepted(tmp_path):
    pdir = make_platform_dir(tmp_path / "usbroot")
    pdir.rename(tmp_path / "usbroot" / "platform")
    assert identify(tmp_path / "usbroot").kind == "platform-dir"


def test_a_directory_without_boot_files_names_what_was_expected(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="without i86pc/kernel/amd64/unix and i86pc/amd64/boot_archive"):
        identify(tmp_path / "empty")


@pytest.mark.parametrize("content", [b"", b"hello world\n" * 100, os.urandom(40000)])
def test_other_files_are_rejected_with_the_list_of_accepted_kinds(tmp_path, content):
    f = tmp_path / "thing.img"
    f.write_bytes(content)
    with pytest.raises(ImageError, match="expected a SmartOS USB image .*ISO.*platform tarball"):
        identify(f)


def test_gzip_of_something_else_is_rejected(tmp_path):
    f = tmp_path / "x.img.gz"
    f.write_bytes(gzip.compress(b"not a disk" * 1000))
    with pytest.raises(ImageError, match="neither a USB image"):
        identify(f)


def test_a_missing_path_is_reported(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        identify(tmp_path / "nope.img")


def test_usb_test_image_with_boot_files_is_a_usb_image(tmp_path):
    img = tmp_path / "u.img"
    make_usb_test_image(img)
    assert identify(img).kind == "usb"
