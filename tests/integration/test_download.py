"""download() against a real HTTP server on 127.0.0.1 with injected faults
(tests/images_support/http_server.py).  Nothing here touches the real mirror."""
import errno
import hashlib
import io
import os
import shutil
import socket
import subprocess
import time

import pytest

from smartos_lab.errors import ChecksumMismatch, DownloadError
from smartos_lab.images import http_download as download_mod
from smartos_lab.images.checksums import Checksum
from smartos_lab.images.http_download import download, fetch_text
from tests.images_support.http_server import FaultyServer
from tests.images_support.net import unanswered_port  # noqa: F401  (fixture)

DATA = os.urandom(3 << 20) + bytes(1 << 20)           # 4 MiB
SHA = Checksum("sha256", hashlib.sha256(DATA).hexdigest())


class Recorder:
    def __init__(self):
        self.events = []

    def start(self, label, total): self.events.append(("start", label, total))
    def update(self, done): self.events.append(("update", done))
    def finish(self): self.events.append(("finish",))


@pytest.fixture
def server():
    with FaultyServer() as s:
        yield s


def test_downloads_verify_and_report_progress(server, tmp_path):
    server.serve("/f.img.gz", DATA)
    rec = Recorder()
    got = download(server.url("/f.img.gz"), tmp_path / "f.img.gz", expected=SHA, progress=rec)
    assert got.read_bytes() == DATA
    assert not (tmp_path / "f.img.gz.part").exists()
    assert ("start", "downloading f.img.gz", len(DATA)) in rec.events
    assert ("update", len(DATA)) in rec.events
    assert rec.events[-1] == ("finish",)


def test_a_connection_cut_mid_file_is_resumed_with_a_range_request(server, tmp_path):
    server.serve("/f", DATA, cut_after=1_000_000)
    got = download(server.url("/f"), tmp_path / "f", expected=SHA, retry_delay=0)
    assert got.read_bytes() == DATA
    assert server.ranges("/f") == [None, "bytes=1000000-"]


def test_a_part_file_left_by_an_earlier_run_is_resumed(server, tmp_path):
    server.serve("/f", DATA)
    (tmp_path / "f.part").write_bytes(DATA[:123_456])
    download(server.url("/f"), tmp_path / "f", expected=SHA)
    assert (tmp_path / "f").read_bytes() == DATA
    assert server.ranges("/f") == ["bytes=123456-"]


def test_a_server_ignoring_range_restarts_the_file_cleanly(server, tmp_path):
    server.serve("/f", DATA, ignore_range=True)
    (tmp_path / "f.part").write_bytes(b"garbage that must not stay at the start" * 100)
    download(server.url("/f"), tmp_path / "f", expected=SHA)
    assert (tmp_path / "f").read_bytes() == DATA


def test_416_for_a_part_file_that_is_already_complete_finishes_without_data(server, tmp_path):
    server.serve("/f", DATA)
    (tmp_path / "f.part").write_bytes(DATA)
    download(server.url("/f"), tmp_path / "f", expected=SHA)
    assert (tmp_path / "f").read_bytes() == DATA
    assert [r.status for r in server.requests] == [416]


def test_416_for_an_overlong_part_file_starts_over(server, tmp_path):
    server.serve("/f", DATA)
    (tmp_path / "f.part").write_bytes(DATA + b"extra junk")
    download(server.url("/f"), tmp_path / "f", expected=SHA, retry_delay=0)
    assert (tmp_path / "f").read_bytes() == DATA
    assert [r.status for r in server.requests] == [416, 200]


def test_checksum_mismatch_names_expected_actual_and_url_and_deletes_only_the_part(server, tmp_path):
    server.serve("/f", DATA)
    (tmp_path / "f").write_bytes(b"the user's existing file")
    wrong = Checksum("sha256", "0" * 64)
    with pytest.raises(ChecksumMismatch) as e:
        download(server.url("/f"), tmp_path / "f", expected=wrong)
    msg = str(e.value)
    assert "0" * 64 in msg and SHA.hex in msg and server.url("/f") in msg
    assert not (tmp_path / "f.part").exists()
    assert (tmp_path / "f").read_bytes() == b"the user's existing file"


def test_md5_checksums_are_verified_too(server, tmp_path):
    server.serve("/f", DATA)
    download(server.url("/f"), tmp_path / "f", expected=Checksum("md5", hashlib.md5(DATA).hexdigest()))
    with pytest.raises(ChecksumMismatch, match="expected md5"):
        download(server.url("/f"), tmp_path / "g", expected=Checksum("md5", "1" * 32))


def test_404_names_the_url_and_leaves_nothing(server, tmp_path):
    with pytest.raises(DownloadError, match=r"HTTP 404 .*for http://127\.0\.0\.1:\d+/missing") as e:
        download(server.url("/missing"), tmp_path / "m")
    assert e.value.http_status == 404
    assert os.listdir(tmp_path) == []


def test_server_errors_are_retried_then_reported(server, tmp_path):
    server.serve("/f", DATA, status=503)
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match="broke off 2 times .*HTTP 503"):
        download(server.url("/f"), tmp_path / "f", attempts=2, retry_delay=0)
    assert len(server.requests) == 2 and time.monotonic() - t0 < 5


def test_repeated_cuts_give_up_but_keep_the_part_for_the_next_run(server, tmp_path):
    server.serve("/f", DATA, cut_after=500_000, cuts=2)
    with pytest.raises(DownloadError, match="partial file .*f.part is kept; run again to resume"):
        download(server.url("/f"), tmp_path / "f", attempts=2, retry_delay=0)
    assert (tmp_path / "f.part").stat().st_size == 1_000_000
    download(server.url("/f"), tmp_path / "f", expected=SHA)
    assert (tmp_path / "f").read_bytes() == DATA


def test_a_stalled_server_times_out_within_the_read_timeout(server, tmp_path):
    server.serve("/slow", DATA, stall=30)
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match="timed out"):
        download(server.url("/slow"), tmp_path / "s", timeout=0.5, attempts=2, retry_delay=0)
    assert time.monotonic() - t0 < 5


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_closed_port_fails_at_once_naming_the_url(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/SmartOS/latest"
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match=f"cannot reach .*{url}.*refused"):
        download(url, tmp_path / "x")
    assert time.monotonic() - t0 < 2


def test_a_host_that_never_answers_fails_within_the_connect_timeout(unanswered_port, tmp_path):  # noqa: F811
    url = f"http://127.0.0.1:{unanswered_port}/SmartOS/latest"
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match=f"cannot reach .*{url}: timed out"):
        fetch_text(url, connect_timeout=1.0)
    assert 0.9 < time.monotonic() - t0 < 3


def test_disk_full_during_download_deletes_the_part_and_says_so(server, tmp_path, monkeypatch):
    server.serve("/f", DATA)
    real_open = open

    class FullDisk(io.RawIOBase):
        """A file that fails with ENOSPC after 1 MiB, like a full filesystem."""
        def __init__(self, path, mode):
            self.f = real_open(path, mode, buffering=0)
        def writable(self): return True
        def write(self, b):
            if self.f.tell() + len(b) > 1 << 20:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self.f.write(b)
        def close(self):
            self.f.close()
            super().close()

    monkeypatch.setattr(download_mod, "open", lambda p, m, buffering=-1: FullDisk(p, m), raising=False)
    with pytest.raises(DownloadError, match="no space left .*partial file f.part was deleted"):
        download(server.url("/f"), tmp_path / "f")
    assert os.listdir(tmp_path) == []


@pytest.fixture
def small_tmpfs(tmp_path):
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def test_disk_full_on_a_real_small_filesystem(server, small_tmpfs):
    server.serve("/f", DATA)
    with pytest.raises(DownloadError, match="no space left"):
        download(server.url("/f"), small_tmpfs / "f")
    assert os.listdir(small_tmpfs) == []


@pytest.fixture
def self_signed_cert(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return str(cert), str(key)


def test_https_certificates_are_verified(self_signed_cert, tmp_path, monkeypatch):
    with FaultyServer(tls=self_signed_cert) as server:
        server.serve("/f", DATA, cut_after=1_000_000)
        with pytest.raises(DownloadError,
                           match=f"cannot reach .*{server.url('/f')}.*CERTIFICATE_VERIFY_FAILED"):
            download(server.url("/f"), tmp_path / "f")
        assert server.requests == []
        monkeypatch.setenv("SSL_CERT_FILE", self_signed_cert[0])     # now the certificate is trusted
        download(server.url("/f"), tmp_path / "f", expected=SHA, retry_delay=0)
        assert server.ranges("/f") == [None, "bytes=1000000-"]
