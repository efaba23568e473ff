"""JupyterHub on one host: three Unix users, each with a lab cloned from one shared golden.

Real components: JupyterHub (PyPI) with LocalProcessSpawner and configurable-http-proxy
(npm), started on 127.0.0.1 from deploy/jupyterhub/jupyterhub_config.py; test Unix users
made with useradd and removed afterwards (needs root, as in CI); the Linux test guest (a
test substrate, not SmartOS) as the golden lab, checkpointed and shared by "the
instructor" (root).  Each user's lab is started by code run in that user's own Jupyter
kernel (Hub REST API + kernel websocket through the Hub's proxy), so it runs under the
user's uid, exactly as an attendee's notebook would.

The users' servers run this checkout's Python and code: for the test only, directories
above them that others cannot traverse get o+x, restored at the end.
"""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests import needs

pytestmark = [
    pytest.mark.guest,
    pytest.mark.skipif(os.geteuid() != 0, reason="creates Unix users: needs root"),
    pytest.mark.timeout(900),
]
jupyterhub = needs.module("jupyterhub")
# configurable-http-proxy: on PATH, or where ./setup.sh test installs it from npm
NPM_BIN = (Path(os.environ.get("SMARTOS_LAB_CACHE", Path.home() / ".cache" / "smartos-lab"))
           / "npm" / "node_modules" / ".bin")
CHP = shutil.which("configurable-http-proxy") or shutil.which("configurable-http-proxy",
                                                             path=str(NPM_BIN))

REPO = Path(__file__).resolve().parents[2]
TAG = f"sl{os.getpid() % 100000}"
USERS = [f"{TAG}a", f"{TAG}b", f"{TAG}c"]
GROUP = f"{TAG}g"
TOKEN = secrets.token_hex(16)
GUEST_MEMORY_MIB = 256
SERVER_TIMEOUT = 300.0
KERNEL_TIMEOUT = 600.0


# --- helpers ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _open_path_for_others(paths: list[Path]) -> list[tuple[Path, int]]:
    """Give o+x to every directory above ``paths`` that lacks it; returns what to restore."""
    changed = []
    for path in paths:
        for parent in [*reversed(path.resolve().parents), path.resolve()]:
            mode = parent.stat().st_mode
            if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
                parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
                changed.append((parent, stat.S_IMODE(mode)))
    return changed


def _kill_processes_of(user: str) -> None:
    """SIGKILL what is left of a test user's processes (their server, kernels, QEMU), by pid."""
    import pwd
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    os.kill(int(entry.name), 9)
            except OSError:
                pass


class Hub:
    def __init__(self, url: str, proc: subprocess.Popen, log: Path):
        self.url, self.proc, self.log = url, proc, log

    def api(self, method: str, path: str, body: dict | None = None, timeout: float = 60) -> tuple:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"token {TOKEN}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                text = resp.read().decode()
                return resp.status, (json.loads(text) if text.strip() else None)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except urllib.error.URLError as exc:          # not listening (yet)
            return 0, str(exc.reason)

    def wait_ready(self, user: str) -> None:
        deadline = time.monotonic() + SERVER_TIMEOUT
        while time.monotonic() < deadline:
            status, info = self.api("GET", f"/hub/api/users/{user}")
            server = (info or {}).get("servers", {}).get("", {}) if status == 200 else {}
            if server.get("ready"):
                return
            time.sleep(1)
        raise AssertionError(f"server of {user} not ready; hub log:\n{self.log.read_text()[-3000:]}")

    def run(self, user: str, code: str) -> dict:
        """Run ``code`` in a new kernel of ``user``'s server; return the JSON it prints last."""
        status, kernel = self.api("POST", f"/user/{user}/api/kernels", {"name": "python3"})
        assert status == 201, (status, kernel)
        try:
            out = asyncio.run(self._execute(user, kernel["id"], code))
        finally:
            self.api("DELETE", f"/user/{user}/api/kernels/{kernel['id']}")
        return json.loads(out.strip().splitlines()[-1])

    async def _execute(self, user: str, kernel_id: str, code: str) -> str:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        ws_url = self.url.replace("http", "ws", 1) + f"/user/{user}/api/kernels/{kernel_id}/channels"
        conn = await websocket_connect(HTTPRequest(ws_url, connect_timeout=60, headers={
            "Authorization": f"token {TOKEN}"}))
        msg_id = uuid.uuid4().hex
        conn.write_message(json.dumps({
            "header": {"msg_id": msg_id, "username": user, "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}}))
        out: list[str] = []
        deadline = time.monotonic() + KERNEL_TIMEOUT
        while True:
            raw = await asyncio.wait_for(conn.read_message(), deadline - time.monotonic())
            assert raw is not None, "kernel websocket closed"
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                raise AssertionError(f"{user}'s kernel: {content['ename']}: {content['evalue']}\n"
                                     + "\n".join(content["traceback"]))
            elif kind == "status" and content["execution_state"] == "idle":
                conn.close()
                return "".join(out)


# --- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shared():
    """Users, group, the shared folder with the test guest, and the instructor's golden."""
    from smartos_lab.lab import Lab, register_strategy
    from tests.guest.build import ensure_test_guest, load_test_guest
    from tests.guest.strategy import TestGuestStrategy

    restore = _open_path_for_others([Path(sys.executable).parent, Path(sys.prefix), REPO])
    root = Path(tempfile.mkdtemp(prefix="slhub-", dir="/tmp"))
    root.chmod(0o755)
    subprocess.run(["groupadd", GROUP], check=True)
    try:
        for user in USERS:
            subprocess.run(["useradd", "-m", "-G", GROUP, "-s", "/bin/sh", user], check=True)
        built = ensure_test_guest()
        guest_dir = root / "cache" / "test-guest" / built.kernel.parent.name
        shutil.copytree(built.kernel.parent, guest_dir)
        for path in [root / "cache", *(root / "cache").rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        guest = load_test_guest(guest_dir)

        def strategy() -> TestGuestStrategy:
            return TestGuestStrategy(guest=guest, memory_mib=GUEST_MEMORY_MIB)

        register_strategy("test-guest", strategy)
        labs = root / "golden" / "labs"
        labs.mkdir(parents=True, mode=0o755)
        golden = Lab.up("golden", strategy=strategy(), labs_root=labs, progress=False)
        golden.check("echo golden > /root/who")
        golden.checkpoint("ready")
        golden.down()
        share = subprocess.run([sys.executable, "-m", "smartos_lab.cli", "share",
                                str(labs / "golden"), "--checkpoint", "ready", "--group", GROUP],
                               capture_output=True, text=True, timeout=300)
        assert share.returncode == 0, share.stderr
        yield {"root": root, "golden": labs / "golden", "guest_dir": guest_dir}
    finally:
        for user in USERS:
            _kill_processes_of(user)
            subprocess.run(["userdel", "-r", user], capture_output=True)
        subprocess.run(["groupdel", GROUP], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
        for path, mode in reversed(restore):
            path.chmod(mode)


@pytest.fixture(scope="module")
def hub(shared):
    if CHP is None:
        needs.missing("needs configurable-http-proxy (npm; ./setup.sh test installs it)")
    root = shared["root"]
    state = root / "hub"
    state.mkdir(mode=0o700)
    port, hub_port, api_port = _free_port(), _free_port(), _free_port()
    config = state / "test_config.py"
    config.write_text(textwrap.dedent(f"""
        c = get_config()
        load_subconfig({str(REPO / 'deploy/jupyterhub/jupyterhub_config.py')!r})
        c.JupyterHub.hub_port = {hub_port}
        c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
        c.ConfigurableHTTPProxy.command = [{CHP!r}]
        c.JupyterHub.db_url = "sqlite:///{state}/jupyterhub.sqlite"
        c.JupyterHub.cookie_secret_file = "{state}/cookie_secret"
        c.JupyterHub.services = [{{"name": "sltest", "api_token": {TOKEN!r}}}]
        c.JupyterHub.load_roles = [{{"name": "sltest", "services": ["sltest"],
            "scopes": ["admin:users", "admin:servers", "access:servers", "list:users",
                       "read:users"]}}]
        c.Spawner.environment["SMARTOS_LAB_GOLDEN"] = {str(shared['golden'])!r}
    """))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTOS_LAB_")}
    env.update(SMARTOS_LAB_SHARED=str(root), SMARTOS_LAB_HUB_PORT=str(port),
               SMARTOS_LAB_WORKSHOP_GROUP=GROUP, SMARTOS_LAB_INSTRUCTORS="",
               PYTHONPATH=str(REPO))
    log = state / "hub.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(config)],
                                cwd=state, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    the_hub = Hub(f"http://127.0.0.1:{port}", proc, log)
    try:
        deadline = time.monotonic() + 120
        while the_hub.api("GET", "/hub/api/")[0] != 200:
            assert proc.poll() is None, f"hub exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"hub did not start:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        yield the_hub
    finally:
        for user in USERS:
            the_hub.api("DELETE", f"/hub/api/users/{user}/server", timeout=180)
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)


START_LAB = """
import json, os
from pathlib import Path
from smartos_lab.clones import clone
from smartos_lab.lab import Lab, register_strategy
from tests.guest.build import load_test_guest
from tests.guest.strategy import TestGuestStrategy

guest = load_test_guest(Path(os.environ["SMARTOS_LAB_CACHE"]) / "test-guest" / {guest!r})
def strategy():
    return TestGuestStrategy(guest=guest, memory_mib={memory})
register_strategy("test-guest", strategy)
clone(os.environ["SMARTOS_LAB_GOLDEN"], "mylab", checkpoint="ready")
lab = Lab.up("mylab", strategy=strategy(), progress=False)
rd = lab.machine.run_dir
print(json.dumps({{"uid": os.getuid(), "who": lab.check("cat /root/who").stdout,
                  "pid": lab.machine.pid, "run_root": str(rd.path.parent),
                  "qmp": str(rd.qmp_socket), "console": str(rd.console_socket),
                  "lab_dir": str(lab.lab_dir.path),
                  "disk": str(lab.lab_dir.disks_dir / "data0.qcow2")}}))
lab.detach()
"""

INTRUDE = """
import json, os, signal, socket, subprocess, sys, time
b = json.loads({victim!r})
def attempt(action):
    started = time.monotonic()
    try:
        action()
        result = "allowed"
    except PermissionError:
        result = "PermissionError"
    except OSError as exc:
        result = type(exc).__name__ + ": " + str(exc)
    return [result, round(time.monotonic() - started, 2)]
def connect(path):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
def cli(*args, **env):
    started = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "smartos_lab.cli", *args], capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, **env))
    return [p.returncode, p.stderr.strip(), round(time.monotonic() - started, 2)]
unreadable = "/tmp/" + {tag!r} + "-private-cache"
print(json.dumps({{
    "read_disk": attempt(lambda: open(b["disk"], "rb").read(1)),
    "list_lab_dir": attempt(lambda: os.listdir(b["lab_dir"])),
    "qmp": attempt(lambda: connect(b["qmp"])),
    "console": attempt(lambda: connect(b["console"])),
    "kill": attempt(lambda: os.kill(b["pid"], signal.SIGTERM)),
    "cli_console": cli("console", "mylab", SMARTOS_LAB_RUNDIR=b["run_root"]),
    "cli_down": cli("down", "mylab", SMARTOS_LAB_RUNDIR=b["run_root"]),
    "cli_clone": cli("clone", b["lab_dir"], "stolen"),
    "cli_images": cli("images", "list", SMARTOS_LAB_CACHE=unreadable),
}}))
"""


# --- the tests ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def labs(hub, shared):
    started = {}
    for user in USERS:
        status, _ = hub.api("POST", f"/hub/api/users/{user}")
        assert status == 201, (user, status)
        status, body = hub.api("POST", f"/hub/api/users/{user}/server")
        assert status in (201, 202), (user, status, body)
    for user in USERS:
        hub.wait_ready(user)
        started[user] = hub.run(user, START_LAB.format(guest=shared["guest_dir"].name,
                                                       memory=GUEST_MEMORY_MIB))
    return started


def test_each_user_starts_a_lab_from_the_shared_golden_under_their_own_uid(labs):
    import pwd

    for user, info in labs.items():
        assert info["uid"] == pwd.getpwnam(user).pw_uid
        assert info["who"] == "golden\n"                      # the golden's checkpoint state
        assert info["lab_dir"].startswith(pwd.getpwnam(user).pw_dir)
        for path in (info["lab_dir"], info["run_root"] + "/mylab"):
            st = os.stat(path)
            assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (info["uid"], 0o700)


def test_a_user_gets_permission_errors_not_hangs_on_another_users_lab(hub, labs):
    victim = json.dumps(labs[USERS[1]])
    tmp = Path(f"/tmp/{TAG}-private-cache")
    tmp.mkdir(mode=0o700, exist_ok=True)
    try:
        seen = hub.run(USERS[0], INTRUDE.format(victim=victim, tag=TAG))
    finally:
        tmp.rmdir()
    for what in ("read_disk", "list_lab_dir", "qmp", "console", "kill"):
        result, seconds = seen[what]
        assert result == "PermissionError" and seconds < 5, (what, seen[what])
    for what in ("cli_console", "cli_down"):
        code, message, seconds = seen[what]
        assert code == 1 and "not by you" in message and seconds < 30, (what, seen[what])
    code, message, _ = seen["cli_clone"]
    assert code == 1 and "cannot read lab folder" in message and "permission denied" in message
    code, message, _ = seen["cli_images"]
    assert code == 1 and "cannot read the image cache" in message
    still = hub.run(USERS[1], f"import json, os; print(json.dumps(os.kill({labs[USERS[1]]['pid']}, 0)))")
    assert still is None                        # B's QEMU still runs


def test_root_lists_every_users_lab(labs):
    out = subprocess.run([sys.executable, "-m", "smartos_lab.cli", "ps", "--all-users"],
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines()[1:]]
    mine = {r[0]: r for r in rows if r[0] in USERS}
    assert sorted(mine) == sorted(USERS)
    for user, row in mine.items():
        assert row[1:4] == ["mylab", "running", str(labs[user]["pid"])]
        assert row[-1] == "golden@ready"


def test_stopping_a_users_server_stops_their_labs(hub, labs):
    user = USERS[2]
    pid = labs[user]["pid"]
    status, _ = hub.api("DELETE", f"/hub/api/users/{user}/server", timeout=180)
    assert status in (202, 204)
    deadline = time.monotonic() + 120
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, f"{user}'s QEMU (pid {pid}) still runs"
        time.sleep(0.5)
    assert Path(labs[user]["lab_dir"], "lab.json").is_file()       # the disks stay
