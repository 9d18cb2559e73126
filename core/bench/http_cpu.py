"""The CPU a benchmark's threads spend inside the HTTP client, told apart from omsbridge's own.

Shared by the export benchmarks (core/bench/bench_export.py and the Salesforce backend's
plugins/salesforce_oms/bench/bench_export.py): both split an exported order's CPU the same way.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx


class HttpCpu:
    """Counts requests and the CPU the calling threads spend in ``DirectClient.request``
    (omsbridge.http_direct: building the httpx request, httpcore, h11, the socket calls,
    reading the answer) and ``httpx.Client.request`` / ``send`` for what does not go through
    it. Patches those three methods for the rest of the process (a benchmark child's)."""

    def __init__(self) -> None:
        from omsbridge.http_direct import DirectClient

        self.count = 0
        self.seconds = 0.0
        self._lock = threading.Lock()
        self._inside = threading.local()

        def timed(call: Any) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                if getattr(self._inside, "on", False):  # request() calls send(): count once
                    return call(*args, **kwargs)
                self._inside.on = True
                started = time.thread_time()  # this thread's CPU: exact with many threads
                try:
                    return call(*args, **kwargs)
                finally:
                    self._inside.on = False
                    spent = time.thread_time() - started
                    with self._lock:
                        self.seconds += spent
                        self.count += 1

            return wrapper

        # Client.request calls send once per request (no redirects are followed): count in
        # whichever of the three is entered first.
        httpx.Client.send = timed(httpx.Client.send)  # type: ignore[method-assign]
        httpx.Client.request = timed(httpx.Client.request)  # type: ignore[method-assign]
        DirectClient.request = timed(DirectClient.request)  # type: ignore[method-assign]
