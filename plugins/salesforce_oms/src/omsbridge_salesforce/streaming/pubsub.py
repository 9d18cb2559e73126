"""FOStatusChangedEvent over Salesforce's Pub/Sub API (gRPC), as the SPI's ``events``.

The subscription runs on the process's :class:`~omsbridge_salesforce.streaming.hub.Hub` (one
event loop for every merchant); what it receives waits in a queue that ``events(checkpoint,
wait)`` reads, like the CometD feed's. Protocol, after Salesforce's Pub/Sub API guide:

* ``Subscribe`` with the metadata headers ``accesstoken``, ``instanceurl`` and ``tenantid`` (the
  org id, from the token response's identity URL); CUSTOM replay from the stored replay id,
  LATEST on a first start;
* pull flow control: ``num_requested`` events at a time, topped up when half are delivered;
* Avro payloads decoded with the schema ``GetSchema`` gives, cached by schema id;
* an auth error (``sfdc.platform.eventbus.grpc.service.auth.error`` or UNAUTHENTICATED) gets a
  new token and resubscribes from the last replay id; a refused login reaches the caller;
* the keepalive's ``latest_replay_id`` becomes the checkpoint, so a quiet channel never ages
  past the 72-hour retention;
* ``sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted`` → subscribe from LATEST
  and catch up by query (as the CometD feed does for an invalid replay id);
* a stall watchdog: no event and no keepalive within ``stall_timeout`` → reconnect (logged,
  counted in :attr:`PubSubFeed.metrics`).

Checkpoints are ``"ps:<replay id hex>@<event time>"``. A CometD checkpoint (the transport was
switched) cannot be resumed here: it is caught up by query from its time, as is ``catch-up``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from io import BytesIO
from typing import Any, NamedTuple

import fastavro
import grpc

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
from omsbridge_salesforce.streaming.hub import Hub, TellsReader, shared_hub
from omsbridge_salesforce.streaming.listener import (
    CATCH_UP,
    CLOCK_SKEW,
    FO_CHANNEL,
    CatchUp,
    stamp,
)
from omsbridge_salesforce.streaming.metrics import FeedMetrics
from omsbridge_salesforce.streaming.pubsub_api import pubsub_api_pb2 as pb
from omsbridge_salesforce.streaming.pubsub_api import pubsub_api_pb2_grpc as pb_grpc

__all__ = [
    "AUTH_ERROR",
    "PUBSUB_PREFIX",
    "REPLAY_CORRUPTED",
    "PubSubFeed",
    "pubsub_checkpoint",
]

logger = logging.getLogger(__name__)

PUBSUB_PREFIX = "ps:"
"""Marks a Pub/Sub checkpoint (its replay id is opaque bytes, kept as hex)."""
REPLAY_CORRUPTED = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"
AUTH_ERROR = "sfdc.platform.eventbus.grpc.service.auth.error"
_CUSTOM = pb.ReplayPreset.CUSTOM  # looked up once: the enum wrapper's getattr is not free


def pubsub_checkpoint(replay_id: bytes, created: datetime | None) -> str:
    """The checkpoint after a Pub/Sub event (or keepalive): replay id and the event's time."""
    head = PUBSUB_PREFIX + replay_id.hex()
    return f"{head}@{stamp(created)}" if created is not None else head


def _parse(checkpoint: str) -> tuple[bytes | None, datetime | None]:
    """(replay id, or None to catch up; time) of a checkpoint of either transport."""
    head, _, when = checkpoint.partition("@")
    try:
        moment = parse_datetime(when) if when else None
        if head.startswith(PUBSUB_PREFIX):
            return bytes.fromhex(head[len(PUBSUB_PREFIX) :]), moment
        if head == CATCH_UP or head.isdigit():
            # A CometD replay id means nothing to Pub/Sub: catch up from its time.
            return None, moment
    except ValueError:
        pass
    raise Rejected(
        f"{checkpoint!r} is not a Salesforce event checkpoint (ps:<replay id>, a CometD replay "
        f"id or {CATCH_UP!r})",
        code="BAD_CHECKPOINT",
        backend=BACKEND,
    )


class _Item(NamedTuple):
    """A received event (or a keepalive when ``record`` is None); a tuple: cheap per event."""

    replay_id: bytes
    record: dict[str, Any] | None
    event_id: str = ""


class _Resume:
    """Where a subscription resumes: the last replay id received (and the preset to use)."""

    __slots__ = ("position", "preset", "received")

    def __init__(self, preset: int, position: bytes) -> None:
        self.preset = preset
        self.position = position
        self.received = False
        """Events came since the caller last looked (its failure count starts over)."""


class _Corrupted(Exception):
    """The replay id cannot be resumed from (past retention)."""


class PubSubFeed(TellsReader):
    """One merchant's FOStatusChangedEvent feed over Pub/Sub (thread-safe).

    ``catch_up`` and ``statuses`` as for the CometD feed. ``on_ready`` (optional) is called,
    from the hub's thread, whenever something arrives: an event-driven listener polls then."""

    def __init__(
        self,
        auth: SalesforceAuth,
        endpoint: str,
        catch_up: CatchUp,
        *,
        tls: bool = True,
        root_certificates: bytes | None = None,
        merchant_id: str = "-",
        statuses: Sequence[str] = (),
        topic: str = FO_CHANNEL,
        batch_size: int = 100,
        stall_timeout: float = 330.0,
        connect_timeout: float = 10.0,
        network_retries: int = 5,
        hub: Hub | None = None,
        parse: Callable[[dict[str, Any], str, str, datetime | None], Any] | None = None,
    ) -> None:
        self._auth = auth
        self.endpoint = endpoint
        self._tls = tls
        self._roots = root_certificates
        self._catch_up = catch_up
        self._statuses = frozenset(statuses)
        self.topic = topic
        self._batch_size = batch_size
        self.stall_timeout = stall_timeout
        self._connect_timeout = connect_timeout
        self._network_retries = network_retries
        self._hub = hub or shared_hub()
        self._parse = parse
        """Turns a record of another topic into the listener's event (None: skipped)."""
        self.log = merchant_log(logger, merchant_id)
        self.on_ready: Callable[[], None] | None = None
        self.metrics = FeedMetrics()
        self.catch_ups = 0
        self._lock = threading.Lock()
        # The queue's lock, taken directly (a C call) on the per-event paths; the condition
        # on it is notified only when a reader waits (``_waiting``): a pool reads with wait=0.
        self._qlock = threading.Lock()
        self._cond = threading.Condition(self._qlock)
        self._waiting = 0
        self._queue: deque[_Item] = deque()
        self._failure: BaseException | None = None
        self._task: Any = None
        self._task_done = True
        self._told = False  # a call of on_ready is queued on the hub (touched there only)
        self._generation = 0
        self._established = threading.Event()
        self._handed: str | None = None
        self._backlog: list[FulfillmentEvent] = []
        self._opened_at = datetime.now(UTC)

    # -- the SPI side (caller's thread) -----------------------------------------------------

    @property
    def open(self) -> bool:
        """Whether a subscription is running."""
        # Not Future.done() (a lock round per read): a done-callback sets the flag.
        return self._task is not None and not self._task_done

    def events(self, checkpoint: str | None, wait: float) -> EventBatch:
        """Events after ``checkpoint``, waiting up to ``wait`` seconds for the first one."""
        with self._lock:
            if not self.open or checkpoint != self._handed:
                self._open(checkpoint)
            if self._backlog:
                events, self._backlog = tuple(self._backlog), []
                return EventBatch(events, self._handed)
            try:
                items = self._take(wait)
            except _Corrupted:
                self._open_catching_up(self._handed)
                events, self._backlog = tuple(self._backlog), []
                return EventBatch(events, self._handed)
            return self._batch(items)

    def _take(self, wait: float, limit: int = 500) -> list[_Item]:
        with self._qlock:
            queue = self._queue
            if not queue and self._failure is None:
                if wait <= 0:
                    return []
                deadline = time.monotonic() + wait
                self._waiting += 1
                try:
                    while not queue and self._failure is None:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            return []
                        self._cond.wait(remaining)
                finally:
                    self._waiting -= 1
            if len(queue) <= limit:
                items = list(queue)
                queue.clear()
            else:
                items = [queue.popleft() for _ in range(limit)]
            if not items and self._failure is not None:
                failure, self._failure = self._failure, None
                self._stop_subscription()
                raise failure
            return items

    def _batch(self, items: list[_Item]) -> EventBatch:
        if not items:
            if self._handed is None:
                self._handed = f"{CATCH_UP}@{stamp(self._opened_at - CLOCK_SKEW)}"
            return EventBatch((), self._handed)
        events: list[Any] = []
        last: str | None = None
        for item in items:
            record = item.record
            if record is None:  # a keepalive: the position moves, nothing to handle
                # It carries no time: ours, less the skew margin, bounds a later catch-up.
                last = pubsub_checkpoint(item.replay_id, datetime.now(UTC) - CLOCK_SKEW)
                continue
            created = _created(record)
            last = pubsub_checkpoint(item.replay_id, created)
            if self._parse is not None:
                parsed = self._parse(
                    record,
                    str(item.event_id or record.get("EventUuid") or item.replay_id.hex()),
                    last,
                    created,
                )
                if parsed is not None:
                    events.append(parsed)
                continue
            fo_id, new_status = record.get("FulfillmentOrderId"), record.get("NewStatus")
            if not fo_id or not new_status:
                continue
            if self._statuses and new_status not in self._statuses:
                self.log.debug("ignoring %s -> %s", fo_id, new_status)
                continue
            events.append(
                FulfillmentEvent(
                    event_id=str(item.event_id or record.get("EventUuid") or item.replay_id.hex()),
                    fulfillment_order_id=str(fo_id),
                    new_status=str(new_status),
                    checkpoint=last,
                    old_status=record.get("OldStatus"),
                    order_id=None,
                    occurred_at=created,
                )
            )
        if events:
            self._handed = events[-1].checkpoint
        elif last is not None:
            self._handed = last
        return EventBatch(tuple(events), self._handed)

    def _open(self, checkpoint: str | None) -> None:
        replay_id, since = _parse(checkpoint) if checkpoint is not None else (b"", None)
        if replay_id is None:
            self._open_catching_up(checkpoint, since)
            return
        preset = pb.ReplayPreset.CUSTOM if replay_id else pb.ReplayPreset.LATEST
        self._start(preset, replay_id)
        try:
            self._wait_established()
        except _Corrupted:
            self.log.warning(
                "replay id %s is past Salesforce's retention window; catching up with a query "
                "of the importable fulfillment orders changed since %s, then following live "
                "events from now",
                replay_id.hex(),
                since.isoformat() if since else "ever",
            )
            self._open_catching_up(checkpoint, since)
            return
        self._handed = checkpoint

    def _open_catching_up(self, checkpoint: str | None, since: datetime | None = None) -> None:
        if since is None and checkpoint is not None:
            since = _parse_time(checkpoint)
        self._start(pb.ReplayPreset.LATEST, b"")
        self._wait_established()
        # Subscribed first, queried second: a change in between is seen twice, never lost.
        self.catch_ups += 1
        self._backlog = list(self._catch_up(since))
        self._handed = f"{CATCH_UP}@{stamp(since)}" if since else CATCH_UP
        self.log.info(
            "catch-up query found %d importable fulfillment order(s); now following live events",
            len(self._backlog),
        )

    def _wait_established(self) -> None:
        if not self._established.wait(self._connect_timeout):
            with self._cond:
                failure = self._failure
            if failure is None:
                # No answer yet: the subscription goes on in the background; errors come later.
                self.log.warning(
                    "Pub/Sub subscription to %s not confirmed within %.1f s",
                    self.topic,
                    self._connect_timeout,
                )
                return
        with self._cond:
            failure, self._failure = self._failure, None
        if failure is not None:
            self._stop_subscription()
            raise failure

    def _start(self, preset: int, replay_id: bytes) -> None:
        self._stop_subscription()
        self._opened_at = datetime.now(UTC)
        self._established.clear()
        with self._cond:
            self._queue.clear()
            self._failure = None
        self._generation += 1
        self._task_done = False
        self._task = self._hub.submit(self._run(self._generation, preset, replay_id))
        self._task.add_done_callback(self._ended)

    def _ended(self, task: Any) -> None:
        if task is self._task:
            self._task_done = True

    def _stop_subscription(self) -> None:
        task, self._task = self._task, None
        self._generation += 1
        if task is not None and not task.done():
            task.cancel()
        self.metrics.connected = False
        self._backlog = []

    def close(self) -> None:
        """End the subscription."""
        with self._lock:
            self._stop_subscription()

    # -- the subscription (hub's loop) ------------------------------------------------------

    async def _run(self, generation: int, preset: int, replay_id: bytes) -> None:
        failures = 0
        resume = _Resume(preset, replay_id)
        token: Token | None = None
        while generation == self._generation:
            try:
                token = await asyncio.get_running_loop().run_in_executor(None, self._auth.token)
                try:
                    await self._subscribe(token, resume)
                finally:
                    if resume.received:  # events came: the errors before do not count
                        failures = 0
                        resume.received = False
                # The stream ended (server closed it, or the stall watchdog): resubscribe.
                await asyncio.sleep(0.1)
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                code = _error_code(exc)
                if code == REPLAY_CORRUPTED:
                    self._fail(_Corrupted(str(exc.details())))
                    return
                if code == AUTH_ERROR or exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                    try:
                        await asyncio.get_running_loop().run_in_executor(
                            None, self._auth.refresh, token
                        )
                    except BaseException as refused:
                        self._fail(refused)
                        return
                    self.log.info("Pub/Sub session expired; got a new token, resubscribing")
                    failures += 1
                    if failures > self._network_retries:
                        self._fail(
                            AuthFailed(
                                f"Pub/Sub {self.topic}: {exc.details()}",
                                code="STREAMING_AUTH",
                                backend=BACKEND,
                            )
                        )
                        return
                    continue
                failures += 1
                if failures > self._network_retries or exc.code() in (
                    grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.NOT_FOUND,
                    grpc.StatusCode.PERMISSION_DENIED,
                ):
                    self._fail(_transport_error(self.topic, exc))
                    return
                delay = min(10.0, 0.25 * 2 ** (failures - 1))
                self.log.warning(
                    "Pub/Sub %s: %s (%s); reconnecting in %.1f s",
                    self.topic,
                    exc.code().name,
                    exc.details(),
                    delay,
                )
                await asyncio.sleep(delay)
            except BackendError as exc:  # the token endpoint refused or was unreachable
                self._fail(exc)
                return
            self.metrics.connected = False
            if generation == self._generation:
                self.metrics.reconnects += 1

    async def _subscribe(self, token: Token, resume: _Resume) -> None:
        """One Subscribe call, until the stream ends; ``resume`` follows what was received (a
        plain coroutine, not a generator yielding per response: one step less per event)."""
        metadata = (
            ("accesstoken", token.access_token),
            ("instanceurl", token.instance_url),
            ("tenantid", token.org_id),
        )
        stub = pb_grpc.PubSubStub(self._hub.channel(self.endpoint, self._tls, self._roots))
        requests: asyncio.Queue[pb.FetchRequest | None] = asyncio.Queue()
        requests.put_nowait(
            pb.FetchRequest(
                topic_name=self.topic,
                replay_preset=resume.preset,
                replay_id=resume.position,
                num_requested=self._batch_size,
            )
        )

        async def outgoing() -> AsyncIterator[pb.FetchRequest]:
            while True:
                request = await requests.get()
                if request is None:
                    return
                yield request

        call = stub.Subscribe(outgoing(), metadata=metadata)
        try:
            await call.initial_metadata()
            if not call.done():
                self._connected()
            watchdog = asyncio.ensure_future(self._watch_stall(call))
            # Per event: locals, not attribute lookups (the hub's loop carries every merchant).
            metrics, read, put, eof = self.metrics, call.read, self._put, grpc.aio.EOF
            established = self._established.is_set()
            low_water = self._batch_size // 2
            while True:
                # No wait_for per read (a task and a timer per event): the watchdog cancels a
                # call that stayed silent past stall_timeout.
                try:
                    response = await read()
                except asyncio.CancelledError:
                    if watchdog.done() and not watchdog.cancelled() and watchdog.result():
                        return  # the watchdog ended a silent call: reconnect
                    raise
                if response is eof:
                    return
                if not established:
                    self._connected()
                    established = True
                now = time.monotonic()
                metrics.last_activity = now
                received = response.events
                if received:
                    items = []
                    for consumer in received:
                        event = consumer.event
                        schema_id = event.schema_id
                        schema = _SCHEMAS.get(schema_id)
                        if schema is None:
                            schema = await self._schema(stub, metadata, schema_id)
                        record = _read(BytesIO(event.payload), schema, None)
                        items.append(
                            _Item(
                                consumer.replay_id,
                                record if isinstance(record, dict) else {},
                                event.id,
                            )
                        )
                    metrics.events += len(items)
                    metrics.last_event = now
                    put(items)
                    resume.position, resume.preset = items[-1].replay_id, _CUSTOM
                    resume.received = True
                elif response.latest_replay_id:
                    metrics.keepalives += 1
                    put([_Item(response.latest_replay_id, None)])
                    resume.position, resume.preset = response.latest_replay_id, _CUSTOM
                if response.pending_num_requested <= low_water:
                    await self._backpressure()
                    requests.put_nowait(
                        pb.FetchRequest(
                            topic_name=self.topic,
                            num_requested=self._batch_size - response.pending_num_requested,
                        )
                    )
        finally:
            requests.put_nowait(None)
            call.cancel()
            if "watchdog" in locals():
                watchdog.cancel()

    async def _watch_stall(self, call: Any) -> bool:
        """Cancel ``call`` when neither an event nor a keepalive came for ``stall_timeout``
        seconds; True if it did (the read loop then reconnects)."""
        started = time.monotonic()
        while not call.done():
            quiet = time.monotonic() - max(started, self.metrics.last_activity or 0.0)
            if quiet >= self.stall_timeout:
                self.metrics.stalls += 1
                self.log.warning(
                    "Pub/Sub %s: no event and no keepalive for %.0f s; reconnecting",
                    self.topic,
                    self.stall_timeout,
                )
                call.cancel()
                return True
            await asyncio.sleep(self.stall_timeout - quiet)
        return False

    def _connected(self) -> None:
        self.metrics.connected = True
        self._established.set()

    async def _backpressure(self, limit: int = 10_000) -> None:
        # Ask for more only when the reader keeps up: memory stays bounded.
        while len(self._queue) > limit:
            await asyncio.sleep(0.05)

    async def _schema(self, stub: pb_grpc.PubSubStub, metadata: Any, schema_id: str) -> Any:
        """The parsed Avro schema of ``schema_id`` (GetSchema once per process, then cached)."""
        info = await stub.GetSchema(pb.SchemaRequest(schema_id=schema_id), metadata=metadata)
        schema = fastavro.parse_schema(json.loads(info.schema_json))
        if len(_SCHEMAS) >= _SCHEMAS_KEPT:
            _SCHEMAS.pop(next(iter(_SCHEMAS)))
        _SCHEMAS[schema_id] = schema
        return schema

    def _put(self, items: list[_Item]) -> None:
        with self._qlock:
            self._queue.extend(items)
            if self._waiting:
                self._cond.notify_all()
        self._ready()

    def _fail(self, error: BaseException) -> None:
        self.metrics.connected = False
        with self._cond:
            self._failure = error
            self._cond.notify_all()
        self._established.set()
        self._ready()


_read = fastavro.schemaless_reader

_SCHEMAS: dict[str, Any] = {}
"""Parsed Avro schemas by schema id, shared by every feed of the process: the id is the
schema's fingerprint (a hash of the schema, says pubsub_api.proto), so one id is one schema
whichever org sent it — 1,000 merchants on one event type ask GetSchema once, not 1,000
times. Only touched on the hub's event loop."""
_SCHEMAS_KEPT = 256


def _created(record: dict[str, Any]) -> datetime | None:
    value = record.get("CreatedDate")
    if isinstance(value, int):
        return datetime.fromtimestamp(value / 1000, UTC)
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return parse_datetime(value) if isinstance(value, str) else None


def _parse_time(checkpoint: str) -> datetime | None:
    _, _, when = checkpoint.partition("@")
    try:
        return parse_datetime(when) if when else None
    except ValueError:
        return None


def _error_code(exc: grpc.aio.AioRpcError) -> str:
    for key, value in exc.trailing_metadata() or ():
        if key == "error-code":
            return str(value)
    return ""


def _transport_error(topic: str, exc: grpc.aio.AioRpcError) -> BackendError:
    message = f"Pub/Sub {topic}: {exc.code().name}: {exc.details()}"
    if exc.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
        return Rejected(message, code="STREAMING", backend=BACKEND)
    if exc.code() == grpc.StatusCode.PERMISSION_DENIED:
        return AuthFailed(message, code="STREAMING_AUTH", backend=BACKEND)
    return TransientBackendError(message, code="CONNECTION", backend=BACKEND)
