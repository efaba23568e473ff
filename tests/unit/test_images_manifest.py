"""vm-images/smartos.json documents the mirror layout; the code must agree with it."""
import json
import re
from pathlib import Path

from smartos_lab.images import mirror

MANIFEST = json.loads((Path(__file__).parents[2] / "vm-images" / "smartos.json").read_text())
TS = MANIFEST["release_stamp_example"]


def test_manifest_and_code_agree_on_the_mirror_root_and_env():
    assert MANIFEST["mirror_root"] == mirror.DEFAULT_ROOT
    assert MANIFEST["mirror_env"] == mirror.MIRROR_ENV


def test_manifest_and_code_agree_on_the_stamp_and_file_names():
    assert MANIFEST["release_stamp_regex"] == mirror.TS_PATTERN
    assert re.fullmatch(mirror.TS_PATTERN, TS)
    assert MANIFEST["files"]["usb"].replace("<TS>", TS) == mirror.usb_name(TS)
    assert MANIFEST["files"]["iso"].replace("<TS>", TS) == mirror.iso_name(TS)
    guess = re.search(r"platform-release-<YYYYMMDD>-<TS>\.tgz", MANIFEST["files"]["platform"]).group(0)
    assert guess.replace("<YYYYMMDD>", TS[:8]).replace("<TS>", TS) == mirror.platform_name_guess(TS)


def test_manifest_and_code_agree_on_checksum_files_in_order_of_preference():
    assert [(c["algo"], c["file"]) for c in MANIFEST["checksum_files"]] == list(mirror.SUM_FILES)
