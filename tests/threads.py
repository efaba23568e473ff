"""Running one test worker in several threads at once."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable


def run_in_threads(worker: Callable[[int], None], count: int, timeout: float) -> list[BaseException]:
    """Run ``worker(0)`` ... ``worker(count - 1)`` each in a thread of its own, all at once;
    return what they raised.  A thread still running after ``timeout`` fails the test."""
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            worker(n)
        except BaseException as exc:                    # handed to the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(count)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"threads still running after {timeout:g} s: {stuck}"
    return errors
