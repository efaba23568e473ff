"""SSH transport and GuestShell on the Linux test guest (a test substrate, not SmartOS).

The guest runs dropbear (no SFTP) on port 22, forwarded to a host port.
One guest boots for the module.
"""
from __future__ import annotations

import os
import socket
import time

import paramiko
import pytest

from smartos_lab.errors import CommandTimeout, GuestPanic, TransportError
from smartos_lab.machine.guest import GuestShell
from smartos_lab.machine.shell import ConsoleShell
from smartos_lab.machine.ssh import SSHShell, generate_keypair
from tests.guest.machines import booted_guest

pytestmark = pytest.mark.guest


@pytest.fixture(scope="module")
def booted():
    with booted_guest(f"ssh-{os.getpid()}", ssh=True) as b:
        yield b


@pytest.fixture(scope="module")
def key_path(tmp_path_factory):
    return tmp_path_factory.mktemp("keys") / "id_lab"


@pytest.fixture(scope="module")
def guest(booted, key_path):
    g = GuestShell(ConsoleShell(booted.console))
    t0 = time.monotonic()
    g.enable_ssh(port=booted.machine.ports["ssh"], key_path=key_path, timeout=120)
    print(f"\nenable_ssh (push key over the console, connect): {time.monotonic() - t0:.2f} s")
    yield g
    g.close()


def test_generate_keypair_writes_a_private_key_readable_only_by_us(tmp_path):
    line = generate_keypair(tmp_path / "k")
    assert line.startswith("ecdsa-sha2-nistp256 AAAA")
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "k.pub").read_text().strip() == line


def test_enable_ssh_authorizes_the_key_once_with_safe_modes(booted, guest, key_path):
    guest.enable_ssh(port=booted.machine.ports["ssh"], key_path=key_path)     # again: no duplicate
    pub = (key_path.parent / "id_lab.pub").read_text().split()[1]
    r = guest.run("cat /root/.ssh/authorized_keys; stat -c %a /root/.ssh /root/.ssh/authorized_keys",
                  via="console")
    assert r.stdout.count(pub) == 1
    assert r.stdout.endswith("700\n600\n")


def test_commands_go_over_ssh_once_it_is_enabled(guest):
    assert guest.transport == "ssh"
    r = guest.run("echo out; echo err >&2; exit 3")
    assert (r.transport, r.exit_status, r.stdout, r.stderr) == ("ssh", 3, "out\n", "err\n")


def test_the_console_can_still_be_chosen(guest):
    r = guest.run("echo via-console", via="console")
    assert (r.transport, r.stdout) == ("console", "via-console\n")


def test_check_returns_the_result_or_raises(guest):
    assert guest.check("true").ok
    with pytest.raises(Exception) as exc:
        guest.check("false")
    assert exc.value.result.exit_status == 1


def test_run_bytes_returns_binary_output_exactly(guest):
    r = guest.ssh.run_bytes("printf '\\000\\001\\377\\r\\n'")
    assert r.stdout == b"\x00\x01\xff\r\n" and r.ok


def test_put_and_get_a_1_mb_random_file_round_trip_byte_exact(guest, tmp_path):
    data = os.urandom(1 << 20)
    src, back = tmp_path / "src.bin", tmp_path / "back.bin"
    src.write_bytes(data)
    t0 = time.monotonic()
    guest.put(src, "/tmp/random.bin", mode=0o600)
    t1 = time.monotonic()
    guest.get("/tmp/random.bin", back)
    t2 = time.monotonic()
    print(f"\n1 MiB over SSH: put {t1 - t0:.2f} s, get {t2 - t1:.2f} s")
    assert back.read_bytes() == data
    assert guest.run("stat -c %a /tmp/random.bin").stdout == "600\n"


def test_get_of_a_missing_file_fails_clearly(guest, tmp_path):
    with pytest.raises(TransportError) as exc:
        guest.get("/no/such/file", tmp_path / "x")
    assert "/no/such/file" in str(exc.value)
    assert not (tmp_path / "x").exists()
    (tmp_path / "x").write_text("precious\n")
    with pytest.raises(TransportError):
        guest.get("/no/such/file", tmp_path / "x")
    assert (tmp_path / "x").read_text() == "precious\n"


def test_a_hanging_command_over_ssh_times_out_and_the_next_works(guest):
    t0 = time.monotonic()
    with pytest.raises(CommandTimeout) as exc:
        guest.run("echo started; sleep 600", timeout=2)
    assert time.monotonic() - t0 < 10
    assert exc.value.output == "started\n"
    assert guest.run("echo ok").stdout == "ok\n"


def test_a_guest_that_stops_answering_before_the_command_starts_times_out(booted, guest):
    """paramiko's exec_command waits for the server with no timeout of its own (exec path)."""
    transport = guest.ssh._client.get_transport()
    real_open_session = transport.open_session

    def open_then_stall(*args, **kwargs):
        chan = real_open_session(*args, **kwargs)
        booted.machine.qmp.pause()                  # the guest stops right after the session opened
        return chan
    transport.open_session = open_then_stall
    try:
        t0 = time.monotonic()
        with pytest.raises(CommandTimeout):
            guest.ssh.run("true", timeout=3, clean=True)
        assert time.monotonic() - t0 < 6
    finally:
        transport.open_session = real_open_session
        booted.machine.qmp.resume()
    assert guest.run("echo ok", via="ssh").stdout == "ok\n"


def test_a_guest_that_stops_answering_during_a_session_command_times_out(booted, guest):
    """The persistent session: the guest stops; the call returns within its timeout plus
    the time to find the guest does not answer either when asked to stop the command."""
    guest.run("true", via="ssh")                    # a session is open and idle
    booted.machine.qmp.pause()
    try:
        t0 = time.monotonic()
        with pytest.raises(CommandTimeout):
            guest.run("true", timeout=3, via="ssh")
        assert time.monotonic() - t0 < 3 + 3
    finally:
        booted.machine.qmp.resume()
    assert guest.run("echo ok", via="ssh").stdout == "ok\n"


def test_a_channel_open_answered_after_its_timeout_gets_a_new_connection(booted, guest):
    """The guest stops while a channel opens; paramiko forgets the channel when the open
    times out, and the server opens it when it runs again ("Success for unrequested
    channel"): that connection is replaced, not used on with a channel nobody will close."""
    guest.run("true", via="ssh")
    old = guest.ssh._client.get_transport()
    booted.machine.qmp.pause()
    try:
        with pytest.raises(CommandTimeout):
            guest.ssh.run("true", timeout=2, clean=True)
    finally:
        booted.machine.qmp.resume()
    time.sleep(1.0)                                 # the server answers the open now
    assert guest.run("echo ok", via="ssh").stdout == "ok\n"
    assert guest.ssh._client.get_transport() is not old and not old.is_active()
    assert guest.run("echo again", via="ssh").stdout == "again\n"


def test_a_command_given_up_on_as_its_channel_starts_does_not_cost_the_connection(
        guest, monkeypatch):
    """The exec request goes out after the caller stopped waiting (here its thread loses the
    CPU between paramiko's open check and the send, as under load): closing the channel
    first made dropbear end the whole connection ("Unknown channel" in its log)."""
    transport = guest.ssh._client.get_transport()
    real = paramiko.Channel._event_pending

    def slow(chan):
        time.sleep(1.0)
        return real(chan)
    monkeypatch.setattr(paramiko.Channel, "_event_pending", slow)
    with pytest.raises(CommandTimeout):
        guest.ssh.run("true", timeout=0.5, clean=True)
    monkeypatch.setattr(paramiko.Channel, "_event_pending", real)
    time.sleep(2.0)                                 # the late request has reached the server
    assert transport.is_active(), "the server dropped the connection"
    assert guest.run("echo ok", via="ssh").stdout == "ok\n"
    log = guest.run("cat /var/log/dropbear.log", via="console").stdout
    assert "Unknown channel" not in log


def test_commands_stopped_while_their_output_streams_do_not_cost_the_connection(
        guest, monkeypatch):
    """A channel closed while data arrives: paramiko's select() pipe was closed under its
    transport thread, whose EBADF ended the connection ("Socket exception: Bad file
    descriptor").  Here closing that pipe is slowed (os.close lets other threads run)."""
    import paramiko.pipe

    def slow_close(pipe):
        os.close(pipe._rfd)
        os.close(pipe._wfd)
        time.sleep(0.05)
        pipe._closed = True
    monkeypatch.setattr(paramiko.pipe.PosixPipe, "close", slow_close)
    guest.run("true", via="ssh")
    transport = guest.ssh._client.get_transport()
    for timeout in (0.3, 0.4, 0.5, 0.6, 0.7):
        with pytest.raises(CommandTimeout):
            guest.ssh.run("yes", timeout=timeout, clean=True)
        with pytest.raises(CommandTimeout):
            guest.ssh.run("yes", timeout=timeout)
    time.sleep(0.5)
    assert transport.is_active(), "the connection was lost"
    assert guest.run("echo ok", via="ssh").stdout == "ok\n"


def test_a_panic_during_an_ssh_command_raises_guest_panic_promptly(tmp_path):
    """A throwaway guest: the console sees the panic; the SSH command must not wait it out."""
    with booted_guest(f"sshpanic-{os.getpid()}", ssh=True) as b:
        g = GuestShell(ConsoleShell(b.console))
        g.enable_ssh(port=b.machine.ports["ssh"], key_path=tmp_path / "id_lab", timeout=120)
        t0 = time.monotonic()
        with pytest.raises(GuestPanic) as exc:
            g.run("sleep 1; echo c > /proc/sysrq-trigger; sleep 100", timeout=60, via="ssh")
        took = time.monotonic() - t0
        print(f"\npanic during an SSH command reported after {took:.1f} s")
        assert took < 15
        assert "sysrq triggered crash" in exc.value.panic
        g.close()


def test_throughput_ssh_10_mb_versus_console(guest):
    size = 10_000_000
    r = guest.run(f"yes 0123456789abcdef | head -c {size}", timeout=600)
    assert len(r.stdout) == size
    ssh_rate = size / r.duration
    small = 500_000
    c = guest.run(f"yes 0123456789abcdef | head -c {small}", timeout=600, via="console")
    assert len(c.stdout) == small
    console_rate = small / c.duration
    print(f"\noutput throughput: SSH {ssh_rate / 1e6:.2f} MB/s ({size} bytes in {r.duration:.1f} s), "
          f"console {console_rate / 1e3:.0f} KB/s ({small} bytes in {c.duration:.1f} s), "
          f"ratio {ssh_rate / console_rate:.0f}x")


def test_ssh_round_trip_latency(guest):
    durations = sorted(guest.run("true").duration for _ in range(20))
    print(f"\nSSH round trip for 'true' (20 runs): p50 {durations[10] * 1000:.0f} ms, "
          f"max {durations[-1] * 1000:.0f} ms")


def test_the_host_key_is_pinned_per_lab(booted, key_path):
    known_hosts = key_path.with_name(key_path.name + ".known_hosts")
    assert known_hosts.exists()
    port = booted.machine.ports["ssh"]
    with SSHShell("127.0.0.1", port, "root", key_path).connect(timeout=30) as again:
        assert again.run("echo pinned").stdout == "pinned\n"
    # another key of the same type for the same host:port must be refused
    hosts = paramiko.HostKeys(str(known_hosts))
    host = f"[127.0.0.1]:{port}"
    (key_type,) = hosts.lookup(host).keys()
    original = known_hosts.read_text()
    try:
        hosts.add(host, key_type, _another_key(key_type))
        hosts.save(str(known_hosts))
        with pytest.raises(TransportError) as exc:
            SSHShell("127.0.0.1", port, "root", key_path).connect(timeout=30)
        assert "host key" in str(exc.value) and "changed" in str(exc.value)
    finally:
        known_hosts.write_text(original)


def _another_key(key_type: str) -> paramiko.PKey:
    if key_type == "ssh-ed25519":               # paramiko cannot generate these: any 32 bytes do
        blob = paramiko.Message()
        blob.add_string(key_type)
        blob.add_string(os.urandom(32))
        return paramiko.Ed25519Key(data=blob.asbytes())
    if key_type.startswith("ecdsa"):
        return paramiko.ECDSAKey.generate(bits=int(key_type[-3:]))
    return paramiko.RSAKey.generate(2048)


def test_connecting_where_no_server_listens_fails_within_the_timeout(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    generate_keypair(tmp_path / "k")
    t0 = time.monotonic()
    with pytest.raises(TransportError) as exc:
        SSHShell("127.0.0.1", port, "root", tmp_path / "k").connect(timeout=2)
    assert time.monotonic() - t0 < 10
    assert str(port) in str(exc.value)
