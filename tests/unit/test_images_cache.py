"""ImageCache without a network: adding local files, listing, getting, removing, the
offline fallback.  (Downloads through a real HTTP server: tests/integration.)"""
import json
import os
import warnings

import pytest

from smartos_lab.errors import ConfigError, DownloadError, ImageError
from smartos_lab.images.cache import ImageCache
from smartos_lab.images.mirror import Mirror
from tests.images_support.disks import (
    TEST_UNIX,
    gzip_file,
    make_iso_like,
    make_platform_dir,
    make_platform_tarball,
    make_usb_test_image,
)

TS = "20250724T001011Z"
OLD = "20240104T000505Z"


class OfflineMirror(Mirror):
    def latest_ts(self):
        raise DownloadError("cannot reach mirror.test for http://mirror.test/latest: timed out")

    def resolve(self, release="latest"):
        return self.latest_ts()


@pytest.fixture
def cache(tmp_path):
    return ImageCache(tmp_path / "images", mirror=OfflineMirror("http://mirror.test/"))


def test_the_default_root_is_the_images_dir_of_the_lab_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SMARTOS_LAB_CACHE", str(tmp_path / "c"))
    assert ImageCache().root == tmp_path / "c" / "images"


def test_adding_a_gzipped_usb_image_decompresses_it_and_takes_the_stamp_from_inside(cache, tmp_path):
    img = tmp_path / "u.img"
    make_usb_test_image(img, stamp=TS)
    gz = gzip_file(img, tmp_path / "smartos-latest-USB.img.gz")
    added = cache.add(gz)
    assert (added.kind, added.release, added.verified) == ("usb", TS, False)
    assert added.path == cache.root / TS / f"smartos-{TS}-USB.img"
    assert added.path.read_bytes() == img.read_bytes()
    assert added.checksum.algo == "sha256"
    assert gz.exists()                                   # the user's file is left alone
    side = json.loads((cache.root / TS / f"smartos-{TS}-USB.img.json").read_text())
    assert side["source"] == str(gz) and side["checksum"] == str(added.checksum)
    assert not [p for p in cache.root.iterdir() if p.name.startswith(".add")]


def test_adding_a_file_twice_returns_the_cached_one(cache, tmp_path):
    tgz = make_platform_tarball(tmp_path / f"platform-release-20250724-{TS}.tgz", TS)
    first = cache.add(tgz)
    assert first.path.name == tgz.name
    assert cache.add(tgz) == first
    assert len(cache.list()) == 1


def test_an_image_without_a_stamp_gets_a_local_release_name(cache, tmp_path):
    added = cache.add(make_iso_like(tmp_path / "mystery.iso"))
    assert added.kind == "iso" and added.release.startswith("local-")
    assert added.release[6:] == added.checksum.hex[:12]


def test_release_can_be_given_and_is_validated(cache, tmp_path):
    iso = make_iso_like(tmp_path / "x.iso")
    assert cache.add(iso, release=OLD).release == OLD
    with pytest.raises(ConfigError):
        cache.add(iso, release="yesterday")


def test_platform_directories_are_not_copied_into_the_cache(cache, tmp_path):
    with pytest.raises(ImageError, match="used in place"):
        cache.add(make_platform_dir(tmp_path))


def test_list_is_newest_first_and_get_latest_is_the_newest_cached(cache, tmp_path):
    cache.add(make_iso_like(tmp_path / f"smartos-{OLD}.iso"))
    cache.add(make_iso_like(tmp_path / f"smartos-{TS}.iso"))
    cache.add(make_platform_tarball(tmp_path / "p.tgz", OLD))
    assert [(i.release, i.kind) for i in cache.list()] == [(TS, "iso"), (OLD, "platform"), (OLD, "iso")]
    assert cache.get("latest", "iso").release == TS
    assert cache.get("latest", "platform").release == OLD
    assert cache.get(OLD, "usb") is None


def test_fetch_of_a_cached_dated_release_needs_no_network(cache, tmp_path):
    cache.add(make_iso_like(tmp_path / f"smartos-{OLD}.iso"))
    assert cache.fetch(OLD, "iso").release == OLD


def test_fetch_latest_offline_falls_back_to_the_newest_cached_image_with_a_warning(cache, tmp_path):
    cache.add(make_iso_like(tmp_path / f"smartos-{OLD}.iso"))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        got = cache.fetch("latest", "iso")
    assert got.release == OLD
    assert "using cached release" in str(w[0].message)


def test_fetch_offline_with_nothing_cached_raises_the_network_error(cache):
    with pytest.raises(DownloadError, match="cannot reach"):
        cache.fetch("latest", "usb")


def test_remove_deletes_images_sidecars_and_the_empty_release_dir(cache, tmp_path):
    cache.add(make_iso_like(tmp_path / f"smartos-{TS}.iso"))
    cache.add(make_platform_tarball(tmp_path / "p.tgz", TS))
    cache.platform(TS)
    removed = cache.remove(TS, "iso")
    assert {p.name for p in removed} == {f"smartos-{TS}.iso", f"smartos-{TS}.iso.json"}
    assert cache.get(TS, "platform")
    cache.remove(TS)
    assert cache.list() == [] and not (cache.root / TS).exists()


@pytest.mark.parametrize("name", ["..", "../precious", ".", "", "local-xyz"])
def test_remove_refuses_names_that_are_not_releases(cache, tmp_path, name):
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious.part").write_text("keep")
    with pytest.raises(ConfigError):
        cache.remove(name)
    assert (tmp_path / "precious").exists() and (tmp_path / "precious.part").exists()


def test_platform_extracts_once_from_the_cached_usb_image(cache, tmp_path):
    img = tmp_path / f"smartos-{TS}-USB.img"
    make_usb_test_image(img, stamp=TS)
    cache.add(img)
    files = cache.platform(TS)
    assert files.root == cache.root / TS / "direct"
    assert files.unix.read_bytes() == TEST_UNIX and files.version == TS
    mtime = os.stat(files.unix).st_mtime_ns
    assert cache.platform(TS).unix == files.unix
    assert os.stat(files.unix).st_mtime_ns == mtime


def test_unknown_kind_is_a_config_error(cache):
    with pytest.raises(ConfigError, match="usb, iso, platform"):
        cache.get(TS, "floppy")


def test_a_broken_sidecar_is_ignored(cache, tmp_path):
    cache.add(make_iso_like(tmp_path / f"smartos-{TS}.iso"))
    (cache.root / TS / f"smartos-{TS}.iso.json").write_text("{not json")
    assert cache.list() == []


def test_platform_latest_offline_uses_the_newest_cached_release_with_a_warning(cache, tmp_path):
    cache.add(make_platform_tarball(tmp_path / "old.tgz", OLD))
    cache.add(make_platform_tarball(tmp_path / "new.tgz", TS))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        files = cache.platform("latest")
    assert files.version == TS and "using cached release" in str(w[0].message)


def test_a_release_locked_by_another_process_is_waited_for_then_reported(tmp_path):
    import fcntl

    from smartos_lab.errors import ImageError
    from smartos_lab.images.cache import _locked

    (tmp_path / "r").mkdir()
    with open(tmp_path / "r" / ".lock", "a") as other:
        fcntl.flock(other, fcntl.LOCK_EX)          # another open file description: another "process"
        with pytest.raises(ImageError, match="locked by another smartos-lab process"):
            with _locked(tmp_path / "r", timeout=0.6):
                pass
    with _locked(tmp_path / "r", timeout=0.6):        # free again
        pass


def test_an_interrupted_decompression_keeps_the_verified_download(tmp_path, monkeypatch):
    from smartos_lab.images import cache as cache_mod

    got = tmp_path / "smartos-20250724T001011Z-USB.img.gz"
    got.write_bytes(b"verified download")

    def interrupted(src, dest, progress=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_mod, "gunzip", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cache_mod.ImageCache(tmp_path / "cache")._store(got, "usb", "20250724T001011Z", None,
                                                        verified=True, source="test", progress=None)
    assert got.read_bytes() == b"verified download"
