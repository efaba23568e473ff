"""The QMP facade's client skips qemu.qmp's per-message debug text unless DEBUG logging is on."""
import logging

from qemu.qmp import Message

from smartos_lab.machine.qmp import _Client


class CountingMessage(Message):
    def __init__(self, value):
        super().__init__(value)
        self.str_calls = 0

    def __str__(self) -> str:
        self.str_calls += 1
        return super().__str__()


def test_messages_pass_through_unchanged_without_being_rendered():
    client = _Client("unit-quiet")
    client.logger.setLevel(logging.INFO)
    msg = CountingMessage({"execute": "query-status"})
    assert client._cb_outbound(msg) is msg
    assert client._cb_inbound(msg) is msg
    assert msg.str_calls == 0


def test_debug_logging_still_shows_each_message(caplog):
    client = _Client("unit-debug")
    msg = CountingMessage({"execute": "query-status"})
    with caplog.at_level(logging.DEBUG, logger=client.logger.name):
        assert client._cb_outbound(msg) is msg
        assert client._cb_inbound(msg) is msg
    assert msg.str_calls == 2
    assert "--> " in caplog.text and "<-- " in caplog.text and "query-status" in caplog.text
