"""A controllable clock, so tests can expire tokens and events without sleeping."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class Clock:
    """Wall-clock time plus an adjustable offset; optionally frozen at one instant.

    Every time-dependent rule of the sandbox (token expiry, the rolling 24 h API budget,
    event retention, CometD reconnect timeouts) reads this clock, never ``datetime.now``.
    """

    def __init__(self, *, frozen_at: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        self._frozen: datetime | None = frozen_at

    def now(self) -> datetime:
        """The sandbox's current time (timezone-aware, UTC)."""
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return datetime.now(UTC) + self._offset

    def timestamp(self) -> float:
        """The sandbox's current time as epoch seconds."""
        return self.now().timestamp()

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward (or back, if negative) and return the new time."""
        with self._lock:
            if self._frozen is not None:
                self._frozen += timedelta(seconds=seconds)
            else:
                self._offset += timedelta(seconds=seconds)
        return self.now()

    def set(self, when: datetime) -> datetime:
        """Jump to *when* (keeps running from there unless frozen)."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        with self._lock:
            if self._frozen is not None:
                self._frozen = when
            else:
                self._offset = when - datetime.now(UTC)
        return self.now()

    def freeze(self) -> datetime:
        """Stop the clock at the current instant."""
        now = self.now()
        with self._lock:
            self._frozen = now
        return now

    def unfreeze(self) -> datetime:
        """Let the clock run again from where it was frozen."""
        with self._lock:
            if self._frozen is not None:
                self._offset = self._frozen - datetime.now(UTC)
                self._frozen = None
        return self.now()

    @property
    def frozen(self) -> bool:
        """Whether the clock is frozen."""
        return self._frozen is not None
