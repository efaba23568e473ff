"""Network fixtures for download tests."""
from __future__ import annotations

import socket
import time

import pytest


@pytest.fixture
def unanswered_port():
    """A port whose listen backlog is full: the kernel drops further SYNs, so a connect
    hangs as it does towards an unroutable address (real unroutable addresses are
    intercepted by this sandbox's network)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fillers = []
    for _ in range(4):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        fillers.append(c)
    time.sleep(0.1)
    yield port
    for c in fillers:
        c.close()
    srv.close()
