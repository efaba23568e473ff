"""The first-boot watcher and the prompt driver, run against a *transcript replayer*.

The replayer (tests/transcripts/replay.py) is a test substrate, not SmartOS:
on a real pty it prints text copied from SmartOS's setup script and kernel
(each transcript names its sources) and checks every answer typed at it.
The lab's code talks to it through the real Console, as it would to QEMU's
serial port.  No SmartOS image is involved.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smartos_lab.errors import ConsoleClosed, GuestPanic, SetupError
from smartos_lab.lab import LabConfig, LabDir
from smartos_lab.machine.accel import AccelChoice
from smartos_lab.machine.console import Console
from smartos_lab.machine.guest import BootResult
from smartos_lab.smartos.answers import SetupAnswers, write_secret
from smartos_lab.smartos.boot import BootTimeouts
from smartos_lab.smartos.bringup import SmartOSStrategy, state_of
from smartos_lab.smartos.login import login_root
from smartos_lab.smartos.milestones import FirstBootWatcher
from smartos_lab.smartos.profile import SMARTOS_PROFILE
from smartos_lab.smartos.prompts import PromptDriver
from smartos_lab.steps import StepKind, Steps

TRANSCRIPTS = Path(__file__).resolve().parent.parent / "transcripts"
REPLAYER = TRANSCRIPTS / "replay.py"
FAST = BootTimeouts(idle=3.0, first_boot=30.0, boot=30.0, login=10.0, answer_delay=0.05)
SETUP_STEPS = ["pool", "dump_zvol", "zones_config", "config_dataset", "cores_dataset",
               "opt_dataset", "var_dataset", "swap_zvol"]


class Replayer:
    """One replayer process on a fresh pty, seen through a Console."""

    def __init__(self, name: str, tmp_path: Path):
        self.log = tmp_path / "serial.log"
        self.report = tmp_path / f"{name}.report.json"
        master, slave = os.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, str(REPLAYER), str(TRANSCRIPTS / f"{name}.transcript"),
             "--log", str(self.log), "--report", str(self.report)],
            stdin=slave, stdout=slave, stderr=slave, close_fds=True, start_new_session=True)
        os.close(slave)
        self.console = Console.from_fd(master, name=name, log_path=self.log, profile=SMARTOS_PROFILE)

    def finish(self, timeout: float = 10.0) -> int:
        """Wait for the replayer to end; its exit status (3: a wrong answer, see report)."""
        return self.proc.wait(timeout)

    def mismatch(self) -> dict | None:
        return json.loads(self.report.read_text()) if self.report.exists() else None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.console.close()


@pytest.fixture
def replay(tmp_path):
    started: list[Replayer] = []

    def start(name: str) -> Replayer:
        r = Replayer(name, tmp_path)
        started.append(r)
        return r
    yield start
    for r in started:
        r.close()


def answers() -> SetupAnswers:
    return SetupAnswers(root_password="s3cret-Passw0rd", hostname="lab1")


def test_unattended_first_boot_reports_every_setup_step_then_the_reboot(replay):
    seen = []
    watcher = FirstBootWatcher(timeouts=FAST, on_milestone=seen.append)
    r = replay("unattended_first_boot")
    outcome = watcher.watch(r.console)
    assert outcome.reached == "reboot"
    assert outcome.setup_ran
    assert outcome.platform_version == "joyent_20250724T001011Z"
    names = [m.name for m in seen]
    assert names[:3] == ["kernel", "no_usb_key", "setup:Triton"]
    assert [n for n in names if n in SETUP_STEPS] == SETUP_STEPS
    assert names[-2:] == ["rebooting", "qemu_exited"]
    assert "setup:Verify Configuration" in names
    times = [m.seen_at for m in seen]
    assert times == sorted(times)
    assert r.finish() == 0


def test_second_boot_goes_straight_to_login_and_continues_the_same_watch(replay):
    watcher = FirstBootWatcher(timeouts=FAST)
    first = watcher.watch(replay("unattended_first_boot").console)
    assert first.reached == "reboot"
    second = watcher.watch(replay("second_boot").console)
    assert second.reached == "login"
    names = [m.name for m in second.milestones]
    assert names.count("kernel") == 2
    after_reboot = names[names.index("qemu_exited") + 1:]
    assert after_reboot == ["kernel", "login"]


def test_a_later_boot_alone_reaches_login_without_setup(replay):
    outcome = FirstBootWatcher(timeouts=FAST).watch(replay("second_boot").console)
    assert outcome.reached == "login"
    assert not outcome.setup_ran


def test_prompt_driver_answers_every_question_of_an_interactive_setup(replay):
    answered = []
    driver = PromptDriver(answers(), answer_delay=0.05,
                          on_answer=lambda p, shown: answered.append((p.key, shown)))
    watcher = FirstBootWatcher(timeouts=FAST, driver=driver)
    r = replay("interactive_first_boot")
    outcome = watcher.watch(r.console)
    assert r.finish() == 0, r.mismatch()
    assert outcome.reached == "reboot"
    assert [k for k, _ in answered] == [
        "continue", "continue", "admin_ip", "headnode_default_gateway", "dns_resolver1",
        "dns_resolver2", "dns_search", "ntp_host", "continue", "zpool_confirm_layout", "bootpool",
        "install_pkgsrc", "root_password", "confirm_password", "hostname", "final_confirm",
        "reboot"]
    assert dict(answered)["root_password"] == "****"
    assert "ntp_failure" in watcher.names
    assert "s3cret-Passw0rd" not in r.console.tail(100000)      # typed with echo off


def test_a_wrong_answer_is_caught_by_the_replayer(replay):
    wrong = SetupAnswers(root_password="s3cret-Passw0rd", hostname="lab1", admin_ip="10.0.2.15",
                         admin_netmask="255.255.255.0")
    watcher = FirstBootWatcher(timeouts=FAST, driver=PromptDriver(wrong, answer_delay=0.05))
    r = replay("interactive_first_boot")
    with pytest.raises(ConsoleClosed):
        watcher.watch(r.console)
    assert r.finish() == 3
    assert r.mismatch()["got"] == "10.0.2.15"


def test_a_question_without_an_answer_stops_with_the_missing_key_and_the_screen(replay):
    r = replay("missing_admin_ip")
    with pytest.raises(SetupError) as err:
        FirstBootWatcher(timeouts=FAST).watch(r.console)
    msg = str(err.value)
    assert "admin_ip" in msg and "smartos_prompt_config.sh:1204" in msg
    assert "(admin) IP address (or dhcp): " in err.value.tail
    assert str(r.log) in msg


def test_an_unknown_prompt_stops_the_watch_showing_it(replay):
    r = replay("unknown_prompt")
    with pytest.raises(SetupError) as err:
        FirstBootWatcher(timeouts=FAST, driver=PromptDriver(answers())).watch(r.console)
    assert "does not know" in str(err.value)
    assert "Enter the VLAN ID for the admin network [none]:" in str(err.value)


def test_a_silent_console_ends_in_an_idle_timeout_naming_the_serial_log(replay):
    r = replay("silent_console")
    with pytest.raises(SetupError) as err:
        FirstBootWatcher(timeouts=FAST).watch(r.console)
    msg = str(err.value)
    assert "no console output for" in msg and "setup:Networking" in msg
    assert f"serial log: {r.log}" in msg
    assert "> Networking" in err.value.tail
    assert r.log.read_bytes().startswith(b"\rSunOS Release 5.11")


def test_setup_failure_stops_with_the_error_on_screen(replay):
    r = replay("setup_failed")
    with pytest.raises(SetupError) as err:
        FirstBootWatcher(timeouts=FAST).watch(r.console)
    assert "setup failed" in str(err.value)
    assert "ERROR: failed to create the dump zvol" in err.value.tail


def test_a_kernel_panic_raises_guest_panic(replay):
    r = replay("kernel_panic")
    with pytest.raises(GuestPanic) as err:
        FirstBootWatcher(timeouts=FAST).watch(r.console)
    assert "forced crash dump initiated at user request" in str(err.value)


def test_console_ending_before_setup_finished_is_not_taken_for_a_reboot(replay):
    r = replay("silent_console")
    r.console.expect(r"> Networking", timeout=10)
    r.proc.kill()
    with pytest.raises(ConsoleClosed):
        FirstBootWatcher(timeouts=FAST).watch(r.console)


def test_after_the_boot_root_logs_in_answering_measure_terminal_and_gets_a_shell(replay):
    r = replay("root_login")
    assert FirstBootWatcher(timeouts=FAST).watch(r.console).reached == "login"
    shell = login_root(r.console, password="s3cret-Passw0rd", timeout=20)
    result = shell.run("echo $PS1; echo hello from the substrate shell")
    assert result.ok
    assert result.stdout.splitlines()[-1] == "hello from the substrate shell"
    assert r.mismatch() is None                 # user, password and terminal size reply were right
    assert "s3cret-Passw0rd" not in r.console.tail(100000)


class _Machine:
    """The two things SmartOSStrategy.boot uses of a QemuMachine (here: a replayer's console)."""

    def __init__(self, console):
        self.console = console
        self.accel = AccelChoice("tcg", "TCG: test")


def test_strategy_boot_reports_reboot_then_ready_and_marks_the_lab_set_up(replay, tmp_path):
    lab = LabDir("lab1", tmp_path / "labs")
    lab.create()
    write_secret(lab.file("root.password"), "s3cret-Passw0rd\n")
    config = LabConfig(name="lab1", hostname="lab1")
    strategy, events = SmartOSStrategy(), []
    steps = Steps("up lab1", [events.append])
    assert strategy.boot(_Machine(replay("unattended_first_boot").console), lab, config,
                         steps) is BootResult.REBOOT
    assert not config.set_up
    assert strategy.boot(_Machine(replay("second_boot").console), lab, config,
                         steps) is BootResult.READY
    assert config.set_up
    assert state_of(config).platform_version == "joyent_20250724T001011Z"
    started = [e for e in events if e.kind is StepKind.STARTED]
    assert any(e.message.startswith("setup: creating the zones pool") for e in started)
    assert started[-1].step == "login" and started[-1].message.startswith("login prompt")
