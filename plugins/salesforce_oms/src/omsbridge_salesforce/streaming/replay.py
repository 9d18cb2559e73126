"""Salesforce's replay extension: subscribe from a replay id, remember the last one received."""

from __future__ import annotations

import re
import threading
from typing import Any

from omsbridge_salesforce.streaming.bayeux import BayeuxError, Extension

__all__ = ["EARLIEST", "NEWEST", "ReplayExtension", "is_invalid_replay"]

NEWEST = -1
"""Replay value: only events published from now on."""
EARLIEST = -2
"""Replay value: every event still retained (72 hours)."""

_INVALID = re.compile(r"replayId .* you provided was invalid", re.IGNORECASE)


def is_invalid_replay(error: BayeuxError) -> bool:
    """Whether a subscribe failed because the replay id is outside the retention window."""
    return error.channel == "/meta/subscribe" and bool(_INVALID.search(error.error))


class ReplayExtension(Extension):
    """Puts ``ext.replay = {channel: id}`` on each subscribe, and follows the ids delivered.

    After a re-handshake (server restart, expired token) the client re-subscribes from the last
    event it received, so nothing is skipped and nothing is delivered twice.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._positions: dict[str, int] = {}

    def set(self, channel: str, replay_id: int) -> None:
        """Subscribe ``channel`` from ``replay_id`` (an event's id, NEWEST or EARLIEST)."""
        with self._lock:
            self._positions[channel] = replay_id

    def position(self, channel: str) -> int | None:
        """The replay id a (re-)subscription of ``channel`` starts after."""
        with self._lock:
            return self._positions.get(channel)

    def outgoing(self, message: dict[str, Any]) -> None:
        """Add the replay position to subscribe messages."""
        if message.get("channel") != "/meta/subscribe":
            return
        channel = message.get("subscription")
        position = self.position(str(channel))
        if position is None:
            return
        ext = dict(message.get("ext") or {})
        ext["replay"] = {channel: position}
        message["ext"] = ext

    def incoming(self, message: dict[str, Any]) -> None:
        """Remember the replay id of each delivered event."""
        channel = message.get("channel")
        data = message.get("data")
        event = data.get("event") if isinstance(data, dict) else None
        if not isinstance(event, dict) or not isinstance(channel, str):
            return
        replay_id = event.get("replayId")
        if isinstance(replay_id, int) and not isinstance(replay_id, bool):
            with self._lock:
                self._positions[channel] = replay_id
