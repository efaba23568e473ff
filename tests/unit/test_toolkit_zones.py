"""The Zones (vmadm/zlogin/zoneadm) and Images (imgadm) toolkits: commands built, output read."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from smartos_lab.errors import CommandFailed, ConfigError, ParseError
from smartos_lab.toolkits.images import Images
from smartos_lab.toolkits.zones import ResourceCaps, Zones

from ._parser_fixtures import fixture
from ._runners import RecordingRunner

UUID = "54f1cc77-68f1-42ab-acac-5c4f64f5d6e0"
IMAGE = "5c7d0d24-3475-11e5-8e67-27953a8b237e"


def written_payload(commands: list[str], path: str) -> str:
    """Re-run the printf commands that wrote ``path`` in a real shell; return the file text."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        local = str(Path(tmp) / "payload")
        for c in commands:
            if c.endswith(shlex.quote(path)) and c.startswith(("printf", "(umask")):
                subprocess.run(["sh", "-c", c.replace(shlex.quote(path), shlex.quote(local))],
                               check=True)
        return Path(local).read_text()


# ------------------------------------------------------------------ vmadm
def test_list_runs_vmadm_list_with_fields_and_filters_and_parses_the_table():
    out = fixture("vmadm/list_o_with_state_alias_smartos.txt")
    runner = RecordingRunner({"vmadm list": (out, 0)})
    rows = Zones(runner).list(("uuid", "type", "ram", "quota", "cpu_shares", "state", "alias"),
                              alias="zone70")
    assert runner.commands == ["vmadm list -o uuid,type,ram,quota,cpu_shares,state,alias "
                               "alias=zone70"]
    assert [(r.uuid, r.ram, r.state, r.alias, r.fields["quota"]) for r in rows] == [
        (UUID, 256, "running", "zone70", 40)]


def test_list_filter_values_with_shell_syntax_stay_one_argument():
    runner = RecordingRunner()
    Zones(runner).list(alias="~^a b; $(reboot)")
    assert shlex.split(runner.commands[-1])[-1] == "alias=~^a b; $(reboot)"


def test_list_refuses_field_names_vmadm_does_not_have():
    with pytest.raises(ConfigError):
        Zones(RecordingRunner()).list(("uuid", "ram;reboot"))
    with pytest.raises(ConfigError):
        Zones(RecordingRunner()).list(**{"alias=x": "y"})


def test_get_and_caps_read_vmadm_get_json():
    runner = RecordingRunner({"vmadm get": (fixture("vmadm/get_zone70_smartos.txt"), 0)})
    zones = Zones(runner)
    vm = zones.get(UUID)
    assert (vm.uuid, vm.alias, vm.brand) == (UUID, "zone70", "joyent")
    caps = zones.caps(UUID)
    assert caps == ResourceCaps(cpu_cap=vm.raw.get("cpu_cap"),
                                max_physical_memory=vm.max_physical_memory, quota=vm.quota)
    assert caps.max_physical_memory == 256 and caps.quota == 20
    assert runner.commands == [f"vmadm get {UUID}"] * 2


def test_lookup_passes_filters_and_returns_vm_objects():
    runner = RecordingRunner({"vmadm lookup": (fixture("vmadm/lookup_j_by_ip_smartos.txt"), 0)})
    vms = Zones(runner).lookup(**{"nics.*.ip": "10.2.121.70"})
    assert runner.commands == ["vmadm lookup -j 'nics.*.ip=10.2.121.70'"]
    assert [v.alias for v in vms] == ["zone70"]


def test_get_on_a_table_instead_of_json_is_a_parse_error():
    runner = RecordingRunner({"vmadm get": (fixture("vmadm/list_headnode_smartos.txt"), 0)})
    with pytest.raises(ParseError):
        Zones(runner).get(UUID)


@pytest.mark.parametrize("bad", ["zone70", "54f1cc77; reboot", f"{UUID}\n", f"$({UUID})"])
def test_vm_commands_take_uuids_only(bad):
    zones = Zones(RecordingRunner())
    for call in (zones.start, zones.delete, zones.get):
        with pytest.raises(ConfigError):
            call(bad)
    assert zones.runner.commands == []


def test_lifecycle_commands():
    runner = RecordingRunner()
    zones = Zones(runner)
    zones.start(UUID)
    zones.stop(UUID)
    zones.stop(UUID, force=True)
    zones.reboot(UUID, force=True)
    zones.delete(UUID)
    assert runner.commands == [f"vmadm start {UUID}", f"vmadm stop {UUID}",
                               f"vmadm stop {UUID} -F", f"vmadm reboot {UUID} -F",
                               f"vmadm delete {UUID}"]


def test_set_caps_updates_then_reads_back():
    runner = RecordingRunner({"vmadm get": (fixture("vmadm/get_zone70_smartos.txt"), 0)})
    Zones(runner).set_caps(UUID, cpu_cap=150, max_physical_memory=512, quota=40)
    assert runner.commands[0] == (f"vmadm update {UUID} cpu_cap=150 max_physical_memory=512 "
                                  "quota=40")
    with pytest.raises(ConfigError):
        Zones(runner).set_caps(UUID, quota=-1)


def test_create_writes_the_payload_validates_creates_and_cleans_up():
    runner = RecordingRunner()
    payload = {"brand": "joyent", "alias": "it's; $(reboot)", "image_uuid": IMAGE,
               "max_physical_memory": 256, "quota": 10}
    with pytest.raises(ParseError):          # the runner prints no "Successfully created" line
        Zones(runner).create(payload)
    validate = next(c for c in runner.commands if c.startswith("vmadm validate"))
    path = shlex.split(validate)[-1]
    assert shlex.split(validate) == ["vmadm", "validate", "create", "-f", path]
    assert path.startswith("/tmp/smartos-lab-payload-")
    create = next(c for c in runner.commands if c.startswith("vmadm create"))
    assert json.loads(written_payload(runner.commands, shlex.split(create)[-1])) == payload
    assert runner.commands[-1].startswith("rm -f /tmp/smartos-lab-payload-")
    assert sum(c.startswith("rm -f") for c in runner.commands) == 2      # both temp files


def test_validation_failure_raises_config_error_and_skips_create():
    runner = RecordingRunner({"vmadm validate": ("", 1)})
    with pytest.raises(ConfigError):
        Zones(runner).create({"brand": "joyent"})
    assert not any(c.startswith("vmadm create") for c in runner.commands)
    assert runner.commands[-1].startswith("rm -f")


def test_zlogin_passes_the_command_as_one_argument_and_returns_its_status():
    runner = RecordingRunner({"zlogin": ("", 3)})
    command = "cd /tmp && echo 'a b' | wc -c; exit 3"
    result = Zones(runner).zlogin(UUID, command)
    assert shlex.split(runner.commands[-1]) == ["zlogin", UUID, command]
    assert result.exit_status == 3


def test_zlogin_refuses_multi_line_commands():
    with pytest.raises(ConfigError):
        Zones(RecordingRunner()).zlogin(UUID, "echo a\necho b")


def test_zoneadm_list_parses_the_parseable_form():
    runner = RecordingRunner({"zoneadm": (fixture("zoneadm/list_pc_smartos_imgadm_source.txt")
                                          .replace("...\n", ""), 0)})
    zones = Zones(runner).zoneadm_list()
    assert runner.commands == ["zoneadm list -cp"]
    assert zones[0].name == "global" and zones[0].state == "running"
    assert "dc5cbce7-798a-4bc8-bdc5-61b4be00a22e" in [z.name for z in zones]


def test_failing_vmadm_raises_command_failed():
    with pytest.raises(CommandFailed):
        Zones(RecordingRunner({"vmadm start": ("", 1)})).start(UUID)


# ------------------------------------------------------------------ imgadm
def test_avail_runs_the_filtered_table_form_and_parses_it():
    runner = RecordingRunner({"imgadm avail": (fixture("imgadm/avail_type_pub_smartos.txt"), 0)})
    images = Images(runner).avail(name="base-64")
    assert runner.commands == ["imgadm avail name=base-64"]
    assert images[0].uuid == "163cd9fe-0c90-11e6-bd05-afd50e5961b6"
    assert {(i.name, i.type) for i in images} == {("base-64", "zone-dataset")}


def test_list_parses_the_installed_images_table():
    runner = RecordingRunner({"imgadm list": (fixture("imgadm/list_nfs_smartos.txt"), 0)})
    images = Images(runner).list()
    assert runner.commands == ["imgadm list"]
    assert [(i.uuid, i.name, i.version) for i in images] == [
        ("cf7e2f40-9276-11e2-af9a-0bad2233fb0b", "base64", "1.9.1")]


def test_manifests_ask_for_json():
    runner = RecordingRunner({"imgadm list": ("", 1)})
    with pytest.raises(CommandFailed):
        Images(runner).manifests(os="smartos")
    assert runner.commands == ["imgadm list -j os=smartos"]


def test_import_and_install_local_and_delete():
    runner = RecordingRunner()
    images = Images(runner)
    images.import_image(IMAGE, pool="zones")
    images.install_local("/var/tmp/my image.json", "/var/tmp/img;1.zfs.gz")
    images.delete(IMAGE)
    assert [shlex.split(c) for c in runner.commands] == [
        ["imgadm", "import", "-q", "-P", "zones", IMAGE],
        ["imgadm", "install", "-q", "-m", "/var/tmp/my image.json", "-f", "/var/tmp/img;1.zfs.gz"],
        ["imgadm", "delete", IMAGE]]


def test_image_commands_refuse_non_uuids_and_newline_paths():
    images = Images(RecordingRunner())
    with pytest.raises(ConfigError):
        images.import_image("base-64")
    with pytest.raises(ConfigError):
        images.install_local("/tmp/m.json\n", "/tmp/f")
