"""Release resolution against the mirror layout of smartos-live tools/smartos-release
(mirror reads are stubbed here; tests/integration/test_download_cache.py uses a real server)."""
import pytest

from smartos_lab.errors import ConfigError, DownloadError
from smartos_lab.images import mirror as mirror_mod
from smartos_lab.images.checksums import Checksum
from smartos_lab.images.http_download import http_error
from smartos_lab.images.mirror import DEFAULT_ROOT, OFFLINE_HINT, Mirror, validate_ts

TS = "20250724T001011Z"
ROOT = "https://mirror.test/SmartOS/"
SHA = {name: c * 64 for name, c in (
    (f"smartos-{TS}-USB.img.gz", "a"), (f"smartos-{TS}.iso", "b"),
    (f"platform-release-20250724-{TS}.tgz", "c"), (f"platform-debug-release-20250724-{TS}.tgz", "d"),
    (f"tests-release-20250724-{TS}.tgz", "e"))}


@pytest.fixture
def objects(monkeypatch):
    """The mirror's objects by URL; a missing URL answers 404."""
    store: dict[str, str] = {}
    fetched: list[str] = []

    def fake_fetch_text(url, **kw):
        fetched.append(url)
        if url not in store:
            raise http_error(url, 404, "Not Found")
        return store[url]

    monkeypatch.setattr(mirror_mod, "fetch_text", fake_fetch_text)
    store["_fetched"] = fetched
    return store


def sums_text(table):
    return "".join(f"{h} {n}\n" for n, h in table.items())


def test_latest_object_names_the_release_directory(objects):
    objects[ROOT + "latest"] = f"/Joyent_Dev/public/SmartOS/{TS}\n"
    objects[ROOT + f"{TS}/sha256sums.txt"] = sums_text(SHA)
    rel = Mirror(ROOT).resolve("latest")
    assert rel.ts == TS
    assert rel.base_url == f"{ROOT}{TS}/"
    assert rel.url("usb") == f"{ROOT}{TS}/smartos-{TS}-USB.img.gz"
    assert rel.url("iso") == f"{ROOT}{TS}/smartos-{TS}.iso"
    assert rel.checksum("usb") == Checksum("sha256", "a" * 64)
    assert rel.checksum_url == f"{ROOT}{TS}/sha256sums.txt"


def test_platform_tarball_name_comes_from_the_checksum_file_not_the_debug_build(objects):
    objects[ROOT + f"{TS}/sha256sums.txt"] = sums_text(SHA)
    rel = Mirror(ROOT).resolve(TS)
    assert rel.filename("platform") == f"platform-release-20250724-{TS}.tgz"
    assert rel.checksum("platform") == Checksum("sha256", "c" * 64)


def test_platform_name_from_another_branch_is_found_too(objects):
    objects[ROOT + f"{TS}/md5sums.txt"] = f"{'1' * 32} platform-master-{TS}.tgz\n"
    assert Mirror(ROOT).resolve(TS).filename("platform") == f"platform-master-{TS}.tgz"


def test_releases_before_sha256sums_fall_back_to_md5sums(objects):
    old = "20240104T000505Z"
    objects[ROOT + f"{old}/md5sums.txt"] = f"{'f' * 32} smartos-{old}-USB.img.gz\n"
    rel = Mirror(ROOT).resolve(old)
    assert rel.checksum("usb") == Checksum("md5", "f" * 32)
    assert rel.checksum("iso") is None
    assert rel.checksum_url.endswith("md5sums.txt")
    assert objects["_fetched"] == [ROOT + f"{old}/sha256sums.txt", ROOT + f"{old}/md5sums.txt"]


def test_without_checksum_files_the_platform_name_is_the_release_branch_guess(objects):
    objects[ROOT + f"{TS}/index.html"] = "<html></html>"
    rel = Mirror(ROOT).resolve(TS)
    assert rel.checksums == {} and rel.checksum_url is None
    assert rel.filename("platform") == f"platform-release-20250724-{TS}.tgz"


def test_a_release_that_is_not_on_the_mirror_says_so(objects):
    with pytest.raises(DownloadError, match=f"no release {TS} on the mirror {ROOT}"):
        Mirror(ROOT).resolve(TS)


@pytest.mark.parametrize("bad", ["2025-07-24", "20250724", "20250724t001011z", "latest2",
                                 "20251324T001011Z", "../20250724T001011Z", ""])
def test_a_malformed_release_stamp_is_a_config_error_showing_the_expected_form(bad):
    with pytest.raises(ConfigError, match="20250724T001011Z|YYYYMMDDTHHMMSSZ"):
        validate_ts(bad)


def test_a_latest_object_without_a_stamp_is_reported(objects):
    objects[ROOT + "latest"] = "<html>not found</html>"
    with pytest.raises(DownloadError, match="does not name a release"):
        Mirror(ROOT).resolve()


def test_network_errors_carry_the_hint_for_supplying_an_image_by_hand(monkeypatch):
    def unreachable(url, **kw):
        raise DownloadError(f"cannot reach mirror.test for {url}: timed out")
    monkeypatch.setattr(mirror_mod, "fetch_text", unreachable)
    with pytest.raises(DownloadError) as e:
        Mirror(ROOT).resolve()
    assert ROOT + "latest" in str(e.value)
    assert "smartos-lab images add PATH" in str(e.value) and "--image" in str(e.value)
    assert str(e.value).count(OFFLINE_HINT) == 1


def test_the_mirror_root_defaults_to_manta_and_can_be_overridden_by_env(monkeypatch):
    monkeypatch.delenv("SMARTOS_LAB_MIRROR", raising=False)
    assert Mirror().root == DEFAULT_ROOT == "https://us-central.manta.mnx.io/Joyent_Dev/public/SmartOS/"
    monkeypatch.setenv("SMARTOS_LAB_MIRROR", "http://local.test/smartos")
    assert Mirror().root == "http://local.test/smartos/"
    assert Mirror("http://explicit.test/x/").root == "http://explicit.test/x/"


def test_unknown_kinds_are_config_errors(objects):
    objects[ROOT + f"{TS}/sha256sums.txt"] = sums_text(SHA)
    with pytest.raises(ConfigError, match="usb, iso, platform"):
        Mirror(ROOT).resolve(TS).url("vmware")
