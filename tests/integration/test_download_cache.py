"""ImageCache.fetch() end to end against a test mirror on 127.0.0.1 laid out like the
real one (latest object, <TS>/ directory, sha256sums.txt / md5sums.txt).  The images it
serves are test disks and tarballs with SmartOS's layout, not SmartOS."""
import hashlib
import time

import pytest

from smartos_lab.errors import ChecksumMismatch, DownloadError
from smartos_lab.images.cache import ImageCache
from smartos_lab.images.mirror import Mirror
from tests.images_support.disks import (
    TEST_ARCHIVE,
    TEST_UNIX,
    gzip_file,
    make_platform_tarball,
    make_usb_test_image,
)
from tests.images_support.http_server import FaultyServer
from tests.images_support.net import unanswered_port  # noqa: F401  (fixture)

TS = "20250724T001011Z"
USB = f"smartos-{TS}-USB.img.gz"
PLATFORM = f"platform-release-20250724-{TS}.tgz"


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    d = tmp_path_factory.mktemp("artifacts")
    make_usb_test_image(d / "usb.img", stamp=TS)
    gzip_file(d / "usb.img", d / USB)
    make_platform_tarball(d / PLATFORM, TS)
    return {"raw": (d / "usb.img").read_bytes(), USB: (d / USB).read_bytes(),
            PLATFORM: (d / PLATFORM).read_bytes()}


@pytest.fixture
def mirror(artifacts):
    with FaultyServer() as server:
        server.serve("/SmartOS/latest", f"/Joyent_Dev/public/SmartOS/{TS}\n")
        for name in (USB, PLATFORM):
            server.serve(f"/SmartOS/{TS}/{name}", artifacts[name])
        server.serve(f"/SmartOS/{TS}/sha256sums.txt", "".join(
            f"{hashlib.sha256(artifacts[n]).hexdigest()} {n}\n" for n in (USB, PLATFORM)))
        yield server


def cache_for(server, tmp_path):
    return ImageCache(tmp_path / "images", mirror=Mirror(server.url("/SmartOS/")))


def test_fetch_latest_usb_downloads_verifies_and_decompresses(mirror, artifacts, tmp_path):
    cache = cache_for(mirror, tmp_path)
    image = cache.fetch("latest", "usb")
    assert (image.kind, image.release, image.verified) == ("usb", TS, True)
    assert image.path == tmp_path / "images" / TS / f"smartos-{TS}-USB.img"
    assert image.path.read_bytes() == artifacts["raw"]
    assert image.checksum.hex == hashlib.sha256(artifacts[USB]).hexdigest()
    assert image.source == mirror.url(f"/SmartOS/{TS}/{USB}")
    leftovers = [p.name for p in (tmp_path / "images" / TS).iterdir()]
    assert sorted(leftovers) == [".lock", f"smartos-{TS}-USB.img", f"smartos-{TS}-USB.img.json"]


def test_a_second_fetch_of_a_dated_release_makes_no_request(mirror, tmp_path):
    cache = cache_for(mirror, tmp_path)
    first = cache.fetch(TS, "usb")
    n = len(mirror.requests)
    assert cache.fetch(TS, "usb") == first
    assert len(mirror.requests) == n


def test_platform_for_direct_boot_comes_from_the_platform_tarball(mirror, tmp_path):
    cache = cache_for(mirror, tmp_path)
    files = cache.platform("latest")
    assert files.unix.read_bytes() == TEST_UNIX
    assert files.boot_archive.read_bytes() == TEST_ARCHIVE
    assert str(files.unix).endswith("/direct/platform/i86pc/kernel/amd64/unix")
    assert cache.get(TS, "platform").verified


def test_older_releases_are_verified_with_md5sums(mirror, artifacts, tmp_path):
    del mirror.files[f"/SmartOS/{TS}/sha256sums.txt"]
    mirror.serve(f"/SmartOS/{TS}/md5sums.txt", f"{hashlib.md5(artifacts[USB]).hexdigest()} {USB}\n")
    image = cache_for(mirror, tmp_path).fetch(TS, "usb")
    assert image.checksum.algo == "md5" and image.verified


def test_a_corrupted_download_is_rejected_and_nothing_is_cached(mirror, artifacts, tmp_path):
    bad = bytearray(artifacts[USB])
    bad[len(bad) // 2] ^= 0xFF
    mirror.serve(f"/SmartOS/{TS}/{USB}", bytes(bad))
    cache = cache_for(mirror, tmp_path)
    with pytest.raises(ChecksumMismatch, match=USB):
        cache.fetch(TS, "usb")
    assert cache.list() == []
    assert [p.name for p in (tmp_path / "images" / TS).iterdir()] == [".lock"]


def test_a_truncated_gzip_is_a_download_error_and_leaves_no_half_file(mirror, artifacts, tmp_path):
    truncated = artifacts[USB][: len(artifacts[USB]) * 2 // 3]
    mirror.serve(f"/SmartOS/{TS}/{USB}", truncated)
    mirror.serve(f"/SmartOS/{TS}/sha256sums.txt", f"{hashlib.sha256(truncated).hexdigest()} {USB}\n")
    cache = cache_for(mirror, tmp_path)
    with pytest.raises(DownloadError, match="truncated or corrupt"):
        cache.fetch(TS, "usb")
    assert [p.name for p in (tmp_path / "images" / TS).iterdir()] == [".lock"]


def test_a_release_without_checksums_is_refused_unless_verify_is_false(mirror, artifacts, tmp_path):
    del mirror.files[f"/SmartOS/{TS}/sha256sums.txt"]
    mirror.serve(f"/SmartOS/{TS}/index.html", "<html></html>")
    cache = cache_for(mirror, tmp_path)
    with pytest.raises(DownloadError, match="no published checksum .*verify=False"):
        cache.fetch(TS, "usb")
    image = cache.fetch(TS, "usb", verify=False)
    assert image.verified is False and image.path.read_bytes() == artifacts["raw"]


def test_a_missing_file_names_the_url_and_how_to_supply_an_image(mirror, tmp_path):
    del mirror.files[f"/SmartOS/{TS}/{USB}"]
    with pytest.raises(DownloadError) as e:
        cache_for(mirror, tmp_path).fetch(TS, "usb")
    assert f"HTTP 404 Not Found for {mirror.url(f'/SmartOS/{TS}/{USB}')}" in str(e.value)
    assert "smartos-lab images add PATH" in str(e.value)


def test_an_interrupted_image_download_resumes(mirror, artifacts, tmp_path):
    mirror.files[f"/SmartOS/{TS}/{USB}"].cut_after = 50_000
    image = cache_for(mirror, tmp_path).fetch(TS, "usb")
    assert image.path.read_bytes() == artifacts["raw"]
    assert mirror.ranges(f"/SmartOS/{TS}/{USB}") == [None, "bytes=50000-"]


@pytest.mark.slow
def test_an_unreachable_mirror_fails_within_seconds_with_the_url_and_the_offline_hint(
        unanswered_port, tmp_path):  # noqa: F811
    root = f"http://127.0.0.1:{unanswered_port}/SmartOS/"
    cache = ImageCache(tmp_path / "images", mirror=Mirror(root))   # default 5 s connect timeout
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as e:
        cache.fetch("latest", "usb")
    assert time.monotonic() - t0 < 8
    msg = str(e.value)
    assert root + "latest" in msg and "timed out" in msg
    assert "smartos-lab up --image /path/to/smartos-<TS>-USB.img.gz" in msg
    assert "smartos-lab images add PATH" in msg
