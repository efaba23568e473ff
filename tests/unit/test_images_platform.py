"""extract_platform(): unix + boot_archive under <root>/platform/ for a direct boot, from
a platform tarball, a platform directory or a USB image (test files with SmartOS's layout).
ISOs: test_images_iso.py."""
import os
import tarfile

import pytest

from smartos_lab.errors import ConfigError, ImageError
from smartos_lab.images.platform import extract_platform, platform_files
from tests.images_support.disks import (
    TEST_ARCHIVE,
    TEST_UNIX,
    gzip_file,
    make_platform_dir,
    make_platform_tarball,
    make_usb_test_image,
    mtools_put,
)

TS = "20250724T001011Z"


def assert_boot_files(files, root):
    assert files.root == root
    assert files.unix == root / "platform/i86pc/kernel/amd64/unix"
    assert files.boot_archive == root / "platform/i86pc/amd64/boot_archive"
    assert "/platform/i86pc/kernel/amd64/unix" in str(files.unix)   # krtld needs /platform/
    assert files.unix.read_bytes() == TEST_UNIX
    assert files.boot_archive.read_bytes() == TEST_ARCHIVE
    assert files.version == TS


def test_from_a_platform_tarball_the_stamped_directory_becomes_platform(tmp_path):
    tgz = make_platform_tarball(tmp_path / f"platform-release-20250724-{TS}.tgz", TS)
    files = extract_platform(tgz, tmp_path / "out")
    assert_boot_files(files, tmp_path / "out")
    assert files.boot_archive_hash.read_bytes() == b"test-hash\n"
    assert files.root_password.read_bytes() == b"test-password\n"
    assert not (tmp_path / "out" / f"platform-{TS}").exists()
    # only the boot files are extracted, not e.g. the manifest
    assert not (tmp_path / "out/platform/i86pc/amd64/boot_archive.manifest").exists()


def test_hostile_tarball_members_cannot_write_outside_the_destination(tmp_path):
    evil = [
        ("/tmp/absolute-evil", b"x", {}),
        (f"platform-{TS}/../../escaped", b"x", {}),
        (f"platform-{TS}/i86pc/../../../escaped2", b"x", {}),
    ]
    tgz = make_platform_tarball(tmp_path / "p.tgz", TS, extra=evil)
    files = extract_platform(tgz, tmp_path / "out")
    assert files.unix.read_bytes() == TEST_UNIX
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "escaped2").exists()
    assert not os.path.exists("/tmp/absolute-evil")


def test_a_unix_member_that_is_a_symlink_is_not_followed(tmp_path):
    tgz = tmp_path / "p.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        info = tarfile.TarInfo(f"platform-{TS}/i86pc/kernel/amd64/unix")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
        data = tarfile.TarInfo(f"platform-{TS}/i86pc/amd64/boot_archive")
        data.size = 0
        tar.addfile(data)
    with pytest.raises(ImageError, match="(has no platform/i86pc/kernel/amd64/unix)|(without)"):
        extract_platform(tgz, tmp_path / "out")
    assert not (tmp_path / "out" / "platform").exists()


def test_from_a_build_output_directory_a_symlink_is_made_not_a_copy(tmp_path):
    pdir = make_platform_dir(tmp_path / "output", TS)
    files = extract_platform(pdir, tmp_path / "boot")
    assert (tmp_path / "boot/platform").is_symlink()
    assert os.path.realpath(tmp_path / "boot/platform") == str(pdir.resolve())
    assert_boot_files(files, tmp_path / "boot")


def test_from_a_usb_image_the_files_come_out_of_the_root_partition(tmp_path):
    img = tmp_path / "smartos.img"
    make_usb_test_image(img, stamp=TS)
    before = img.read_bytes()
    files = extract_platform(img, tmp_path / "out")
    assert_boot_files(files, tmp_path / "out")
    assert files.boot_archive_hash.read_bytes() == b"test-hash\n"
    assert files.root_password.read_bytes() == b"test-password\n"
    assert img.read_bytes() == before          # the image is only read


def test_usb_image_without_hash_or_version_gives_none_for_them(tmp_path):
    img = tmp_path / "smartos.img"
    make_usb_test_image(img, stamp=None, with_hash=False)
    files = extract_platform(img, tmp_path / "out")
    assert files.boot_archive_hash is None and files.version is None


def test_usb_image_without_boot_archive_is_reported_and_leaves_nothing(tmp_path):
    from tests.images_support.disks import SMALL_LAYOUT, make_gpt_disk
    img = tmp_path / "smartos.img"
    off = make_gpt_disk(img, SMALL_LAYOUT)
    mtools_put(img, off, "/platform/i86pc/kernel/amd64/unix", TEST_UNIX)
    with pytest.raises(ImageError, match="has no platform/i86pc/amd64/boot_archive"):
        extract_platform(img, tmp_path / "out")
    assert os.listdir(tmp_path / "out") == []


def test_a_destination_with_a_comma_is_refused_because_qemu_splits_initrd_on_commas(tmp_path):
    tgz = make_platform_tarball(tmp_path / "p.tgz", TS)
    with pytest.raises(ConfigError, match="comma"):
        extract_platform(tgz, tmp_path / "a,b")


def test_an_existing_platform_in_the_destination_is_not_overwritten(tmp_path):
    tgz = make_platform_tarball(tmp_path / "p.tgz", TS)
    (tmp_path / "out/platform").mkdir(parents=True)
    with pytest.raises(ImageError, match="already exists"):
        extract_platform(tgz, tmp_path / "out")


def test_compressed_usb_images_are_refused_with_a_way_forward(tmp_path):
    img = tmp_path / "s.img"
    make_usb_test_image(img)
    with pytest.raises(ImageError, match="decompress it first"):
        extract_platform(gzip_file(img, tmp_path / "s.img.gz"), tmp_path / "o1")


def test_platform_files_describes_an_existing_root_and_rejects_an_incomplete_one(tmp_path):
    extract_platform(make_platform_tarball(tmp_path / "p.tgz", TS), tmp_path / "out")
    assert platform_files(tmp_path / "out").version == TS
    (tmp_path / "out/platform/i86pc/amd64/boot_archive").unlink()
    with pytest.raises(ImageError):
        platform_files(tmp_path / "out")
