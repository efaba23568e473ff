"""SmartOSStrategy: how :class:`~smartos_lab.lab.Lab` brings SmartOS from an image to a root shell.

1. ``prepare``: find the image (a local file, or a release from the image
   cache), pick the boot path (USB image: loader boot of a per-lab copy;
   platform tarball, build folder or ISO: direct boot of its unix and
   boot_archive), create the zones disk(s),
   the root password (0600) and ``answers.json`` (0600).
2. ``spec``: the :class:`MachineSpec` for the next boot.
3. ``boot``: watch the console (:class:`FirstBootWatcher`) with a
   :class:`PromptDriver` as fallback; ``"reboot"`` when setup ends QEMU
   (``-no-reboot``), and the lab launches the machine again; ``"ready"`` at
   the login prompt.
4. ``login``: root on the console, then SSH.
"""
from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError
from ..machine.disks import create_blank, create_overlay
from .answers import SetupAnswers, generate_root_password, read_secret, write_secret
from .boot import BootTimeouts, direct_boot_spec, prepare_usb_image, usb_boot_spec, zones_disk_size
from .milestones import FirstBootWatcher, Milestone
from .profile import smartos_console
from .prompts import PromptDriver

Progress = Callable[[str], None]

PASSWORD_FILE = "root.password"
ANSWERS_FILE = "answers.json"
SSH_KEY_FILE = "ssh_key"   # LabDir.ssh_key: smartos-lab ssh uses it
USB_COPY = "usb.img"
USB_OVERLAY = "usb.qcow2"
PLATFORM_DIR = "pi"
_KIND_TEXT = {"iso": "an ISO", "platform": "a platform tarball", "platform-dir": "a platform folder"}

_STEP_TEXT = {
    "loader_menu": "loader menu",
    "kernel": "kernel started",
    "no_usb_key": "no USB key (expected for a direct boot)",
    "pool": "setup: creating the zones pool",
    "pool_exists": "setup: zones pool already exists",
    "dump_zvol": "setup: dump zvol",
    "zones_config": "setup: zones config dataset",
    "config_dataset": "setup: config dataset",
    "cores_dataset": "setup: cores dataset",
    "opt_dataset": "setup: opt dataset",
    "var_dataset": "setup: copying /var (slow under TCG)",
    "swap_zvol": "setup: swap zvol",
    "ntp_failure": "setup: NTP check failed (no network)",
    "setup_complete": "setup complete",
    "rebooting": "guest rebooting",
    "qemu_exited": "QEMU stopped on the reboot",
    "login": "login prompt",
}


def describe(m: Milestone) -> str:
    """One progress line for a milestone."""
    if m.name.startswith("setup:"):
        text = "setup: " + m.name.split(":", 1)[1]
    elif m.name.startswith("answered:"):
        text = f"typed answer for {m.name.split(':', 1)[1]}: {m.text}"
    else:
        text = _STEP_TEXT.get(m.name, m.name)
    version = re.search(r"Version (\S+)", m.text) if m.name == "kernel" else None
    if version:
        text += f" ({version.group(1)})"
    return f"{text}  [{m.seen_at:.0f} s]"


def timeouts_for(machine) -> BootTimeouts:
    """Timeouts for ``machine``'s accelerator, times ``$SMARTOS_LAB_TIMEOUT_SCALE`` if set."""
    raw = os.environ.get("SMARTOS_LAB_TIMEOUT_SCALE", "1")
    try:
        scale = float(raw)
    except ValueError:
        raise ConfigError(f"SMARTOS_LAB_TIMEOUT_SCALE={raw!r} is not a number") from None
    return BootTimeouts.for_accel(machine.accel.accel, scale)


def hostname_for(name: str) -> str:
    """A valid host name from a lab name (``my_lab.1`` -> ``my-lab-1``)."""
    host = re.sub(r"[^A-Za-z0-9-]+", "-", name).strip("-")[:63].strip("-")
    return host or "smartos"


class SmartOSStrategy:
    """The default :class:`~smartos_lab.lab.Strategy`."""

    name = "smartos"

    def __init__(self) -> None:
        self._watcher: FirstBootWatcher | None = None

    # -- 1. host side ---------------------------------------------------------
    def prepare(self, lab, config, progress: Progress) -> None:
        lab.create()
        password = self._password(lab)
        answers = self._answers(config, password)
        write_secret(lab.file(ANSWERS_FILE), answers.to_json())
        boot = self._boot_path(config)
        if boot == "usb":
            image = self._usb_source(config, progress)
            copy, overlay = lab.file(USB_COPY), lab.file(USB_OVERLAY)
            if config.extra.get("usb_source") not in (None, str(image)):
                copy.unlink(missing_ok=True)        # a different image: start from a fresh copy
                overlay.unlink(missing_ok=True)
            if not (copy.exists() and overlay.exists()):
                progress(f"preparing the lab's copy of {image.name}")
                overlay.unlink(missing_ok=True)     # an overlay must never outlive its base's edit
                prepare_usb_image(image, copy, answers_json=answers.to_json())
                # The guest writes to a qcow2 overlay over the edited copy, so checkpoints
                # (qcow2 internal snapshots) cover the USB disk too.
                create_overlay(copy, overlay)
            config.extra["usb_source"] = str(image)
        else:
            pf = self._platform(lab, config, progress)
            config.extra["unix"], config.extra["boot_archive"] = str(pf.unix), str(pf.boot_archive)
            if pf.version:
                config.release = config.release or pf.version
        config.extra["boot_path"] = boot          # config.boot keeps what the user asked for
        size = config.disk_size or zones_disk_size(config.memory_mib)
        for i in range(config.disk_count):
            create_blank(lab.disks_dir / f"zones{i}.qcow2", size, exist_ok=True)

    def _password(self, lab) -> str:
        path = lab.file(PASSWORD_FILE)
        if not path.exists():
            write_secret(path, generate_root_password() + "\n")
        return read_secret(path)

    @staticmethod
    def _answers(config, password: str) -> SetupAnswers:
        return SetupAnswers(root_password=password,
                            hostname=config.hostname or hostname_for(config.name))

    @staticmethod
    def _boot_path(config) -> str:
        if config.boot not in ("auto", "usb", "direct"):
            raise ConfigError(f"boot {config.boot!r}: use 'auto', 'usb' or 'direct'")
        if not config.image:
            # releases: by default the USB image, which boots the way SmartOS expects
            return "usb" if config.boot == "auto" else config.boot
        from ..images.local import identify
        kind = identify(config.image).kind
        if config.boot == "usb" and kind != "usb":
            why = (" (the lab edits the USB image's loader.conf to put the console on the serial "
                   "port; an ISO's cannot be edited)") if kind == "iso" else ""
            raise ConfigError(f"{config.image} is {_KIND_TEXT[kind]}: boot='usb' needs a USB image"
                              f"{why}; boot='auto' or 'direct' boots its unix and boot_archive "
                              "directly")
        if config.boot == "auto":
            return "usb" if kind == "usb" else "direct"
        return config.boot

    @staticmethod
    def _usb_source(config, progress: Progress) -> Path:
        if config.image:
            return Path(config.image)
        from ..images.cache import ImageCache
        progress(f"getting the SmartOS USB image ({config.release or 'latest'})")
        cached = ImageCache().fetch(config.release or "latest", "usb")
        config.release = cached.release
        return cached.path

    @staticmethod
    def _platform(lab, config, progress: Progress):
        if not config.image:
            from ..images.cache import ImageCache
            progress(f"getting the SmartOS platform ({config.release or 'latest'})")
            return ImageCache().platform(config.release or "latest")
        from ..images.platform import extract_platform, platform_files
        root = lab.file(PLATFORM_DIR)
        if config.extra.get("platform_source") == config.image and (root / "platform").exists():
            return platform_files(root)
        shutil.rmtree(root, ignore_errors=True)         # a link to a build folder goes, not its target
        progress(f"extracting unix and boot_archive from {config.image}")
        pf = extract_platform(config.image, root)
        config.extra["platform_source"] = config.image
        return pf

    # -- 2. machine --------------------------------------------------------------
    def spec(self, lab, config, accel: str):
        disks = [lab.disks_dir / f"zones{i}.qcow2" for i in range(config.disk_count)]
        if config.extra.get("boot_path", config.boot) == "usb":
            if config.kernel_args:
                raise ConfigError("kernel_args need a direct boot (boot='direct', or a platform "
                                  "tarball, build folder or ISO); the USB image boots via its loader")
            return usb_boot_spec(config.name, usb_image=lab.file(USB_OVERLAY), zones_disks=disks,
                                 accel=accel, memory_mib=config.memory_mib, cpus=config.cpus)
        return direct_boot_spec(config.name, unix=Path(config.extra["unix"]),
                                boot_archive=Path(config.extra["boot_archive"]),
                                answers_file=lab.file(ANSWERS_FILE), zones_disks=disks,
                                accel=accel, memory_mib=config.memory_mib, cpus=config.cpus,
                                flags=config.kernel_args)

    def console_factory(self):
        return smartos_console

    # -- 3. boot -------------------------------------------------------------------
    def boot(self, machine, lab, config, progress: Progress) -> str:
        timeouts = timeouts_for(machine)
        if self._watcher is None:
            answers = self._answers(config, read_secret(lab.file(PASSWORD_FILE)))
            driver = PromptDriver(answers, answer_delay=timeouts.answer_delay)
            self._watcher = FirstBootWatcher(timeouts=timeouts, driver=driver,
                                             on_milestone=lambda m: progress(describe(m)))
        cap = timeouts.boot if config.set_up else timeouts.first_boot
        outcome = self._watcher.watch(machine.console, timeout=cap)
        if outcome.platform_version:
            config.extra["platform_version"] = outcome.platform_version
        if outcome.reached == "login":
            config.set_up = True            # no login prompt appears before setup has finished
            return "ready"
        return "reboot"

    @property
    def milestones(self) -> list[Milestone]:
        return list(self._watcher.milestones) if self._watcher else []

    # -- 4. login -------------------------------------------------------------------
    def login(self, machine, lab, config, progress: Progress):
        from .login import open_guest_shell
        timeouts = timeouts_for(machine)
        return open_guest_shell(machine, password=read_secret(lab.file(PASSWORD_FILE)),
                                key_path=lab.file(SSH_KEY_FILE), timeout=timeouts.login,
                                progress=progress)
