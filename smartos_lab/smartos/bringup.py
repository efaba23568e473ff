"""SmartOSStrategy: how :class:`~smartos_lab.lab.Lab` brings SmartOS from an image to a root shell.

1. ``prepare``: find the image (a local file, or a release from the image
   cache), pick the boot path (USB image: loader boot of a per-lab copy;
   platform tarball, build folder or ISO: direct boot of its unix and
   boot_archive), create the zones disk(s),
   the root password (0600) and ``answers.json`` (0600).
2. ``spec``: the :class:`MachineSpec` for the next boot.
3. ``boot``: watch the console (:class:`FirstBootWatcher`) with a
   :class:`PromptDriver` as fallback; ``BootResult.REBOOT`` when setup ends
   QEMU (``-no-reboot``), and the lab launches the machine again;
   ``BootResult.READY`` at the login prompt.
4. ``login``: root on the console, then SSH.

What the strategy learns about a lab (boot path, unpacked platform, ...) is a
:class:`SmartOSState` kept in ``LabConfig.strategy_state`` (saved in lab.json).
The image is identified once per strategy and the
:class:`~smartos_lab.images.local.LocalImage` passed down.
"""
from __future__ import annotations

import os
import re
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..images.local import LocalImage, identify
from ..machine.disks import create_blank, create_overlay
from ..machine.guest import BootResult, GuestShell
from ..steps import Steps
from .answers import SetupAnswers, generate_root_password, read_secret, write_secret
from .boot import BootTimeouts, direct_boot_spec, prepare_usb_image, usb_boot_spec, zones_disk_size
from .milestones import FirstBootWatcher, Milestone
from .profile import smartos_console
from .prompts import PromptDriver

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


@dataclass
class SmartOSState:
    """What the SmartOS strategy keeps about a lab between boots (``lab.json``)."""

    boot_path: str = ""             # "usb" | "direct": how it boots (config.boot is what was asked)
    unix: str = ""                  # direct boot: the unpacked kernel ...
    boot_archive: str = ""          # ... and boot archive
    platform_source: str = ""       # the image the platform was unpacked from
    usb_source: str = ""            # USB boot: the image the lab's copy was made from
    platform_version: str = ""      # what the kernel banner said (joyent_<TS>)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SmartOSState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: str(v) for k, v in data.items() if k in known and v is not None})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def state_of(config) -> SmartOSState:
    """``config.strategy_state`` as a :class:`SmartOSState` (converted in place from lab.json's dict)."""
    if not isinstance(config.strategy_state, SmartOSState):
        config.strategy_state = SmartOSState.from_dict(config.strategy_state or {})
    return config.strategy_state


def _milestone_to_steps(steps: Steps, m: Milestone) -> None:
    """Boot milestones are steps; typed answers are details of the current one."""
    if m.name.startswith("answered:"):
        steps.info(describe(m))
    else:
        steps.step(m.name, describe(m))


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
    """The default :class:`~smartos_lab.lab.Strategy`.  ``image``: the lab's image, already
    identified (else it is identified once, on the first :meth:`prepare`)."""

    name = "smartos"

    def __init__(self, image: LocalImage | None = None) -> None:
        self._watcher: FirstBootWatcher | None = None
        self._image = image

    # -- 1. host side ---------------------------------------------------------
    def prepare(self, lab, config, steps: Steps) -> None:
        state = state_of(config)
        image = self._identified(config)
        lab.create()
        password = self._password(lab)
        answers = self._answers(config, password)
        write_secret(lab.file(ANSWERS_FILE), answers.to_json())
        boot = self._boot_path(config, image)
        if boot == "usb":
            source = image or self._cached_usb(config, steps)
            copy, overlay = lab.file(USB_COPY), lab.file(USB_OVERLAY)
            if state.usb_source not in ("", str(source.path)):
                copy.unlink(missing_ok=True)        # a different image: start from a fresh copy
                overlay.unlink(missing_ok=True)
            if not (copy.exists() and overlay.exists()):
                steps.step("usb copy", f"preparing the lab's copy of {source.path.name}")
                overlay.unlink(missing_ok=True)     # an overlay must never outlive its base's edit
                prepare_usb_image(source.path, copy, answers_json=answers.to_json(), image=source)
                # The guest writes to a qcow2 overlay over the edited copy, so checkpoints
                # (qcow2 internal snapshots) cover the USB disk too.
                create_overlay(copy, overlay)
            state.usb_source = str(source.path)
        else:
            pf = self._platform(lab, config, image, steps)
            state.unix, state.boot_archive = str(pf.unix), str(pf.boot_archive)
            if pf.version:
                config.release = config.release or pf.version
        state.boot_path = boot                    # config.boot keeps what the user asked for
        size = config.disk_size or zones_disk_size(config.memory_mib)
        for i in range(config.disk_count):
            create_blank(lab.disks_dir / f"zones{i}.qcow2", size, exist_ok=True)

    def _identified(self, config) -> LocalImage | None:
        """The lab's image, identified once (None: a release from the image cache)."""
        if not config.image:
            return None
        if self._image is None or self._image.path.resolve() != Path(config.image).resolve():
            self._image = identify(config.image)
        return self._image

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
    def _boot_path(config, image: LocalImage | None) -> str:
        if config.boot not in ("auto", "usb", "direct"):
            raise ConfigError(f"boot {config.boot!r}: use 'auto', 'usb' or 'direct'")
        if image is None:
            # releases: by default the USB image, which boots the way SmartOS expects
            return "usb" if config.boot == "auto" else config.boot
        kind = image.kind
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
    def _cached_usb(config, steps: Steps) -> LocalImage:
        from ..images.cache import ImageCache
        steps.step("get image", f"getting the SmartOS USB image ({config.release or 'latest'})")
        cached = ImageCache().fetch(config.release or "latest", "usb")
        config.release = cached.release
        return LocalImage("usb", Path(cached.path), cached.release)

    @staticmethod
    def _platform(lab, config, image: LocalImage | None, steps: Steps):
        state = state_of(config)
        if image is None:
            from ..images.cache import ImageCache
            steps.step("get platform", f"getting the SmartOS platform ({config.release or 'latest'})")
            return ImageCache().platform(config.release or "latest")
        from ..images.platform import extract_platform, platform_files
        root = lab.file(PLATFORM_DIR)
        if state.platform_source == config.image and (root / "platform").exists():
            return platform_files(root)
        shutil.rmtree(root, ignore_errors=True)         # a link to a build folder goes, not its target
        steps.step("extract platform", f"extracting unix and boot_archive from {config.image}")
        pf = extract_platform(image, root)
        state.platform_source = config.image
        return pf

    # -- 2. machine --------------------------------------------------------------
    def spec(self, lab, config, accel: str):
        state = state_of(config)
        disks = [lab.disks_dir / f"zones{i}.qcow2" for i in range(config.disk_count)]
        if (state.boot_path or config.boot) == "usb":
            if config.kernel_args:
                raise ConfigError("kernel_args need a direct boot (boot='direct', or a platform "
                                  "tarball, build folder or ISO); the USB image boots via its loader")
            return usb_boot_spec(config.name, usb_image=lab.file(USB_OVERLAY), zones_disks=disks,
                                 accel=accel, memory_mib=config.memory_mib, cpus=config.cpus)
        return direct_boot_spec(config.name, unix=Path(state.unix),
                                boot_archive=Path(state.boot_archive),
                                answers_file=lab.file(ANSWERS_FILE), zones_disks=disks,
                                accel=accel, memory_mib=config.memory_mib, cpus=config.cpus,
                                flags=config.kernel_args)

    def console_factory(self):
        return smartos_console

    # -- 3. boot -------------------------------------------------------------------
    def boot(self, machine, lab, config, steps: Steps) -> BootResult:
        timeouts = timeouts_for(machine)
        if self._watcher is None:
            answers = self._answers(config, read_secret(lab.file(PASSWORD_FILE)))
            driver = PromptDriver(answers, answer_delay=timeouts.answer_delay)
            self._watcher = FirstBootWatcher(timeouts=timeouts, driver=driver)
        self._watcher.on_milestone = lambda m: _milestone_to_steps(steps, m)
        cap = timeouts.boot if config.set_up else timeouts.first_boot
        outcome = self._watcher.watch(machine.console, timeout=cap)
        if outcome.platform_version:
            state_of(config).platform_version = outcome.platform_version
        if outcome.reached == "login":
            config.set_up = True            # no login prompt appears before setup has finished
            return BootResult.READY
        return BootResult.REBOOT

    @property
    def milestones(self) -> list[Milestone]:
        return list(self._watcher.milestones) if self._watcher else []

    # -- 4. login -------------------------------------------------------------------
    def login(self, machine, lab, config, steps: Steps) -> GuestShell:
        from .login import open_guest_shell
        timeouts = timeouts_for(machine)
        return open_guest_shell(machine, password=read_secret(lab.file(PASSWORD_FILE)),
                                key_path=lab.file(SSH_KEY_FILE), timeout=timeouts.login,
                                steps=steps)
