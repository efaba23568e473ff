"""Progress bars: terminal (\\r-redrawn on a tty, lines otherwise) and notebook (ipywidgets)."""
import io
import sys

from smartos_lab.images.progress import NotebookProgress, TerminalProgress, describe, notebook_progress


class TTY(io.StringIO):
    def isatty(self):
        return True


def test_describe_shows_percent_and_mib():
    assert describe("downloading x", 1 << 20, 4 << 20, 0.0) == "downloading x  25% 1.0/4.0 MiB"
    assert describe("x", 3 << 20, None, 0.0) == "x 3.0 MiB"


def test_terminal_bar_redraws_one_line_with_carriage_returns_on_a_tty():
    out = TTY()
    p = TerminalProgress(out, hz=1e9)
    p.start("downloading a.img.gz", 100)
    p.update(50)
    p.finish()
    text = out.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n")
    assert "[###############...............]" in text and " 50%" in text


def test_terminal_progress_on_a_pipe_prints_at_most_one_line_per_tenth():
    out = io.StringIO()
    p = TerminalProgress(out)
    p.start("copy", 1000)
    for i in range(0, 1001, 5):
        p.update(i)
    p.finish()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert 10 <= len(lines) <= 13
    assert lines[-1].startswith("copy 100%")


def test_notebook_progress_uses_an_intprogress_and_a_label():
    p = notebook_progress()
    assert isinstance(p, NotebookProgress)
    p.start("downloading", 200)
    p.update(100)
    p._show(100, force=True)
    assert p._bar.value == 500 and "50%" in p._label.value
    p.finish()
    assert p._bar.value == 1000 and p._bar.bar_style == "success"


def test_notebook_progress_falls_back_to_the_terminal_without_ipywidgets(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    assert isinstance(notebook_progress(), TerminalProgress)
