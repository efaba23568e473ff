"""JupyterHub on one host for a smartos-lab workshop (LocalProcessSpawner, Unix users).

Every attendee is a Unix user: their notebook server runs under their own uid,
their labs live in their own home (``~/.local/share/smartos-lab/labs``, 0700) and
their QEMU sockets in their own run dir (``/tmp/smartos-lab-<uid>`` or
``$XDG_RUNTIME_DIR/smartos-lab``, 0700), so nobody can see, attach to or stop
anyone else's lab.  One read-only folder is shared by all
(``SMARTOS_LAB_SHARED``, default ``/srv/smartos-lab``):

    cache/            SMARTOS_LAB_CACHE: SmartOS images, downloaded once (group-readable)
    golden/labs/NAME  the instructor's golden lab, shared with 'smartos-lab share'

Attendees start from the golden's checkpoint without a boot:
``smartos-lab clone /srv/smartos-lab/golden/labs/golden mylab --checkpoint ready``
(or ``smartos_lab.clones.clone(...)`` in a notebook), then ``Lab.up("mylab")``.
The instructor (an admin user, or root) sees every lab: ``smartos-lab ps --all-users``.

Settings come from the environment so one file serves the host and the tests:
SMARTOS_LAB_SHARED, SMARTOS_LAB_HUB_IP (127.0.0.1), SMARTOS_LAB_HUB_PORT (8000),
SMARTOS_LAB_WORKSHOP_GROUP (workshop: who may log in), SMARTOS_LAB_INSTRUCTORS
(comma-separated admin users), SMARTOS_LAB_IDLE_MINUTES (60).  Run as root:
``jupyterhub -f deploy/jupyterhub/jupyterhub_config.py`` (see README.md here).
"""
import asyncio
import importlib.util
import os
import sys

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

shared = os.environ.get("SMARTOS_LAB_SHARED", "/srv/smartos-lab")
group = os.environ.get("SMARTOS_LAB_WORKSHOP_GROUP", "workshop")
instructors = {u for u in os.environ.get("SMARTOS_LAB_INSTRUCTORS", "").split(",") if u}
idle_minutes = int(os.environ.get("SMARTOS_LAB_IDLE_MINUTES", "60"))

c.JupyterHub.ip = os.environ.get("SMARTOS_LAB_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(os.environ.get("SMARTOS_LAB_HUB_PORT", "8000"))
c.JupyterHub.cleanup_servers = True

# Unix users: PAM logins for members of the workshop group; admins are instructors.
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = set()
c.PAMAuthenticator.allowed_groups = {group}
c.Authenticator.admin_users = instructors

# Each attendee's server runs under their uid (JupyterHub as root setuids it).
c.JupyterHub.spawner_class = "jupyterhub.spawner.LocalProcessSpawner"
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
c.Spawner.notebook_dir = "~"
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 180          # a busy workshop host starts servers slowly
c.Spawner.http_timeout = 180
c.Spawner.environment = {
    "SMARTOS_LAB_CACHE": os.path.join(shared, "cache"),       # one download for everyone
    "SMARTOS_LAB_GOLDEN": os.path.join(shared, "golden", "labs", "golden"),
}
# Labs are per user: no SMARTOS_LAB_HOME / SMARTOS_LAB_RUNDIR is passed on, so each
# user's defaults (their home, their private run dir) apply.



async def stop_user_labs(spawner):
    """When a server stops (logout, admin, idle culler), stop that user's labs too:
    a lab outlives its notebook, and an abandoned one would hold its RAM."""
    proc = await asyncio.create_subprocess_exec(
        "runuser", "-u", spawner.user.name, "--", sys.executable, "-m", "smartos_lab.cli",
        "down", "--all", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.environ.get("PYTHONPATH", "")})
    try:
        await asyncio.wait_for(proc.wait(), timeout=120)
    except asyncio.TimeoutError:
        proc.kill()


c.Spawner.post_stop_hook = stop_user_labs

# The idle culler (PyPI: jupyterhub-idle-culler) stops servers nobody used for a while.
if importlib.util.find_spec("jupyterhub_idle_culler") is not None:
    c.JupyterHub.services = [{
        "name": "idle-culler",
        "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                    f"--timeout={idle_minutes * 60}"],
    }]
    c.JupyterHub.load_roles = [{
        "name": "idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    }]
