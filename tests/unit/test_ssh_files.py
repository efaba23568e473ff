"""SSHShell file copies: what happens to the local file when a copy fails (no server needed)."""
from __future__ import annotations

import os

import pytest

from smartos_lab.errors import TransportError
from smartos_lab.machine.ssh import SSHShell


def _shell_whose_cat(monkeypatch, status: int, data: bytes) -> SSHShell:
    """An SSHShell whose remote ``cat`` writes ``data`` and exits with ``status``."""
    shell = SSHShell("127.0.0.1", 22, "root", "/nonexistent")

    def fake_exec(command, timeout, sink, source=None):
        sink.write(data)
        return status, b"cat: /no/such/file: No such file or directory\n", 0.1
    monkeypatch.setattr(shell, "_exec", fake_exec)
    return shell


def test_a_failed_get_leaves_an_existing_local_file_untouched(monkeypatch, tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("user's precious data\n")
    shell = _shell_whose_cat(monkeypatch, 1, b"partial")
    with pytest.raises(TransportError) as exc:
        shell.get("/no/such/file", precious)
    assert "/no/such/file" in str(exc.value)
    assert precious.read_text() == "user's precious data\n"
    assert os.listdir(tmp_path) == ["precious.txt"]            # no temporary file left


def test_a_failed_get_creates_no_local_file(monkeypatch, tmp_path):
    with pytest.raises(TransportError):
        _shell_whose_cat(monkeypatch, 1, b"").get("/no/such/file", tmp_path / "x")
    assert os.listdir(tmp_path) == []


def test_a_successful_get_replaces_the_file_and_keeps_its_mode(monkeypatch, tmp_path):
    target = tmp_path / "t.bin"
    target.write_bytes(b"old")
    target.chmod(0o640)
    _shell_whose_cat(monkeypatch, 0, b"new\x00data").get("/etc/x", target)
    assert target.read_bytes() == b"new\x00data"
    assert target.stat().st_mode & 0o777 == 0o640
    assert os.listdir(tmp_path) == ["t.bin"]
