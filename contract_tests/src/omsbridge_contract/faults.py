"""Client-side faults for harnesses whose backend talks HTTP through httpx.

A timeout leaves nothing to record (no response ever arrives), so a server-side delay cannot be
replayed from a cassette. :class:`HttpxTimeouts` raises ``httpx.ReadTimeout`` inside httpx's
transport instead, before the request reaches vcrpy or the network, so a timeout scenario runs
the same way when recording and when replaying::

    class MyHarness(Harness):
        faults = frozenset({Fault.TIMEOUT, ...})

        def __init__(self, **kw):
            super().__init__(**kw)
            self._timeouts = HttpxTimeouts()

        def inject_fault(self, fault):
            if fault is Fault.TIMEOUT:
                self._timeouts.arm()
            ...

        def clear_faults(self):
            self._timeouts.disarm()
"""

from __future__ import annotations

from typing import Any

__all__ = ["HttpxTimeouts"]


class HttpxTimeouts:
    """Make every httpx request in this process time out until :meth:`disarm` is called.

    Only requests sent through the backend's client are affected in practice, because the suite
    arms it inside a scenario, after the harness has done its own set-up requests.
    """

    def __init__(self) -> None:
        self._saved: list[tuple[type, str, Any]] = []
        self.timeouts = 0
        """How many requests were made to time out since the last :meth:`arm`."""

    @property
    def armed(self) -> bool:
        """True between :meth:`arm` and :meth:`disarm`."""
        return bool(self._saved)

    def arm(self) -> None:
        """Start raising ``httpx.ReadTimeout`` from every sync and async httpx transport."""
        import httpx

        if self._saved:
            return
        self.timeouts = 0

        def handle_request(transport: Any, request: httpx.Request) -> Any:
            self.timeouts += 1
            raise httpx.ReadTimeout(
                "simulated by the contract suite (Fault.TIMEOUT)", request=request
            )

        async def handle_async_request(transport: Any, request: httpx.Request) -> Any:
            self.timeouts += 1
            raise httpx.ReadTimeout(
                "simulated by the contract suite (Fault.TIMEOUT)", request=request
            )

        for cls, name, fake in (
            (httpx.HTTPTransport, "handle_request", handle_request),
            (httpx.AsyncHTTPTransport, "handle_async_request", handle_async_request),
        ):
            # Saved from the class dict, so vcrpy's own patch (if a cassette is open) comes back.
            self._saved.append((cls, name, cls.__dict__[name]))
            setattr(cls, name, fake)

    def disarm(self) -> None:
        """Stop the timeouts and put back whatever transport methods were there before."""
        while self._saved:
            cls, name, original = self._saved.pop()
            setattr(cls, name, original)
