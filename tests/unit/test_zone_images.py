"""Zone images on the host (smartos_lab/images/zone_images.py): IMGAPI manifests, file
names, the cache's add/verify/list, the CLI, and Lab.install_zone_image's steps.

Manifests are the real examples from the sdc-imgapi docs (tests/fixtures/imgapi/).  Image
*files* here are random test bytes described by a manifest in the same format: they are
test data, not SmartOS images.  Nothing here touches the network (downloads:
tests/integration/test_zone_images_download.py).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from smartos_lab.cli import main
from smartos_lab.errors import ConfigError, ImageError, TransportError
from smartos_lab.images.zone_images import (
    DEFAULT_SOURCE,
    OFFLINE_HINT,
    ZoneImageCache,
    image_file_name,
    parse_manifest,
    validate_uuid,
)
from smartos_lab.lab import Lab, LabConfig, LabDir
from smartos_lab.machine.result import CommandResult
from smartos_lab.machine.spec import MachineSpec
from tests.unit._parser_fixtures import fixture

GET_IMAGE = "imgapi/get_image_smartos_1.6.3.txt"
ASSETS = "imgapi/add_file_from_url_assets.txt"
UUID = "01b2c898-945f-11e1-a523-af1afbe22822"        # the image of GET_IMAGE
OTHER = "2d74d0fb-8402-4e10-a145-86864b14bca7"       # the image of ASSETS


# --- manifests ----------------------------------------------------------------------
def test_a_real_getimage_manifest_gives_identity_and_file_facts():
    m = parse_manifest(fixture(GET_IMAGE))
    assert (m.uuid, m.name, m.version, m.os, m.type) == (UUID, "smartos", "1.6.3", "smartos",
                                                        "zone-dataset")
    assert (m.sha1, m.size, m.compression) == ("97f20b32c2016782257176fb58a35e5044f05840",
                                               46271847, "bzip2")
    assert m.origin is None
    assert m.file_name == f"{UUID}.zfs.bz2"


def test_an_incremental_gzip_manifest_keeps_its_origin():
    m = parse_manifest(fixture(ASSETS))
    assert (m.uuid, m.compression, m.size) == (OTHER, "gzip", 69223039)
    assert m.origin == "04a48d7d-6bb5-4e83-8c3b-e60a99e0f48f"
    assert m.file_name == f"{OTHER}.zfs.gz"


@pytest.mark.parametrize("image_type, compression, name", [
    ("zone-dataset", "gzip", f"{UUID}.zfs.gz"),
    ("zone-dataset", "bzip2", f"{UUID}.zfs.bz2"),
    ("lx-dataset", "xz", f"{UUID}.zfs.xz"),
    ("zone-dataset", "none", f"{UUID}.zfs"),
    ("zvol", "gzip", f"{UUID}.zvol.gz"),           # imgadm create names zvol images .zvol
])
def test_file_names_follow_imgadm_by_type_and_compression(image_type, compression, name):
    assert image_file_name(UUID, image_type, compression) == name


def _manifest(**changes) -> dict:
    data = json.loads(fixture(GET_IMAGE))
    for key, value in changes.items():
        if key.startswith("file_"):
            data["files"][0][key[5:]] = value
        elif value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


@pytest.mark.parametrize("changes, says", [
    ({"files": None}, "lists no image file"),
    ({"files": []}, "lists no image file"),
    ({"file_sha1": "97f20b32"}, "files[0].sha1"),
    ({"file_size": "46271847"}, "files[0].size"),
    ({"file_compression": "lzma"}, "files[0].compression"),
    ({"uuid": "not-a-uuid"}, "not a UUID"),
    ({"name": None}, "name must be a string"),
])
def test_a_manifest_without_what_install_needs_is_refused_naming_the_field(changes, says):
    with pytest.raises(ImageError, match=says.replace("[", r"\[").replace("]", r"\]")):
        parse_manifest(json.dumps(_manifest(**changes)), "m.json")


def test_text_that_is_not_json_is_not_a_manifest():
    with pytest.raises(ImageError, match="m.json is not an image manifest: not JSON"):
        parse_manifest("<html>404</html>", "m.json")


@pytest.mark.parametrize("bad", ["", "01B2C898-945F-11E1-A523-AF1AFBE22822", UUID + "x",
                                 "../" + UUID, None])
def test_image_uuids_are_validated(bad):
    with pytest.raises(ConfigError, match="not an image UUID"):
        validate_uuid(bad)


# --- where the cache is ------------------------------------------------------------
def test_root_and_source_default_to_the_cache_dir_and_images_smartos_org(tmp_path, monkeypatch):
    monkeypatch.delenv("SMARTOS_LAB_ZONE_IMAGES", raising=False)
    monkeypatch.delenv("SMARTOS_LAB_IMGAPI", raising=False)
    monkeypatch.setenv("SMARTOS_LAB_CACHE", str(tmp_path))
    cache = ZoneImageCache()
    assert cache.root == tmp_path / "zone-images"
    assert cache.source == DEFAULT_SOURCE == "https://images.smartos.org"


def test_environment_variables_point_at_a_stick_and_another_server(tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTOS_LAB_ZONE_IMAGES", str(tmp_path / "stick"))
    monkeypatch.setenv("SMARTOS_LAB_IMGAPI", "http://imgapi.example/")
    cache = ZoneImageCache()
    assert (cache.root, cache.source) == (tmp_path / "stick", "http://imgapi.example")


# --- add -------------------------------------------------------------------------------
DATA = os.urandom(300_000)          # test bytes standing in for an image file


@pytest.fixture
def pair(tmp_path):
    """A manifest in the documented format whose files[0] describes DATA, and DATA as a file."""
    src = tmp_path / "from-stick"
    src.mkdir()
    manifest = src / "manifest.json"
    manifest.write_text(json.dumps(_manifest(file_sha1=hashlib.sha1(DATA).hexdigest(),
                                             file_size=len(DATA), file_compression="gzip")))
    image = src / "file.gz"
    image.write_bytes(DATA)
    return manifest, image


def _write_manifest(path: Path, **changes) -> Path:
    path.write_text(json.dumps(_manifest(**changes)))
    return path


def test_add_copies_a_verified_pair_into_the_cache_and_leaves_the_originals(tmp_path, pair):
    manifest, image = pair
    cache = ZoneImageCache(tmp_path / "cache")
    got = cache.add(manifest, image)
    assert (got.uuid, got.name, got.version, got.os, got.type) == (UUID, "smartos", "1.6.3",
                                                                  "smartos", "zone-dataset")
    assert got.file_path == tmp_path / "cache" / UUID / f"{UUID}.zfs.gz"
    assert got.manifest_path == tmp_path / "cache" / UUID / "manifest.json"
    assert got.file_path.read_bytes() == DATA and got.size == len(DATA) and got.verified
    assert got.manifest_path.read_bytes() == manifest.read_bytes()
    assert image.read_bytes() == DATA and manifest.exists()          # copied, not moved
    assert cache.list() == [got] and cache.get(UUID) == got
    assert not list((tmp_path / "cache" / ".incoming").glob(f"{UUID}.add-*"))


def test_add_refuses_a_file_whose_sha1_differs_and_adds_nothing(tmp_path, pair):
    manifest, image = pair
    image.write_bytes(b"X" + DATA[1:])
    cache = ZoneImageCache(tmp_path / "cache")
    with pytest.raises(ImageError, match="has sha1 .* nothing was added"):
        cache.add(manifest, image)
    assert cache.get(UUID) is None and cache.list() == []
    assert not list((tmp_path / "cache" / ".incoming").glob(f"{UUID}.add-*"))


def test_add_refuses_a_file_of_the_wrong_size_before_copying(tmp_path, pair):
    manifest, image = pair
    image.write_bytes(DATA[:-1])
    cache = ZoneImageCache(tmp_path / "cache")
    with pytest.raises(ImageError, match=f"is {len(DATA) - 1} bytes.*says image {UUID} is {len(DATA)}"):
        cache.add(manifest, image)
    assert cache.get(UUID) is None


def test_add_refuses_a_file_named_for_another_image(tmp_path, pair):
    manifest, image = pair
    renamed = image.rename(image.with_name(f"{OTHER}.zfs.gz"))
    with pytest.raises(ImageError, match=f"named for image {OTHER}.*manifest of {UUID}: not a pair"):
        ZoneImageCache(tmp_path / "cache").add(manifest, renamed)


def test_add_refuses_a_manifest_without_a_valid_uuid(tmp_path, pair):
    manifest, image = pair
    _write_manifest(manifest, uuid="01b2c898", file_sha1=hashlib.sha1(DATA).hexdigest(),
                    file_size=len(DATA))
    with pytest.raises(ImageError, match="not a UUID"):
        ZoneImageCache(tmp_path / "cache").add(manifest, image)


def test_adding_a_cached_image_again_returns_the_entry(tmp_path, pair):
    cache = ZoneImageCache(tmp_path / "cache")
    first = cache.add(*pair)
    assert cache.add(*pair) == first


# --- folders made by hand, verify, broken folders ------------------------------------
def _hand_made(root: Path, data: bytes = DATA, name: str = "file.gz") -> Path:
    folder = root / UUID
    folder.mkdir(parents=True)
    _write_manifest(folder / "manifest.json", file_sha1=hashlib.sha1(DATA).hexdigest(),
                    file_size=len(DATA), file_compression="gzip")
    (folder / name).write_bytes(data)
    return folder


def test_a_folder_made_by_hand_is_listed_unverified_until_verify_checks_it(tmp_path):
    folder = _hand_made(tmp_path)
    cache = ZoneImageCache(tmp_path)
    [image] = cache.list()
    assert image.file_path == folder / "file.gz" and not image.verified
    assert cache.verify(UUID).verified
    assert cache.get(UUID).verified                        # recorded in <uuid>/.verified


def test_verify_reports_a_damaged_file_and_deletes_nothing(tmp_path):
    folder = _hand_made(tmp_path, data=b"Y" + DATA[1:])
    with pytest.raises(ImageError, match="damaged or not this image's file"):
        ZoneImageCache(tmp_path).verify(UUID)
    assert (folder / "file.gz").exists()


def test_a_changed_file_is_no_longer_counted_as_verified(tmp_path, pair):
    cache = ZoneImageCache(tmp_path / "cache")
    image = cache.add(*pair)
    image.file_path.write_bytes(b"Z" + DATA[1:])
    os.utime(image.file_path, ns=(1, 1))
    assert not cache.get(UUID).verified


def test_broken_folders_are_left_out_of_the_list_and_get_says_why(tmp_path):
    (tmp_path / UUID).mkdir()
    _write_manifest(tmp_path / UUID / "manifest.json")                      # no image file
    (tmp_path / OTHER).mkdir()
    _write_manifest(tmp_path / OTHER / "manifest.json")                     # manifest of UUID
    (tmp_path / OTHER / "x.gz").write_bytes(b"x")
    (tmp_path / "notes").mkdir()
    cache = ZoneImageCache(tmp_path)
    assert cache.list() == []
    with pytest.raises(ImageError, match="has a manifest but no image file"):
        cache.get(UUID)
    with pytest.raises(ImageError, match=f"manifest of image {UUID}, but its folder is named {OTHER}"):
        cache.get(OTHER)


# --- the command line ----------------------------------------------------------------------
def test_cli_adds_and_lists_zone_images(tmp_path, pair, monkeypatch, capsys):
    monkeypatch.setenv("SMARTOS_LAB_ZONE_IMAGES", str(tmp_path / "cache"))
    assert main(["images", "zone"]) == 0
    assert "no zone images in" in capsys.readouterr().out
    assert main(["images", "zone", "add", str(pair[0]), str(pair[1])]) == 0
    assert f"added zone image {UUID} (smartos 1.6.3)" in capsys.readouterr().out
    assert main(["images", "zone", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["UUID", "NAME", "VERSION", "OS", "TYPE", "SIZE", "VERIFIED"]
    assert out[1].split() == [UUID, "smartos", "1.6.3", "smartos", "zone-dataset", "0.3", "MiB", "yes"]


def test_cli_fetch_refuses_a_bad_uuid_without_touching_the_network(capsys):
    assert main(["images", "zone", "fetch", "base-64-lts"]) == 1
    assert "not an image UUID" in capsys.readouterr().err


# --- Lab.install_zone_image: the steps, over a recording stand-in shell ---------------------
class StandInShell:
    """Records commands and copies like a GuestShell would; answers by command prefix."""

    def __init__(self, transport: str = "ssh", replies: dict[str, int] | None = None):
        self.transport = transport
        self.replies = replies or {}
        self.commands: list[str] = []
        self.puts: list[tuple[Path, str, float]] = []

    def ssh_usable(self) -> bool:
        return self.transport == "ssh"

    def run(self, command: str, timeout: float = 60.0, *, via=None, on_output=None) -> CommandResult:
        self.commands.append(command)
        status = next((s for p, s in self.replies.items() if command.startswith(p)), 0)
        return CommandResult(command, status, "")

    def put(self, local, remote: str, mode=None, *, timeout: float = 300.0) -> None:
        self.commands.append(f"<put {remote}>")
        self.puts.append((Path(local), remote, timeout))


class _QuietConsole:
    """The serial console of a lab that is not in kmdb (lab.sh asks it first)."""

    crash = None

    def tail(self, chars: int = 4000) -> str:
        return "[root@zi ~]# "

    def mark(self) -> int:
        return 0

    def text_since(self, mark: int) -> str:
        return ""


def _lab(tmp_path, shell) -> Lab:
    # no gdb stub, not in kmdb: commands may run
    machine = SimpleNamespace(spec=MachineSpec(name="zi"), console=_QuietConsole())
    return Lab(lab_dir=LabDir("zi", tmp_path / "labs"), config=LabConfig(name="zi"), machine=machine,
               shell=shell, strategy=None, progress=False)


@pytest.fixture
def cached(tmp_path, pair, monkeypatch):
    monkeypatch.setenv("SMARTOS_LAB_ZONE_IMAGES", str(tmp_path / "cache"))
    monkeypatch.setenv("SMARTOS_LAB_IMGAPI", "http://127.0.0.1:9/")       # never asked
    return ZoneImageCache().add(*pair)


def test_install_copies_into_var_tmp_then_runs_imgadm_install_and_cleans_up(tmp_path, cached):
    shell = StandInShell(replies={"imgadm get": 1})
    _lab(tmp_path, shell).install_zone_image(UUID)
    folder = f"/var/tmp/smartos-lab/{UUID}"
    assert shell.commands == [
        f"imgadm get {UUID}",
        f"mkdir -p {folder}",
        f"<put {folder}/manifest.json>",
        f"<put {folder}/{UUID}.zfs.gz>",
        f"imgadm install -q -m {folder}/manifest.json -f {folder}/{UUID}.zfs.gz",
        f"rm -rf {folder}",
    ]
    assert [p[0] for p in shell.puts] == [cached.manifest_path, cached.file_path]


def test_install_passes_the_pool_to_imgadm(tmp_path, cached):
    shell = StandInShell(replies={"imgadm get": 1})
    _lab(tmp_path, shell).install_zone_image(UUID, pool="data")
    assert shell.commands[0] == f"imgadm get -P data {UUID}"
    assert shell.commands[4].startswith("imgadm install -q -P data -m ")


def test_an_installed_image_is_neither_copied_nor_installed_again(tmp_path, cached):
    shell = StandInShell(replies={"imgadm get": 0})
    result = _lab(tmp_path, shell).install_zone_image(UUID)
    assert shell.commands == [f"imgadm get {UUID}"] and result.command == f"imgadm get {UUID}"


def test_a_failed_install_keeps_the_copies_in_the_lab(tmp_path, cached):
    from smartos_lab.errors import CommandFailed
    shell = StandInShell(replies={"imgadm get": 1, "imgadm install": 1})
    with pytest.raises(CommandFailed):
        _lab(tmp_path, shell).install_zone_image(UUID)
    assert not any(c.startswith("rm ") for c in shell.commands)


def test_without_ssh_a_big_image_is_refused_before_anything_is_copied(tmp_path, cached):
    shell = StandInShell(transport="console", replies={"imgadm get": 1})
    with pytest.raises(TransportError, match="too big for the serial console.*SSH .* not connected"):
        _lab(tmp_path, shell).install_zone_image(UUID)
    assert shell.puts == [] and shell.commands == [f"imgadm get {UUID}"]


def test_an_image_not_on_the_host_with_fetch_false_says_how_to_add_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTOS_LAB_ZONE_IMAGES", str(tmp_path / "empty"))
    shell = StandInShell(replies={"imgadm get": 1})
    with pytest.raises(ImageError) as err:
        _lab(tmp_path, shell).install_zone_image(UUID, fetch=False)
    assert f"zone image {UUID} is not in {tmp_path / 'empty'}" in str(err.value)
    assert OFFLINE_HINT in str(err.value) and shell.puts == []


def test_install_validates_uuid_and_pool_before_running_anything(tmp_path):
    shell = StandInShell()
    with pytest.raises(ConfigError):
        _lab(tmp_path, shell).install_zone_image("base-64-lts")
    with pytest.raises(ConfigError):
        _lab(tmp_path, shell).install_zone_image(UUID, pool="1bad")
    assert shell.commands == []


# --- LX images (lx-dataset) ---------------------------------------------------------
LX_MANIFEST = "imgapi/lx_dataset_centos6_omnios_wiki.txt"
LX_UUID = "0be607d2-8b61-11e6-bf98-03750d422a79"


def test_a_real_lx_dataset_manifest_is_a_zone_image_with_a_zfs_stream_file():
    m = parse_manifest(fixture(LX_MANIFEST))
    assert (m.uuid, m.name, m.os, m.type, m.compression) == (LX_UUID, "centos-6", "linux",
                                                             "lx-dataset", "gzip")
    assert m.file_name == f"{LX_UUID}.zfs.gz"        # an lx-dataset is a ZFS send stream too


def test_the_cache_adds_lists_and_verifies_an_lx_dataset_image(tmp_path):
    data = json.loads(fixture(LX_MANIFEST))
    data["files"][0].update(sha1=hashlib.sha1(DATA).hexdigest(), size=len(DATA))
    manifest = tmp_path / "lx.json"
    manifest.write_text(json.dumps(data))
    image = tmp_path / "centos-6.zfs.gz"
    image.write_bytes(DATA)
    cache = ZoneImageCache(tmp_path / "cache")
    got = cache.add(manifest, image)
    assert (got.type, got.os, got.verified) == ("lx-dataset", "linux", True)
    assert got.file_path.name == f"{LX_UUID}.zfs.gz"
    assert cache.list() == [got] and cache.verify(LX_UUID).verified
