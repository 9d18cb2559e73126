"""Listener metrics of one event feed (either transport)."""

from __future__ import annotations

import time
from typing import Any

import attrs

__all__ = ["FeedMetrics"]


@attrs.define
class FeedMetrics:
    """What a listener's metrics report for one feed."""

    connected: bool = False
    last_activity: float | None = None
    """``time.monotonic()`` of the last event or keepalive."""
    last_event: float | None = None
    reconnects: int = 0
    stalls: int = 0
    events: int = 0
    keepalives: int = 0

    def snapshot(self) -> dict[str, Any]:
        """The figures, ages in seconds."""
        now = time.monotonic()
        return {
            "connected": self.connected,
            "last_event_age": None if self.last_event is None else now - self.last_event,
            "last_activity_age": None if self.last_activity is None else now - self.last_activity,
            "reconnects": self.reconnects,
            "stalls": self.stalls,
            "events": self.events,
            "keepalives": self.keepalives,
        }
