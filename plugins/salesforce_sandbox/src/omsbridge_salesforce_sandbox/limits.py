"""The org's daily API request budget: rolling 24 h count, ``Sforce-Limit-Info``, ``/limits``."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from .clock import Clock
from .errors import SalesforceError

_WINDOW_SECONDS = 24 * 3600


class ApiUsage:
    """Counts API calls in a rolling 24-hour window against a maximum."""

    def __init__(self, clock: Clock, maximum: int = 100_000) -> None:
        self.clock = clock
        self.maximum = maximum
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()

    def _prune(self) -> None:
        horizon = self.clock.timestamp() - _WINDOW_SECONDS
        while self._calls and self._calls[0] <= horizon:
            self._calls.popleft()

    @property
    def used(self) -> int:
        """Calls counted in the last 24 hours."""
        with self._lock:
            self._prune()
            return len(self._calls)

    def count(self) -> None:
        """Count one call, or refuse it with 403 REQUEST_LIMIT_EXCEEDED past the budget."""
        with self._lock:
            self._prune()
            if len(self._calls) >= self.maximum:
                raise SalesforceError(
                    "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", status=403
                )
            self._calls.append(self.clock.timestamp())

    def set(self, *, maximum: int | None = None, used: int | None = None) -> None:
        """Change the budget and/or pretend *used* calls were already made just now."""
        with self._lock:
            if maximum is not None:
                self.maximum = maximum
            if used is not None:
                now = self.clock.timestamp()
                self._calls = deque([now] * used)

    def header(self) -> str:
        """The ``Sforce-Limit-Info`` header value."""
        return f"api-usage={self.used}/{self.maximum}"

    def snapshot(self) -> list[float]:
        """The call timestamps (for persistence)."""
        with self._lock:
            return list(self._calls)

    def restore(self, calls: list[float]) -> None:
        """Restore call timestamps saved by :meth:`snapshot`."""
        with self._lock:
            self._calls = deque(calls)

    def limits_body(self, streaming_clients: int) -> dict[str, Any]:
        """The ``GET /limits`` body (daily API requests really counted; the rest nominal)."""
        used = self.used
        return {
            "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
            "DailyApiRequests": {"Max": self.maximum, "Remaining": max(self.maximum - used, 0)},
            "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DailyDurableStreamingApiEvents": {"Max": 10000, "Remaining": 10000},
            "DailyStreamingApiEvents": {"Max": 10000, "Remaining": 10000},
            "DataStorageMB": {"Max": 5, "Remaining": 5},
            "DurableStreamingApiConcurrentClients": {
                "Max": 20,
                "Remaining": max(20 - streaming_clients, 0),
            },
            "FileStorageMB": {"Max": 20, "Remaining": 20},
            "SingleEmail": {"Max": 15, "Remaining": 15},
            "StreamingApiConcurrentClients": {"Max": 20, "Remaining": 20},
        }
