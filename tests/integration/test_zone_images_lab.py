"""Lab.install_zone_image on the Linux test guest (a test substrate, not SmartOS).

What is tested for real: the image is taken from the host's zone-image cache, the guest
folder is made, manifest and file travel host -> guest over the lab's SSH and arrive
byte-exact in ``/var/tmp/smartos-lab/<uuid>/``, and the step after the copy is
``imgadm install -q -m <manifest> -f <file>`` with those paths.  The test guest has no
imgadm, so ``imgadm get`` fails there (which is why the copy happens) and the install
fails with "not found": the test asserts that CommandFailed and its command line.  What
imgadm does with the files can only be seen on SmartOS.  The "image" is random test bytes
described by a manifest in the IMGAPI format (the sdc-imgapi docs' GetImage example).
"""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from smartos_lab.errors import CommandFailed, TransportError
from smartos_lab.images.zone_images import ZoneImageCache
from tests.guest.strategy import booted_test_guest_lab
from tests.unit._parser_fixtures import fixture

pytestmark = pytest.mark.guest

NAME = f"zoneimg-{os.getpid()}"
UUID = "01b2c898-945f-11e1-a523-af1afbe22822"
FOLDER = f"/var/tmp/smartos-lab/{UUID}"
DATA = os.urandom(3 << 20)          # bigger than the console copy limit: must go over SSH


@pytest.fixture(scope="module")
def lab():
    with booted_test_guest_lab(NAME) as lab:
        yield lab


@pytest.fixture
def cached(tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTOS_LAB_ZONE_IMAGES", str(tmp_path / "zone-images"))
    manifest = json.loads(fixture("imgapi/get_image_smartos_1.6.3.txt"))
    manifest["files"][0].update(sha1=hashlib.sha1(DATA).hexdigest(), size=len(DATA),
                                compression="gzip")
    (tmp_path / "manifest.json").write_text(json.dumps(manifest, indent=2))
    (tmp_path / "file.gz").write_bytes(DATA)
    return ZoneImageCache().add(tmp_path / "manifest.json", tmp_path / "file.gz")


def test_manifest_and_file_arrive_byte_exact_and_imgadm_install_is_run_on_them(lab, cached, tmp_path):
    lab.sh(f"rm -rf {FOLDER}")
    with pytest.raises(CommandFailed) as err:
        lab.install_zone_image(UUID, fetch=False)
    result = err.value.result
    assert result.command == f"imgadm install -q -m {FOLDER}/manifest.json -f {FOLDER}/{UUID}.zfs.gz"
    assert result.exit_status == 127                   # the test guest has no imgadm
    assert lab.check(f"ls -A {FOLDER}").stdout.split() == [f"{UUID}.zfs.gz", "manifest.json"]
    lab.get(f"{FOLDER}/{UUID}.zfs.gz", tmp_path / "back.gz")
    lab.get(f"{FOLDER}/manifest.json", tmp_path / "back.json")
    assert (tmp_path / "back.gz").read_bytes() == DATA
    assert (tmp_path / "back.json").read_bytes() == cached.manifest_path.read_bytes()


def test_without_ssh_the_big_file_is_refused_before_anything_is_copied(lab, cached):
    lab.sh(f"rm -rf {FOLDER}")
    ssh, lab.shell.ssh = lab.shell.ssh, None     # a lab whose SSH is not enabled
    try:
        with pytest.raises(TransportError, match="too big for the serial console"):
            lab.install_zone_image(UUID, fetch=False)
        assert lab.sh(f"test -e {FOLDER}").exit_status == 1
    finally:
        lab.shell.ssh = ssh
    assert lab.sh("echo back").transport == "ssh"
