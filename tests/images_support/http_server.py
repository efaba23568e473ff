"""An HTTP server on 127.0.0.1 with Range support and injectable faults."""
from __future__ import annotations

import re
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Served:
    data: bytes
    status: int = 200                 # anything else: sent as an error status, no body
    cut_after: int | None = None      # close the connection after this many body bytes...
    cuts: int = 1                     # ...for this many requests
    ignore_range: bool = False        # answer 200 with the whole file even to a Range request
    stall: float = 0.0                # seconds to wait after the headers before the body


@dataclass
class Request:
    path: str
    range: str | None
    status: int


class _QuietServer(ThreadingHTTPServer):
    """Cut connections are what the fault injection is for: don't print their tracebacks."""

    def handle_error(self, request, client_address) -> None:
        import sys
        if not isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, TimeoutError)):
            super().handle_error(request, client_address)


@dataclass
class FaultyServer:
    files: dict[str, Served] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    tls: tuple[str, str] | None = None        # (certfile, keyfile): serve https

    def __enter__(self) -> FaultyServer:
        self._stop = threading.Event()
        self._httpd = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def base(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def serve(self, path: str, data: bytes | str, **faults) -> Served:
        served = Served(data.encode() if isinstance(data, str) else data, **faults)
        self.files[path] = served
        return served

    def ranges(self, path: str) -> list[str | None]:
        return [r.range for r in self.requests if r.path == path]


def _handler_for(server: FaultyServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            served = server.files.get(self.path)
            rng = self.headers.get("Range")
            if served is None or served.status != 200:
                status = 404 if served is None else served.status
                server.requests.append(Request(self.path, rng, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data, start, status = served.data, 0, 200
            m = re.fullmatch(r"bytes=(\d+)-", rng or "")
            if m and not served.ignore_range:
                start = int(m[1])
                if start >= len(data):
                    server.requests.append(Request(self.path, rng, 416))
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            server.requests.append(Request(self.path, rng, status))
            body = data[start:]
            self.send_response(status)
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if served.stall:
                server._stop.wait(served.stall)
            if served.cut_after is not None and served.cuts > 0:
                served.cuts -= 1
                self.wfile.write(body[:served.cut_after])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler
