"""`smartos-lab up` on a machine that cannot reach the mirror and has no image cached."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]          # nothing listens on it once closed


def test_up_offline_without_an_image_fails_fast_naming_the_mirror_and_the_way_out(tmp_path):
    mirror = f"http://127.0.0.1:{_closed_port()}/"
    env = dict(os.environ, SMARTOS_LAB_MIRROR=mirror, SMARTOS_LAB_CACHE=str(tmp_path / "cache"),
               SMARTOS_LAB_HOME=str(tmp_path / "home"))
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "smartos_lab.cli", "up", "offline"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 15
    assert out.returncode == 1
    assert mirror in out.stderr
    assert "smartos-lab images add" in out.stderr and "--image" in out.stderr
    assert not (tmp_path / "home" / "labs" / "offline").exists()     # no answers.json, no password


def test_up_with_a_bad_image_leaves_no_half_made_lab(tmp_path):
    bad = tmp_path / "smartos.img"
    bad.write_bytes(b"not an image" * 100)
    env = dict(os.environ, SMARTOS_LAB_CACHE=str(tmp_path / "cache"),
               SMARTOS_LAB_HOME=str(tmp_path / "home"))
    out = subprocess.run([sys.executable, "-m", "smartos_lab.cli", "up", "badimg", "--image",
                          str(bad)], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert f"smartos-lab up: error: {bad} is not a SmartOS image" in out.stderr
    assert out.stderr.count("is not a SmartOS image") == 1          # said once, not also as a step
    assert not (tmp_path / "home" / "labs" / "badimg").exists()


def test_destroy_from_a_script_without_a_terminal_asks_for_yes_in_one_line(tmp_path):
    env = dict(os.environ, SMARTOS_LAB_HOME=str(tmp_path / "home"),
               SMARTOS_LAB_RUNDIR=str(tmp_path / "run"))
    lab = tmp_path / "home" / "labs" / "parked"
    lab.mkdir(parents=True)
    (lab / "lab.json").write_text('{"name": "parked"}\n')

    def destroy(*flags: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "smartos_lab.cli", "destroy", "parked", *flags],
                              env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=60)
    refused = destroy()
    assert refused.returncode == 1 and lab.is_dir()
    assert refused.stderr == ("smartos-lab destroy: error: destroy asks for confirmation on a "
                              "terminal; without one, run 'smartos-lab destroy parked --yes'\n")
    done = destroy("--yes")
    assert done.returncode == 0 and done.stdout == "destroyed lab parked\n" and not lab.exists()
