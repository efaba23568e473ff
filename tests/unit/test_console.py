"""Console over a socketpair / pty with a scripted peer playing the guest."""
from __future__ import annotations

import os
import socket
import threading
import time
import tty

import pytest

from smartos_lab.errors import (
    ConsoleClosed,
    ConsoleTimeout,
    GuestDebugger,
    GuestHalted,
    GuestPanic,
    QemuExited,
)
from smartos_lab.machine.console import Console, ConsoleProfile


class Peer:
    """The guest side of a socketpair: writes scripted output, reads what the console typed."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.threads: list[threading.Thread] = []

    def write(self, *pieces: bytes | str, gap: float = 0.0, delay: float = 0.0) -> None:
        """Write the pieces (after ``delay``, ``gap`` s apart) from a background thread."""
        def run():
            time.sleep(delay)
            for p in pieces:
                self.sock.sendall(p.encode() if isinstance(p, str) else p)
                time.sleep(gap)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        self.threads.append(t)

    def read(self, n: int, timeout: float = 2.0) -> bytes:
        self.sock.settimeout(timeout)
        out = b""
        while len(out) < n:
            out += self.sock.recv(n - len(out))
        return out

    def close(self) -> None:
        for t in self.threads:
            t.join(5)
        self.sock.close()


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    console = Console.from_socket(a, name="test-console", log_path="/tmp/serial.log")
    peer = Peer(b)
    yield console, peer
    console.close()
    peer.close()


def test_expect_returns_the_match_and_the_text_before_it(pair):
    console, peer = pair
    peer.write("booting...\r\ntestguest login: ", delay=0.1)
    m = console.expect(r"login: $", timeout=5)
    assert m.index == 0
    assert m.before == "booting...\r\ntestguest "
    assert m.after == "login: "


def test_expect_picks_the_first_of_several_patterns_that_appears(pair):
    console, peer = pair
    peer.write("Password: ")
    m = console.expect([r"login: ", r"[Pp]assword: "], timeout=5)
    assert m.index == 1


def test_text_after_a_match_is_kept_for_the_next_expect(pair):
    console, peer = pair
    peer.write("one two three")
    console.expect("one", timeout=5)
    assert console.expect("three", timeout=5).before == " two "


def test_a_pattern_split_across_writes_is_matched(pair):
    console, peer = pair
    peer.write("ready: sm", "artos", "-lab\n", gap=0.05)
    assert console.expect_exact("smartos-lab", timeout=5).before == "ready: "


def test_matching_works_on_ansi_stripped_text(pair):
    console, peer = pair
    peer.write("\x1b[1;31mre\x1b", "[0md\x1b]0;title\x07!", gap=0.05)
    m = console.expect(r"red!", timeout=5)
    assert m.after == "red!"
    assert "\x1b" not in console.tail()


def test_timeout_names_the_pattern_and_carries_tail_and_log_path(pair):
    console, peer = pair
    peer.write("some output\r\n")
    t0 = time.monotonic()
    with pytest.raises(ConsoleTimeout) as exc:
        console.expect(r"never-appears", timeout=0.5)
    assert 0.5 <= time.monotonic() - t0 < 2
    err = exc.value
    assert "never-appears" in str(err) and "timed out" in str(err)
    assert "some output" in err.tail
    assert err.log_path == "/tmp/serial.log" and "/tmp/serial.log" in str(err)


def test_idle_timeout_ends_the_wait_early_when_output_stops(pair):
    console, peer = pair
    peer.write(*["progress\r\n"] * 8, gap=0.1)        # output for ~0.8 s, then silence
    t0 = time.monotonic()
    with pytest.raises(ConsoleTimeout) as exc:
        console.expect("never", timeout=20, idle_timeout=0.5)
    elapsed = time.monotonic() - t0
    assert 1.1 <= elapsed < 5, elapsed            # outlived the idle timeout while output flowed
    assert "no console output" in str(exc.value)
    assert "progress" in exc.value.tail


def test_idle_timeout_counts_from_the_start_of_the_wait(pair):
    console, peer = pair
    time.sleep(0.4)                                 # console quiet before the wait starts
    peer.write("late", delay=0.3)
    assert console.expect("late", timeout=5, idle_timeout=0.5).after == "late"


LINUX_PANIC = [
    "[   12.345678] sysrq: Trigger a crash\r\n[   12.345900] Kernel pa",
    "nic - not syncing: sysrq triggered crash\r\n",
    "[   12.346000] CPU: 0 PID: 1 Comm: sh Not tainted 6.1.0-13-amd64\r\n",
    "[   12.346100] Call Trace:\r\n[   12.346200]  <TASK>\r\n[   12.346300]  dump_stack_lvl+0x44/0x5c\r\n",
]


def test_a_panic_split_across_writes_raises_guest_panic_with_the_stack(pair):
    console, peer = pair
    peer.write(*LINUX_PANIC, gap=0.1)
    with pytest.raises(GuestPanic) as exc:
        console.expect("login: ", timeout=10)
    panic = exc.value.panic
    assert panic.startswith("[   12.345900] Kernel panic - not syncing: sysrq triggered crash")
    assert "dump_stack_lvl" in panic                # output after the match was collected
    assert "Kernel panic" in str(exc.value)
    assert exc.value.log_path == "/tmp/serial.log"


def test_a_panic_is_recorded_even_when_nobody_waits(pair):
    console, peer = pair
    assert console.crash is None
    peer.write(*LINUX_PANIC)
    deadline = time.monotonic() + 5
    while console.crash is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert isinstance(console.crash, GuestPanic)
    with pytest.raises(GuestPanic):                 # a later wait reports it at once
        console.expect("anything", timeout=5)
    with pytest.raises(GuestPanic):                 # and typing stops
        console.sendline("echo hi")


def test_an_illumos_panic_is_detected(pair):
    console, peer = pair
    peer.write("\r\npanic[cpu0]/thread=fffffe0003e05c20: BAD TRAP: type=e (#pf Page fault)\r\n"
               "fffffe0003e05a10 unix:die+c0 ()\r\n")
    with pytest.raises(GuestPanic) as exc:
        console.expect("login: ", timeout=10)
    assert "unix:die+c0" in exc.value.panic


def test_the_kmdb_prompt_raises_guest_debugger(pair):
    console, peer = pair
    peer.write("Welcome to kmdb\r\n[0]", "> ", gap=0.05)
    with pytest.raises(GuestDebugger):
        console.expect("login: ", timeout=10)


def test_press_any_key_to_reboot_raises_guest_halted(pair):
    console, peer = pair
    peer.write("syncing file systems... done\r\nPress any key to reboot.")
    with pytest.raises(GuestHalted):
        console.expect("login: ", timeout=10)


def test_a_cleared_crash_is_not_reported_again_but_a_new_one_is(pair):
    console, peer = pair
    peer.write("Welcome to kmdb\r\n[0]> ")
    with pytest.raises(GuestDebugger):
        console.expect("never", timeout=5)
    console.clear_crash()
    peer.write("::status\r\ndebugging live kernel\r\n")
    assert console.expect("debugging live kernel", timeout=5)
    assert console.crash is None
    peer.write("[0]> ")                             # kmdb's next prompt
    with pytest.raises(GuestDebugger):
        console.expect("never", timeout=5)


def test_end_of_stream_raises_console_closed(pair):
    console, peer = pair
    peer.write("bye\r\n")
    peer.threads[0].join()
    peer.sock.shutdown(socket.SHUT_RDWR)
    with pytest.raises(ConsoleClosed) as exc:
        console.expect("login: ", timeout=5)
    assert "bye" in exc.value.tail


def test_text_before_end_of_stream_can_still_be_matched(pair):
    console, peer = pair
    peer.sock.sendall(b"last words")
    peer.sock.shutdown(socket.SHUT_RDWR)
    assert console.expect("last words", timeout=5).index == 0


def test_end_of_stream_raises_the_exit_probes_error():
    a, b = socket.socketpair()
    exited = QemuExited("QEMU exited with status 1", returncode=1)
    console = Console.from_socket(a, exit_probe=lambda: exited)
    b.close()
    try:
        with pytest.raises(QemuExited) as exc:
            console.expect("login: ", timeout=5)
        assert exc.value is exited
    finally:
        console.close()


def test_terminal_queries_are_answered(pair):
    console, peer = pair
    peer.write(b"\x1b[18t\x1b[0c")
    assert peer.read(len(b"\x1b[8;25;80t\x1b[?1;2c")) == b"\x1b[8;25;80t\x1b[?1;2c"


def test_queries_are_not_answered_when_the_profile_says_so():
    a, b = socket.socketpair()
    console = Console.from_socket(a, profile=ConsoleProfile(answer_queries=False))
    try:
        b.sendall(b"\x1b[6nquery sent")
        console.expect("query sent", timeout=5)
        b.settimeout(0.3)
        with pytest.raises(socket.timeout):
            b.recv(100)
    finally:
        console.close()
        b.close()


def test_send_writes_in_chunks_with_pauses():
    a, b = socket.socketpair()
    console = Console.from_socket(a, profile=ConsoleProfile(chunk_size=4, chunk_delay=0.05))
    try:
        t0 = time.monotonic()
        console.send("0123456789ab")                # 3 chunks, 2 pauses
        assert time.monotonic() - t0 >= 0.1
        assert Peer(b).read(12) == b"0123456789ab"
    finally:
        console.close()
        b.close()


def test_sendline_and_sendcontrol(pair):
    console, peer = pair
    console.sendline("ls")
    console.sendcontrol("c")
    assert peer.read(4) == b"ls\n\x03"


def test_sendline_uses_the_profiles_newline():
    a, b = socket.socketpair()
    console = Console.from_socket(a, profile=ConsoleProfile(newline="\r"))
    try:
        console.sendline("root")
        assert Peer(b).read(5) == b"root\r"
    finally:
        console.close()
        b.close()


def test_mark_and_text_since_and_listeners(pair):
    console, peer = pair
    seen: list[str] = []
    console.add_listener(seen.append)
    peer.write("first ")
    console.expect("first", timeout=5)
    mark = console.mark()
    peer.write("\x1b[32msecond\x1b[0m third")
    console.expect("third", timeout=5)
    assert console.text_since(mark) == "second third"
    assert "".join(seen) == "first second third"
    assert console.tail(5) == "third"
    assert console.raw_tail().endswith(b"\x1b[0m third")


def test_console_works_over_a_pty_master():
    master, slave = os.openpty()
    tty.setraw(slave)
    console = Console.from_fd(master)
    try:
        os.write(slave, b"testguest login: ")
        console.expect(r"login: $", timeout=5)
        console.sendline("root")
        assert os.read(slave, 100) == b"root\n"
        os.close(slave)                             # the guest side goes away
        with pytest.raises(ConsoleClosed):
            console.expect("never", timeout=5)
    finally:
        console.close()


def test_expect_after_close_raises_console_closed(pair):
    console, _ = pair
    console.close()
    with pytest.raises(ConsoleClosed):
        console.expect("x", timeout=1)
    with pytest.raises(ConsoleClosed):
        console.send("x")


def test_connect_unix_gives_up_with_a_clear_error(tmp_path):
    with pytest.raises(ConsoleClosed) as exc:
        Console.connect_unix(tmp_path / "missing.sock", timeout=0.3)
    assert "missing.sock" in str(exc.value)


def test_connect_unix_reports_the_exit_probes_error(tmp_path):
    exited = QemuExited("QEMU exited early", returncode=1)
    with pytest.raises(QemuExited):
        Console.connect_unix(tmp_path / "missing.sock", timeout=5, exit_probe=lambda: exited)


def test_connect_unix_reads_a_listening_socket(tmp_path):
    path = str(tmp_path / "c.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    console = Console.connect_unix(path, timeout=5)
    conn, _ = server.accept()
    try:
        conn.sendall(b"hello from the guest")
        assert console.expect("guest", timeout=5).before == "hello from the "
    finally:
        console.close()
        conn.close()
        server.close()


def test_a_search_window_does_not_skip_a_match_early_in_a_big_chunk(pair):
    console, peer = pair
    peer.sock.sendall(b"x" * 100 + b"MARK" + b"y" * 20000 + b"END")
    time.sleep(0.2)                                 # let it all arrive as one queued piece
    assert len(console.expect("MARK", timeout=5, searchwindowsize=64).before) == 100
    assert console.expect("END", timeout=5, searchwindowsize=64).before == "y" * 20000


def test_crash_patterns_anchored_at_line_start_do_not_match_mid_line_across_chunks(pair):
    """The rescanned overlap may start in mid-line: ``^`` must not match there."""
    console, peer = pair
    # the second write makes the scan window start exactly at "[0]> " (mid-line)
    peer.write("z" * 200 + "[0]> " + "w" * 155, "x\n", "still alive\n", gap=0.2)
    console.expect("still alive", timeout=5)
    assert console.crash is None


def test_an_anchored_crash_pattern_at_a_line_start_in_the_overlap_is_still_found(pair):
    console, peer = pair
    peer.write("z" * 200 + "\n[0]> ", "x", gap=0.2)
    with pytest.raises(GuestDebugger):
        console.expect("never", timeout=5)


def test_send_gives_up_when_the_guest_side_stops_reading_input():
    a, b = socket.socketpair()
    console = Console.from_socket(a)
    try:
        t0 = time.monotonic()
        with pytest.raises(ConsoleTimeout) as exc:
            console.send(b"x" * (4 << 20), timeout=1.0)       # nobody reads b
        assert time.monotonic() - t0 < 3.0
        assert "took no console input" in str(exc.value)
    finally:
        console.close()
        b.close()


def test_a_blocked_send_does_not_stop_the_console_reading_output():
    """The drain thread must not wait for the write lock to answer a terminal query."""
    a, b = socket.socketpair()
    console = Console.from_socket(a)
    errors: list[BaseException] = []

    def send_until_closed():
        try:
            console.send(b"x" * (4 << 20))                    # nobody reads b: blocks
        except Exception as err:
            errors.append(err)
    sender = threading.Thread(target=send_until_closed, daemon=True)
    try:
        sender.start()
        time.sleep(0.5)
        b.sendall(b"\x1b[6nafter the query\n")
        console.expect("after the query", timeout=2)
    finally:
        console.close()
        sender.join(5)
        b.close()
    assert not sender.is_alive()
    assert isinstance(errors[0], ConsoleClosed)


def test_expect_without_crash_checks_reads_past_recorded_crash_text(pair):
    console, peer = pair
    peer.write("Kernel panic - not syncing: just text\nDONE\n")
    with pytest.raises(GuestPanic):
        console.expect("DONE", timeout=5)
    assert console.expect("DONE", timeout=5, check_crash=False).after == "DONE"
    assert isinstance(console.crash, GuestPanic)


# --- pacing of the drain thread ---------------------------------------------------------

def test_short_answers_are_read_at_once():
    from smartos_lab.machine.console import COALESCE_AFTER, coalesce_pause
    assert coalesce_pause(12, 0.0001, streaming=0) == 0.0          # a prompt
    assert coalesce_pause(12, 0.0001, streaming=COALESCE_AFTER) == 0.0


def test_a_slow_stream_gathers_for_at_most_a_millisecond():
    from smartos_lab.machine.console import COALESCE_AFTER, COALESCE_DELAY, coalesce_pause
    assert coalesce_pause(1, 0.004, streaming=COALESCE_AFTER + 1) == COALESCE_DELAY


def test_a_fast_stream_is_read_before_the_socket_fills():
    # 250 bytes/ms: a 1 ms pause would fill the socket (~250 one-byte writes) and stall
    # the guest's UART; the pause lets through at most COALESCE_CHUNK bytes
    from smartos_lab.machine.console import COALESCE_AFTER, COALESCE_CHUNK, coalesce_pause
    pause = coalesce_pause(250, 0.001, streaming=COALESCE_AFTER + 1)
    assert 0 < pause <= COALESCE_CHUNK / 250 * 0.001 + 1e-9
    assert COALESCE_CHUNK < 250


def test_big_reads_are_never_delayed():
    from smartos_lab.machine.console import COALESCE_AFTER, COALESCE_BELOW, coalesce_pause
    assert coalesce_pause(COALESCE_BELOW, 0.001, streaming=COALESCE_AFTER + 1) == 0.0
