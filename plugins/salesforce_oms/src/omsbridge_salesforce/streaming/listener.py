"""FOStatusChangedEvent over CometD, as the SPI's ``events(checkpoint, wait)``.

Checkpoints are strings:

* ``"12345@2026-11-22T10:15:00.000Z"``: resume after the event with replay id 12345, which
  Salesforce created at that time (a bare ``"12345"`` is accepted too);
* ``None``: from now (replay ``-1``);
* ``"catch-up"`` or ``"catch-up@TIME"`` (:data:`CATCH_UP`): the position is not known — the
  first read found no event yet, or the stored replay id was older than the 72-hour retention.
  Reading from it subscribes from now and first hands out one synthetic event per importable
  fulfillment order (``filter_query`` + ``statuses_to_process``) changed since TIME (all of
  them without a time), so nothing is missed.

The Bayeux session is kept across calls (one reading task per backend, on the process's event
loop shared by every merchant); a call with a
checkpoint other than the one the previous call returned (a restart, or a batch the caller did
not manage to handle) subscribes again from that checkpoint.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from omsbridge import (
    AuthFailed,
    BackendError,
    EventBatch,
    FulfillmentEvent,
    Rejected,
    TransientBackendError,
)
from omsbridge.logs import merchant_log
from omsbridge_salesforce.auth import BACKEND, SalesforceAuth, Token
from omsbridge_salesforce.reading import parse_datetime
from omsbridge_salesforce.streaming.bayeux import BayeuxError, BayeuxSession, BayeuxTransportError
from omsbridge_salesforce.streaming.bayeux_async import AsyncBayeuxClient
from omsbridge_salesforce.streaming.metrics import FeedMetrics
from omsbridge_salesforce.streaming.replay import NEWEST, ReplayExtension, is_invalid_replay
from omsbridge_salesforce.streaming.stream import EventStream

__all__ = [
    "CATCH_UP",
    "FO_CHANNEL",
    "FulfillmentFeed",
    "checkpoint_of",
    "event_from_message",
    "parse_checkpoint",
]

logger = logging.getLogger(__name__)

FO_CHANNEL = "/event/FOStatusChangedEvent"
"""The Order Management channel the seed's connector subscribes to."""

CATCH_UP = "catch-up"
"""The checkpoint meaning "position unknown: subscribe from now and catch up by query"."""

CLOCK_SKEW = timedelta(minutes=5)
"""Margin of a catch-up bound: a restart catches up from this long before the org's time the
subscription began (read from the org's ``Date`` header, never from our clock), so a change
made then is caught up twice at worst (dropped by event id), never missed."""

CLOCK_WARNING = timedelta(seconds=30)
"""Our clock and the org's disagreeing by more than this is logged as a warning."""

CatchUp = Callable[[datetime | None], Sequence[FulfillmentEvent]]
"""Returns the synthetic events of a catch-up: importable orders changed since a time (or all)."""


def stamp(moment: datetime) -> str:
    """A checkpoint's time: UTC, to the millisecond, ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (both
    transports; once per event on a pool thread)."""
    if moment.tzinfo is not UTC:  # events' times are UTC already: no copy per event
        moment = moment.astimezone(UTC)
    # isoformat: half the cost of strftime, the same text.
    return moment.isoformat(timespec="milliseconds")[:23] + "Z"


def checkpoint_of(replay_id: Any, created: datetime | None) -> str:
    """The checkpoint after an event: its replay id, and when Salesforce created it."""
    return f"{replay_id}@{stamp(created)}" if created is not None else str(replay_id)


def parse_checkpoint(checkpoint: str) -> tuple[int | None, datetime | None]:
    """(replay id or None for a catch-up marker, time or None) of a checkpoint string."""
    head, _, when = checkpoint.partition("@")
    try:
        moment = parse_datetime(when) if when else None
        return (None, moment) if head == CATCH_UP else (int(head), moment)
    except ValueError:
        raise Rejected(
            f"{checkpoint!r} is not a Salesforce event checkpoint (a replay id or {CATCH_UP!r})",
            code="BAD_CHECKPOINT",
            backend=BACKEND,
        ) from None


class _Bearer:
    """The REST client's token on CometD requests; remembers which token a request used.

    Called on the event loop: the token is the one the REST client holds (fetched on the
    caller's thread when the feed opens; renewed on the loop's executor)."""

    def __init__(self, auth: SalesforceAuth) -> None:
        self._auth = auth
        self.last: Token | None = None

    def __call__(self) -> str:
        """The ``Authorization`` header's value."""
        token = self._auth.token()
        self.last = token
        return f"Bearer {token.access_token}"


def event_from_message(message: dict[str, Any]) -> FulfillmentEvent | None:
    """A FOStatusChangedEvent message as a FulfillmentEvent (None when it names no order)."""
    data = message.get("data") or {}
    payload = data.get("payload") or {}
    event = data.get("event") or {}
    replay_id = event.get("replayId")
    if replay_id is None:
        return None
    created = parse_datetime(payload.get("CreatedDate"))
    return _fulfillment_event(payload, event, replay_id, created, checkpoint_of(replay_id, created))


def _fulfillment_event(
    payload: dict[str, Any],
    event: dict[str, Any],
    replay_id: Any,
    created: datetime | None,
    checkpoint: str,
) -> FulfillmentEvent | None:
    """The FulfillmentEvent of a message's parts, its time and checkpoint already read."""
    fo_id = payload.get("FulfillmentOrderId")
    if not fo_id or not payload.get("NewStatus"):
        return None
    uuid = event.get("EventUuid") or payload.get("EventUuid") or f"replay-{replay_id}"
    return FulfillmentEvent(
        event_id=str(uuid),
        fulfillment_order_id=str(fo_id),
        new_status=str(payload["NewStatus"]),
        checkpoint=checkpoint,
        old_status=payload.get("OldStatus"),
        # The event names the OrderSummary; the POS knows orders by the original Order's id
        # (the imported fulfillment order carries it), so it is left out here.
        order_id=None,
        occurred_at=created,
    )


class FulfillmentFeed:
    """One merchant's FOStatusChangedEvent feed (thread-safe; see the module doc).

    ``catch_up`` returns the synthetic events of a catch-up query; ``statuses`` (the config's
    ``statuses_to_process``) keeps only the events whose new status is one of them.
    """

    def __init__(
        self,
        auth: SalesforceAuth,
        api_version: str,
        catch_up: CatchUp,
        *,
        merchant_id: str = "-",
        statuses: Sequence[str] = (),
        channel: str = FO_CHANNEL,
        connect_timeout: float = 10.0,
        stall_timeout: float = 330.0,
        parse: Callable[[dict[str, Any], str], Any] | None = None,
    ) -> None:
        self._auth = auth
        self._parse = parse
        """(message, checkpoint) -> the listener's event, for channels other than FO events."""
        self.stall_timeout = stall_timeout
        self._version = api_version.lstrip("v")
        self._catch_up = catch_up
        self._statuses = frozenset(statuses)
        self.channel = channel
        self._connect_timeout = connect_timeout
        self.log = merchant_log(logger, merchant_id)
        self._lock = threading.Lock()
        self._stream: EventStream | None = None
        self._handed: str | None = None
        self._backlog: list[FulfillmentEvent] = []
        self._opened_at = datetime.now(UTC)
        self._warned_offset: timedelta | None = None
        self.catch_ups = 0
        """How many catch-up queries ran (for tests and metrics)."""
        self.metrics = FeedMetrics()
        self.on_ready: Callable[[], None] | None = None
        """Called from the event loop's thread when something arrives (see ``watch_events``)."""

    @property
    def url(self) -> str:
        """The org's CometD endpoint, ``{instance}/cometd/XX.X``."""
        return f"{self._auth.instance_url}/cometd/{self._version}"

    @property
    def client(self) -> AsyncBayeuxClient | None:
        """The Bayeux client of the current session, if one is open."""
        return self._stream.client if self._stream is not None else None

    def events(self, checkpoint: str | None, wait: float) -> EventBatch:
        """Events after ``checkpoint``, waiting up to ``wait`` seconds for the first one."""
        with self._lock:
            stream = self._stream
            if stream is not None and not stream.dead and self._stalled(stream):
                stream.close()
            if stream is None or stream.dead or checkpoint != self._handed:
                if stream is not None:
                    self.metrics.reconnects += 1
                stream = self._open(checkpoint)
                self.metrics.connected = True
            if self._backlog:
                events, self._backlog = tuple(self._backlog), []
                return EventBatch(events, self._handed)
            try:
                messages = stream.take(wait)
            except BackendError:
                raise
            except BayeuxError as exc:
                raise TransientBackendError(
                    f"streaming {self.channel}: {exc}", code="STREAMING", backend=BACKEND
                ) from exc
            except BayeuxTransportError as exc:
                raise TransientBackendError(
                    f"streaming {self.channel}: cannot reach Salesforce ({exc})",
                    code="CONNECTION",
                    backend=BACKEND,
                ) from exc
            return self._batch(messages)

    def _stalled(self, stream: EventStream) -> bool:
        """The watchdog: no answer (not even an empty long poll) for ``stall_timeout``."""
        silent = time.monotonic() - stream.last_activity
        if silent <= self.stall_timeout:
            return False
        self.metrics.stalls += 1
        self.log.warning(
            "streaming %s: no event and no long-poll answer for %.0f s; reconnecting",
            self.channel,
            silent,
        )
        return True

    def _batch(self, messages: list[dict[str, Any]]) -> EventBatch:
        self.metrics.last_activity = self._stream.last_activity if self._stream else None
        if messages:
            self.metrics.events += len(messages)
            self.metrics.last_event = time.monotonic()
        if not messages:
            if self._handed is None:
                # Nothing seen yet: a restart must not start from "now" again, but catch up
                # from when this subscription began (less a margin for clock skew).
                self._handed = f"{CATCH_UP}@{stamp(self._opened_at - CLOCK_SKEW)}"
            return EventBatch((), self._handed)
        events: list[Any] = []
        last: str | None = None
        for message in messages:
            data = message.get("data") or {}
            payload = data.get("payload") or {}
            parts = data.get("event") or {}
            replay_id = parts.get("replayId")
            if replay_id is not None:
                # Read once per message: the time and checkpoint serve the event too.
                created = parse_datetime(payload.get("CreatedDate"))
                last = checkpoint_of(replay_id, created)
            if self._parse is not None:
                parsed = self._parse(message, last) if last is not None else None
                if parsed is not None:
                    events.append(parsed)
                continue
            if replay_id is None or last is None:
                continue
            event = _fulfillment_event(payload, parts, replay_id, created, last)
            if event is None:
                continue
            if self._statuses and event.new_status not in self._statuses:
                self.log.debug("ignoring %s -> %s", event.fulfillment_order_id, event.new_status)
                continue
            events.append(event)
        # The batch ends at its last event (the SPI's rule); only a batch of ignored events
        # moves the checkpoint past them. Ignored events after the last one are not lost:
        # the session has read them, and a restart reads and ignores them again.
        if events:
            self._handed = events[-1].checkpoint
        elif last is not None:
            self._handed = last
        return EventBatch(tuple(events), self._handed)

    def _open(self, checkpoint: str | None) -> EventStream:
        self._close_stream()
        opened_at = datetime.now(UTC)
        replay_id, since = (
            parse_checkpoint(checkpoint) if checkpoint is not None else (NEWEST, None)
        )
        catch_up = replay_id is None
        stream = self._new_stream(NEWEST if replay_id is None else replay_id)
        try:
            stream.open()
        except BayeuxError as exc:
            stream.close()
            if not is_invalid_replay(exc):
                raise self._error(exc) from exc
            self.log.warning(
                "replay id %s is past Salesforce's retention window (%s); catching up with a "
                "query of the importable fulfillment orders changed since %s, then following "
                "live events from now",
                replay_id,
                exc.text,
                since.isoformat() if since else "ever",
            )
            stream = self._new_stream(NEWEST)
            try:
                stream.open()
            except BayeuxError as again:
                stream.close()
                raise self._error(again) from again
            except BayeuxTransportError as again:
                stream.close()
                raise self._unreachable(again) from again
            catch_up = True
        except BayeuxTransportError as exc:
            stream.close()
            raise self._unreachable(exc) from exc
        except BaseException:
            stream.close()
            raise
        self._stream = stream
        self._handed = checkpoint
        self._opened_at = self._org_time(stream.client, opened_at)
        if catch_up:
            # Subscribed first, queried second: a change in between is seen twice, never lost.
            self.catch_ups += 1
            self._backlog = list(self._catch_up(since))
            # Until a live event gives a replay id, a restart catches up again from ``since``.
            self._handed = f"{CATCH_UP}@{stamp(since)}" if since else CATCH_UP
            self.log.info(
                "catch-up query found %d importable fulfillment order(s); now following live "
                "events",
                len(self._backlog),
            )
        return stream

    def _org_time(self, client: BayeuxSession, local: datetime) -> datetime:
        """``local`` (our clock) as the org's clock read it, from the server's ``Date`` header;
        our own time only if no answer carried one. Warns when the two disagree."""
        offset = client.server_offset
        if offset is None:
            return local
        if abs(offset) > CLOCK_WARNING and (
            self._warned_offset is None or abs(offset - self._warned_offset) > CLOCK_WARNING
        ):
            self._warned_offset = offset
            self.log.warning(
                "this machine's clock is %.0f s %s Salesforce's (server Date header); event "
                "checkpoints and catch-up bounds use Salesforce's time, but fix the clock (NTP)",
                abs(offset.total_seconds()),
                "behind" if offset > timedelta(0) else "ahead of",
            )
        return local + offset

    def _new_stream(self, position: int) -> EventStream:
        replay = ReplayExtension()
        replay.set(self.channel, position)
        bearer = _Bearer(self._auth)

        def reauthenticate() -> None:
            self._auth.refresh(bearer.last)

        client = AsyncBayeuxClient(
            self.url,  # fetches the token (if none yet) here, not on the event loop
            authorization=bearer,
            extensions=[replay],
            on_unauthorized=reauthenticate,
            connect_timeout=self._connect_timeout,
        )
        stream = EventStream(client, self.channel)
        stream.on_ready = self._ready
        return stream

    def _ready(self) -> None:
        if self.on_ready is not None:
            self.on_ready()

    def _error(self, exc: BayeuxError) -> BackendError:
        failure = str(((exc.reply.get("ext") or {}).get("sfdc") or {}).get("failureReason") or "")
        if exc.code == 401 or failure.startswith("401"):
            return AuthFailed(
                f"streaming {self.channel}: {exc.error}", code="STREAMING_AUTH", backend=BACKEND
            )
        if exc.code == 400:
            return Rejected(
                f"streaming {self.channel}: {exc.error}", code="STREAMING", backend=BACKEND
            )
        return TransientBackendError(
            f"streaming {self.channel}: {exc.error}", code="STREAMING", backend=BACKEND
        )

    def _unreachable(self, exc: BayeuxTransportError) -> TransientBackendError:
        return TransientBackendError(
            f"streaming {self.channel}: cannot reach Salesforce ({exc})",
            code="CONNECTION",
            backend=BACKEND,
        )

    def _close_stream(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        self._backlog = []

    def close(self) -> None:
        """Disconnect (ends the background reader)."""
        with self._lock:
            self._close_stream()
