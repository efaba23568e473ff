"""QMP's wire protocol against a scripted peer on a real UNIX socket.

The peer speaks QMP as qmp-spec describes it (greeting, capabilities, replies
carrying the command's id, events); real QEMU is covered by
tests/integration/test_qmp.py.
"""
from __future__ import annotations

import gc
import json
import socket
import threading
import time
import weakref

import pytest

from smartos_lab.errors import QMPError, QMPTimeout
from smartos_lab.machine.qmp import QMP, QMPCommandError
from smartos_lab.machine.qmpprotocol import QMPConnection

GREETING = {"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""},
                    "capabilities": []}}


class Peer:
    """A QMP server run by the test: it greets, accepts capabilities, then lets the test
    read commands and write whatever it wants."""

    def __init__(self, path, greeting=GREETING, negotiate=True):
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(1)
        self.conn: socket.socket | None = None
        self.lines = None
        self._greeting, self._negotiate = greeting, negotiate
        self._accepted = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.conn, _ = self.server.accept()
        self.lines = self.conn.makefile("rb")
        if self._greeting is not None:
            self.send(self._greeting)
        if self._negotiate:
            assert json.loads(self.lines.readline())["execute"] == "qmp_capabilities"
            self.send({"event": "EARLY", "data": {}})
            self.send({"return": {}})
        self._accepted.set()

    def ready(self):
        assert self._accepted.wait(5)
        return self

    def send(self, obj):
        self.conn.sendall(json.dumps(obj).encode() + b"\r\n")

    def read_command(self):
        return json.loads(self.lines.readline())

    def hang_up(self):
        self.conn.shutdown(socket.SHUT_RDWR)

    def close(self):
        if self.conn is not None:
            self.lines.close()
            self.conn.close()
        self.server.close()


@pytest.fixture
def peer(tmp_path):
    p = Peer(tmp_path / "qmp.sock")
    yield p
    p.close()


@pytest.fixture
def qmp(peer, tmp_path):
    q = QMP(tmp_path / "qmp.sock", timeout=2).connect()
    peer.ready()
    yield q
    q.close()


def in_thread(fn):
    box = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:           # handed to the test
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def test_replies_reach_their_callers_by_id_even_out_of_order(qmp, peer):
    t1, first = in_thread(lambda: qmp.execute("query-status"))
    cmd1 = peer.read_command()
    t2, second = in_thread(lambda: qmp.execute("query-name"))
    cmd2 = peer.read_command()
    assert cmd1["id"] != cmd2["id"]
    peer.send({"return": {"name": "two"}, "id": cmd2["id"]})
    peer.send({"return": {"status": "running"}, "id": cmd1["id"]})
    t1.join(5), t2.join(5)
    assert first == {"value": {"status": "running"}}
    assert second == {"value": {"name": "two"}}


def test_arguments_are_sent_and_omitted_when_there_are_none(qmp, peer):
    t, box = in_thread(lambda: qmp.execute("human-monitor-command", {"command-line": "info"}))
    cmd = peer.read_command()
    assert cmd["execute"] == "human-monitor-command" and cmd["arguments"] == {"command-line": "info"}
    peer.send({"return": "text", "id": cmd["id"]})
    t.join(5)
    t, box = in_thread(lambda: qmp.execute("stop"))
    cmd = peer.read_command()
    assert "arguments" not in cmd
    peer.send({"return": {}, "id": cmd["id"]})
    t.join(5)
    assert box == {"value": {}}


def test_an_error_reply_is_a_command_error_with_its_class(qmp, peer):
    t, box = in_thread(lambda: qmp.execute("nope"))
    cmd = peer.read_command()
    peer.send({"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"},
               "id": cmd["id"]})
    t.join(5)
    err = box["error"]
    assert isinstance(err, QMPCommandError) and isinstance(err, QMPError)
    assert err.error_class == "CommandNotFound"
    assert str(err) == "QMP nope failed: CommandNotFound: The command nope has not been found"


def test_events_are_recorded_in_order_with_replies_including_those_of_the_handshake(qmp, peer):
    t, box = in_thread(lambda: qmp.execute("stop"))
    cmd = peer.read_command()
    peer.send({"event": "STOP", "data": {}})
    peer.send({"return": {}, "id": cmd["id"]})
    t.join(5)
    assert [e["event"] for e in qmp.events] == ["EARLY", "STOP"]


def test_a_reply_after_its_caller_timed_out_is_dropped_and_the_next_call_works(qmp, peer):
    with pytest.raises(QMPTimeout, match="QMP query-status: no answer within 0.2 s"):
        qmp.execute("query-status", timeout=0.2)
    late = peer.read_command()
    t, box = in_thread(lambda: qmp.execute("query-name"))
    cmd = peer.read_command()
    peer.send({"return": {"status": "late"}, "id": late["id"]})
    peer.send({"return": {"name": "now"}, "id": cmd["id"]})
    t.join(5)
    assert box == {"value": {"name": "now"}}


def test_a_closed_connection_fails_every_waiting_caller_at_once(qmp, peer):
    callers = [in_thread(lambda: qmp.execute("query-status", timeout=30)) for _ in range(3)]
    for _ in callers:
        peer.read_command()
    start = time.monotonic()
    peer.hang_up()
    for t, _ in callers:
        t.join(5)
    assert time.monotonic() - start < 2
    for _, box in callers:
        assert isinstance(box["error"], QMPError) and not isinstance(box["error"], QMPTimeout)
        assert "closed by QEMU" in str(box["error"])
    assert not qmp.connected
    with pytest.raises(QMPError, match="closed by QEMU"):
        qmp.status()


def test_waiting_for_an_event_ends_as_soon_as_the_connection_is_lost(qmp, peer):
    t, box = in_thread(lambda: qmp.wait_event("SHUTDOWN", 30))
    time.sleep(0.1)
    start = time.monotonic()
    peer.hang_up()
    t.join(5)
    assert time.monotonic() - start < 0.4
    assert "connection lost" in str(box["error"])


def test_an_error_without_id_means_qemu_could_not_parse_and_ends_the_session(qmp, peer):
    t, box = in_thread(lambda: qmp.execute("query-status", timeout=30))
    peer.read_command()
    peer.send({"error": {"class": "GenericError", "desc": "JSON parse error"}})
    t.join(5)
    assert "could not parse a command" in str(box["error"])
    assert not qmp.connected


def test_a_qemu_that_stops_reading_gives_a_timeout_not_a_blocked_writer(qmp, peer):
    start = time.monotonic()
    with pytest.raises(QMPTimeout, match="did not read the command within 0.3 s"):
        qmp.execute("human-monitor-command", {"command-line": "x" * (64 << 20)}, timeout=0.3)
    assert time.monotonic() - start < 2
    # half a command is on the wire: that stream is done for, and says so
    with pytest.raises(QMPError, match="dropped after a write timed out"):
        qmp.status()


def test_a_greeting_that_is_not_qmp_is_refused_clearly(tmp_path):
    peer = Peer(tmp_path / "bad.sock", greeting={"hello": 1}, negotiate=False)
    try:
        with pytest.raises(QMPError, match="'Greeting' object requires 'QMP' member"):
            QMP(tmp_path / "bad.sock").connect(timeout=2)
    finally:
        peer.close()


def test_an_abandoned_connection_is_collected_and_its_reader_thread_ends(peer, tmp_path):
    conn = QMPConnection(tmp_path / "qmp.sock", on_event=lambda msg: None)
    conn.connect(2)
    peer.ready()
    reader = conn._reader
    ref = weakref.ref(conn)
    del conn
    gc.collect()
    assert ref() is None
    reader.join(2)
    assert not reader.is_alive()


def test_close_is_idempotent_and_later_calls_say_connect_first(qmp):
    qmp.close()
    qmp.close()
    with pytest.raises(QMPError, match="call connect"):
        qmp.status()


def test_a_server_that_greets_but_never_accepts_capabilities_times_out_saying_so(tmp_path):
    peer = Peer(tmp_path / "slow.sock", negotiate=False)
    try:
        with pytest.raises(QMPTimeout, match="no answer to qmp_capabilities within 0.3 s"):
            QMP(tmp_path / "slow.sock").connect(timeout=0.3)
    finally:
        peer.close()
