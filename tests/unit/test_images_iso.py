"""unix and boot_archive out of a SmartOS ISO, read with pycdlib (no mount).

The ISOs are built here (tests/images_support/isos.py) in the layout smartos-live
``tools/build_boot_image`` gives a SmartOS ISO (``mkisofs -R``: Rock Ridge names over
8.3 ISO 9660 names, ``/platform`` = the build's platform directory).  Their files are
small test files at the real paths, not SmartOS.
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess

import pycdlib
import pytest

from smartos_lab.errors import ConfigError, ImageError
from smartos_lab.images.cache import ImageCache
from smartos_lab.images.iso import IsoReader, iso9660_name
from smartos_lab.images.local import identify
from smartos_lab.images.platform import extract_platform
from tests.images_support.disks import TEST_ARCHIVE, TEST_UNIX, make_iso_like
from tests.images_support.isos import (
    TS,
    full_name,
    make_smartos_test_iso,
    mkisofs_name,
    smartos_test_files,
)

UNIX = "i86pc/kernel/amd64/unix"
ARCHIVE = "i86pc/amd64/boot_archive"
OTHER_TS = "20240104T000505Z"


def files_under(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# --- the layout the tests build is the one mkisofs makes -----------------------------------
def test_the_test_isos_use_mkisofs_8_3_names_under_the_rock_ridge_names():
    assert mkisofs_name("boot_archive", is_dir=False) == "BOOT_ARC.;1"
    assert mkisofs_name("boot_archive.hash", is_dir=False) == "BOOT_ARC.HAS;1"
    assert mkisofs_name("unix", is_dir=False) == "UNIX.;1"
    assert mkisofs_name("i86pc", is_dir=True) == "I86PC"


def test_iso9660_names_compare_without_version_and_trailing_dot():
    assert iso9660_name(b"BOOT_ARCHIVE.;1") == "boot_archive"
    assert iso9660_name(b"BOOT_ARCHIVE.HASH;1") == "boot_archive.hash"
    assert iso9660_name(b"AMD64") == "amd64"


# --- extraction ------------------------------------------------------------------------------
def test_a_rock_ridge_iso_gives_unix_boot_archive_hash_version_and_password(tmp_path):
    iso = make_smartos_test_iso(tmp_path / "smartos.iso")
    pf = extract_platform(iso, tmp_path / "out")
    assert pf.unix == tmp_path / "out/platform" / UNIX
    assert pf.unix.read_bytes() == TEST_UNIX
    assert pf.boot_archive.read_bytes() == TEST_ARCHIVE
    assert pf.boot_archive_hash.read_bytes() == b"test-hash\n"
    assert pf.root_password.read_bytes() == b"test-password\n"
    assert pf.version == TS
    # only the boot files: no manifest, nothing from /boot, no staging left behind
    assert files_under(tmp_path / "out") == [
        "platform/etc/version/platform", "platform/i86pc/amd64/boot_archive",
        "platform/i86pc/amd64/boot_archive.hash", "platform/i86pc/kernel/amd64/unix",
        "platform/root.password"]


def test_without_rock_ridge_the_whole_iso9660_names_are_found(tmp_path):
    iso = make_smartos_test_iso(tmp_path / "plain.iso", rock_ridge=False, iso_names=full_name)
    with IsoReader(iso) as reader:
        assert not reader.rock_ridge
    pf = extract_platform(iso, tmp_path / "out")
    assert (pf.unix.read_bytes(), pf.boot_archive.read_bytes()) == (TEST_UNIX, TEST_ARCHIVE)
    assert pf.boot_archive_hash is not None and pf.version == TS


def test_without_rock_ridge_truncated_8_3_names_are_not_guessed(tmp_path):
    iso = make_smartos_test_iso(tmp_path / "short.iso", rock_ridge=False)   # BOOT_ARC.;1
    with pytest.raises(ImageError, match=r"has no platform/i86pc/amd64/boot_archive; looked up by "
                                         r"ISO 9660 names \(the ISO has no Rock Ridge names"):
        extract_platform(iso, tmp_path / "out")
    assert os.listdir(tmp_path / "out") == []


def test_missing_boot_files_are_named_and_nothing_is_left_behind(tmp_path):
    iso = make_smartos_test_iso(tmp_path / "empty.iso", omit=(f"platform/{UNIX}", f"platform/{ARCHIVE}"))
    with pytest.raises(ImageError, match=f"has no platform/{UNIX} and no platform/{ARCHIVE}; "
                                         "looked up by Rock Ridge names"):
        extract_platform(iso, tmp_path / "out")
    assert os.listdir(tmp_path / "out") == []


def test_the_optional_files_may_be_missing(tmp_path):
    iso = make_smartos_test_iso(tmp_path / "bare.iso", stamp=None,
                                omit=(f"platform/{ARCHIVE}.hash", "platform/root.password"))
    pf = extract_platform(iso, tmp_path / "out")
    assert (pf.boot_archive_hash, pf.version, pf.root_password) == (None, None, None)
    assert files_under(tmp_path / "out") == [f"platform/{ARCHIVE}", f"platform/{UNIX}"]


def test_a_rock_ridge_symlink_is_not_followed(tmp_path):
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, rock_ridge="1.09")
    made = ""
    for name in ("platform", "i86pc", "kernel", "amd64"):
        made += "/" + mkisofs_name(name, is_dir=True)
        iso.add_directory(made, rr_name=name)
    iso.add_symlink(made + "/UNIX.;1", rr_symlink_name="unix", rr_path="/etc/passwd")
    iso.add_directory("/PLATFORM/I86PC/AMD64", rr_name="amd64")
    iso.add_fp(io.BytesIO(TEST_ARCHIVE), len(TEST_ARCHIVE), "/PLATFORM/I86PC/AMD64/BOOT_ARC.;1",
               rr_name="boot_archive")
    iso.write(str(tmp_path / "link.iso"))
    iso.close()
    with pytest.raises(ImageError, match=f"has no platform/{UNIX};"):
        extract_platform(tmp_path / "link.iso", tmp_path / "out")


def test_a_truncated_iso_is_refused_instead_of_giving_short_files(tmp_path):
    iso = make_smartos_test_iso(tmp_path / "full.iso", boot_archive=os.urandom(200_000))
    cut = tmp_path / "cut.iso"
    cut.write_bytes(iso.read_bytes()[:-50_000])
    with pytest.raises(ImageError, match="truncated ISO"):
        extract_platform(cut, tmp_path / "out")


def test_a_file_with_only_the_iso_signature_is_not_readable(tmp_path):
    with pytest.raises(ImageError, match="cannot read the ISO 9660 file system"):
        extract_platform(make_iso_like(tmp_path / "fake.iso"), tmp_path / "out")


def test_a_destination_with_a_comma_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="comma"):
        extract_platform(make_smartos_test_iso(tmp_path / "s.iso"), tmp_path / "a,b")


@pytest.mark.skipif(shutil.which("genisoimage") is None, reason="needs genisoimage (Debian package)")
def test_an_iso_made_by_mkisofs_with_rock_ridge_like_build_boot_image(tmp_path):
    """genisoimage (Debian's mkisofs) with ``-quiet -R`` as in build_boot_image ``create_iso``."""
    root = tmp_path / "root"
    for rel, data in smartos_test_files().items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    iso = tmp_path / f"platform-{TS}.iso"
    subprocess.run(["genisoimage", "-quiet", "-R", "-o", str(iso), str(root)], check=True)
    pf = extract_platform(iso, tmp_path / "out")
    assert (pf.unix.read_bytes(), pf.boot_archive.read_bytes(), pf.version) == (TEST_UNIX, TEST_ARCHIVE, TS)


# --- identify and the cache ----------------------------------------------------------------
def test_identify_takes_the_release_from_the_isos_version_file(tmp_path):
    info = identify(make_smartos_test_iso(tmp_path / f"smartos-{OTHER_TS}.iso"))
    assert (info.kind, info.release, info.compressed) == ("iso", TS, False)
    assert identify(make_smartos_test_iso(tmp_path / f"smartos-{OTHER_TS}-b.iso", stamp=None)).release \
        == OTHER_TS                                     # no version file: the name's stamp


def test_the_cache_adds_an_iso_and_boots_a_release_from_it(tmp_path):
    cache = ImageCache(tmp_path / "images")
    added = cache.add(make_smartos_test_iso(tmp_path / "downloaded.iso"))
    assert (added.kind, added.release) == ("iso", TS)
    assert added.path == cache.root / TS / f"smartos-{TS}.iso"
    pf = cache.platform(TS)
    assert pf.root == cache.root / TS / "direct"
    assert (pf.unix.read_bytes(), pf.boot_archive.read_bytes()) == (TEST_UNIX, TEST_ARCHIVE)
