"""JupyterLab in a real browser, as a workshop attendee meets it.

JupyterLab (the ``notebook`` extra) runs on a free 127.0.0.1 port with a
token; Debian's chromium, headless, is driven by Playwright for Python
(``executable_path`` set: Playwright downloads no browser).  The page's own
JupyterLab application (``exposeAppInBrowser``) runs the notebooks and reads
their outputs.  The lab is the Linux test guest (a test substrate, not
SmartOS), booted by the test; the kernel learns the test-guest strategy from
an IPython startup file.  Screenshots are saved in the test's tmp folder and
their paths printed.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from tests import needs

pytestmark = [pytest.mark.browser, pytest.mark.guest, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("jupyterlab")


@pytest.fixture(scope="module")
def lab_name():
    from smartos_lab.lab import Lab, LabState, lookup, register_strategy
    from tests.guest.strategy import TestGuestStrategy
    register_strategy("test-guest", TestGuestStrategy)
    name = f"browser-{os.getpid()}"
    Lab.up(name, strategy=TestGuestStrategy(), progress=False).down()      # %lab boots it again
    yield name
    if lookup(name).state is LabState.RUNNING:
        Lab.attach(name).down()


@pytest.fixture(scope="module")
def server(workdir, lab_name):
    needs.module("jupyterlab")
    if not Path(CHROMIUM).exists():
        needs.missing("needs Debian's chromium (apt-get install chromium)")
    notebooks = workdir / "notebooks"
    notebooks.mkdir()
    for name in ("00-start-here.ipynb", "01-boot-smartos.ipynb"):
        shutil.copy(ROOT / "notebooks" / name, notebooks)
    config = workdir / "jupyter-config"
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps({
        "exposeAppInBrowser": True,
        "disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    startup = workdir / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-test-guest.py").write_text(textwrap.dedent("""\
        from smartos_lab.lab import register_strategy
        from tests.guest.strategy import TestGuestStrategy
        register_strategy("test-guest", TestGuestStrategy)
        """))
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k not in ("SMARTOS_LAB_IMAGE", "SMARTOS_LAB_NAME")}
    env.update(PYTHONPATH=str(ROOT), JUPYTER_CONFIG_DIR=str(config), IPYTHONDIR=str(workdir / "ipython"),
               SMARTOS_LAB_CACHE=str(workdir / "image-cache"), JUPYTER_RUNTIME_DIR=str(workdir / "rt"))
    log = open(workdir / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={notebooks}", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
         "jupyterlab.NeverCheckForUpdate", *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=notebooks, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("JupyterLab did not start: " + (workdir / "jupyterlab.log").read_text()[-3000:])
            time.sleep(0.5)
    yield {"base": base, "token": token, "dir": notebooks}
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()


@pytest.fixture(scope="module")
def browser():
    sync_api = needs.module("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    yield page
    context.close()


# --- helpers using the page's JupyterLab application -------------------------------------------------
def _open(page, server, notebook: str) -> None:
    """Open ``notebook`` alone (a fresh workspace) and wait for its kernel to be idle."""
    page.goto(f"{server['base']}/lab/workspaces/{notebook.split('.')[0]}/tree/{notebook}"
              f"?reset&token={server['token']}")
    page.wait_for_function(
        "(path) => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " return w && w.context && w.context.path === path && w.sessionContext.session"
        " && w.sessionContext.session.kernel && w.sessionContext.session.kernel.status === 'idle'; }",
        arg=notebook, timeout=120_000)


def _run_all(page) -> None:
    """Start running every cell (not waiting: the command's promise ends with the last cell)."""
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")


def _wait_done(page, timeout_ms: int = 600_000) -> None:
    """Until every code cell has run and the kernel is idle."""
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " const cells = Array.from(w.content.model.cells);"
        " return w.sessionContext.session.kernel.status === 'idle'"
        " && cells.every(c => c.type !== 'code' || c.executionCount !== null); }",
        timeout=timeout_ms, polling=500)


def _outputs(page) -> list[list[dict]]:
    return page.evaluate(
        "() => Array.from(window.jupyterapp.shell.currentWidget.content.model.cells)"
        ".map(c => c.type === 'code' ? c.outputs.toJSON() : [])")


def _shot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


# --- the tests ------------------------------------------------------------------------------------
def test_start_here_runs_in_the_browser_without_error_output(page, server, tmp_path):
    _open(page, server, "00-start-here.ipynb")
    _run_all(page)
    _wait_done(page)
    outputs = _outputs(page)
    errors = [o for cell in outputs for o in cell if o["output_type"] == "error"]
    assert not errors, errors
    text = "".join(o.get("text", "") for cell in outputs for o in cell if o["output_type"] == "stream")
    assert "smartos-lab:" in text and "accelerator:" in text          # the doctor's report
    report = page.locator(".jp-OutputArea-output", has_text="smartos-lab:").first
    report.scroll_into_view_if_needed()
    assert "accelerator" in report.text_content()
    _shot(page, tmp_path, "00-start-here")


def _run_code_cell(page, n: int) -> None:
    """Run the ``n``-th code cell (0-based) and wait until the kernel is idle again."""
    page.evaluate(
        "(n) => { const w = window.jupyterapp.shell.currentWidget;"
        " const cells = Array.from(w.content.model.cells);"
        " const index = cells.map((c, i) => [c, i]).filter(([c]) => c.type === 'code')[n][1];"
        " w.content.activeCellIndex = index;"
        " window.jupyterapp.commands.execute('notebook:run-cell'); }", n)
    page.wait_for_function(
        "(n) => { const w = window.jupyterapp.shell.currentWidget;"
        " const c = Array.from(w.content.model.cells).filter(c => c.type === 'code')[n];"
        " return w.sessionContext.session.kernel.status === 'idle' && c.executionCount !== null; }",
        arg=n, timeout=120_000, polling=250)


def test_without_an_image_notebook_01_shows_a_note_and_later_cells_wait(page, server, tmp_path):
    _open(page, server, "01-boot-smartos.ipynb")
    _run_code_cell(page, 0)
    _run_code_cell(page, 1)
    first, second = [cell for cell in _outputs(page) if cell][:2]
    (note,) = [o for o in first if o["output_type"] == "error"]
    shown = "\n".join(note["traceback"])
    assert "No SmartOS image for this notebook" in shown and "SMARTOS_LAB_IMAGE" in shown
    assert "Traceback" not in shown and "smartos_lab/" not in shown
    (waiting,) = [o for o in second if o["output_type"] == "error"]
    assert len(waiting["traceback"]) == 1 and "waits for a SmartOS image" in waiting["traceback"][0]
    page.locator(".jp-CodeCell").first.scroll_into_view_if_needed()
    _shot(page, tmp_path, "01-without-an-image")


TOUR = ["%load_ext smartos_lab",
        "%lab {name}",
        "%%sh\nfor i in 1 2 3 4 5 6; do echo \"line $i\"; sleep 1; done",
        "lab"]


def test_magics_stream_show_the_panel_and_save_a_checkpoint(page, server, lab_name, tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s.format(name=lab_name)) for s in TOUR])
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(nb, server["dir"] / "magics.ipynb")
    _open(page, server, "magics.ipynb")
    _run_all(page)

    # the %%sh cell's first line is in the page while the cell still runs
    sh_cell = page.locator(".jp-CodeCell").nth(2)
    try:
        sh_cell.get_by_text("line 1").wait_for(timeout=300_000)
    except Exception:
        _shot(page, tmp_path, "magics-failed")
        print(json.dumps(_outputs(page), indent=1)[:5000])
        raise
    seen_first = time.monotonic()
    prompt = sh_cell.locator(".jp-InputPrompt").inner_text()
    running = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.model.cells.get(2)"
                            ".executionCount === null")
    assert running, f"the cell had finished when its first line showed (prompt {prompt!r})"
    assert "line 6" not in sh_cell.inner_text()
    sh_cell.get_by_text("line 6").wait_for(timeout=60_000)
    assert time.monotonic() - seen_first > 2.5
    _wait_done(page)
    assert not [o for cell in _outputs(page) for o in cell if o["output_type"] == "error"]

    # %lab booted the stopped lab, its progress shown as steps ending in "done"
    steps = page.locator(".jp-CodeCell").nth(1).locator(".smartos-lab-steps")
    assert steps.text_content().startswith("done"), steps.text_content()
    steps.scroll_into_view_if_needed()
    _shot(page, tmp_path, "magics-boot-steps")

    panel = page.locator(".smartos-lab-panel").last
    panel.wait_for(timeout=60_000)
    assert panel.locator(".smartos-lab-state").inner_text() == "running"
    panel.locator("input[type=text]").fill("from-browser")
    panel.get_by_role("button", name="Save checkpoint").click()
    panel.locator(".smartos-lab-checkpoint", has_text="from-browser").wait_for(timeout=120_000)
    assert "saved checkpoint 'from-browser'" in panel.inner_text()
    panel.scroll_into_view_if_needed()
    _shot(page, tmp_path, "magics-panel")
