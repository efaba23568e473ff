"""ConsoleProtocol is what QemuMachine, the shells and the bring-up use of a console."""
from __future__ import annotations

import ast
import socket
from pathlib import Path

from smartos_lab.machine.console import Console
from smartos_lab.machine.consoleprotocol import ConsoleProtocol

PACKAGE = Path(__file__).resolve().parents[2] / "smartos_lab"


def test_the_shipped_console_is_a_console_protocol():
    a, b = socket.socketpair()
    console = Console.from_socket(a, name="pair")
    try:
        assert isinstance(console, ConsoleProtocol)
    finally:
        console.close()
        b.close()


def test_an_object_missing_a_member_is_not():
    class Half:
        name, log_path = "half", None

        def sendline(self, line: str = "", timeout: float = 1.0) -> None: ...

    assert not isinstance(Half(), ConsoleProtocol)


def test_the_protocol_declares_every_console_member_the_shells_and_smartos_layer_use():
    members = ({n for n in vars(ConsoleProtocol) if not n.startswith("_")}
               | set(ConsoleProtocol.__annotations__))
    used = set()
    for path in [*(PACKAGE / "smartos").glob("*.py"), PACKAGE / "machine" / "shell.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "console") or (
                    isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                    and node.value.attr == "console"
                    and isinstance(node.value.value, ast.Name) and node.value.value.id == "self"):
                used.add(node.attr)
    assert used and used <= members, sorted(used - members)
