"""The Pub/Sub API (gRPC) endpoint, serving the same :class:`EventBus` as CometD.

Like Salesforce's ``api.pubsub.salesforce.com``: every call carries the metadata headers
``accesstoken``, ``instanceurl`` and ``tenantid`` (the org id); ``Subscribe`` takes a first
``FetchRequest`` naming the topic and the replay preset (LATEST, EARLIEST, or CUSTOM with a
replay id), then delivers at most as many events as the client has requested
(``num_requested``, pull flow control); payloads are Avro binary, their schema given by
``GetSchema``. A quiet subscription gets an empty ``FetchResponse`` carrying
``latest_replay_id`` every ``pubsub_keepalive`` seconds. Errors end the stream with a gRPC
status and the custom error code in the trailer ``error-code``, as Salesforce documents
(``sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted`` for a replay id past
retention). Replay ids are the bus's (the CometD ids) as 8 big-endian bytes: one event has one
position whichever endpoint delivers it.

The server runs grpc's asyncio server on its own thread and event loop, so a thousand open
subscriptions cost no thread each.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import json
import secrets
import threading
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import fastavro
import grpc

from .clock import Clock
from .pubsub_api import pubsub_api_pb2 as pb
from .pubsub_api import pubsub_api_pb2_grpc as pb_grpc
from .records import parse_datetime
from .streaming import _SCHEMAS, CHANNELS, Event, EventBus

__all__ = [
    "AUTH_ERROR",
    "REPLAY_CORRUPTED",
    "PubSubOptions",
    "PubSubServer",
    "avro_schema",
    "decode_replay_id",
    "encode_replay_id",
]

REPLAY_CORRUPTED = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"
"""Salesforce's error code for a replay id it cannot resume from (e.g. past retention)."""
AUTH_ERROR = "sfdc.platform.eventbus.grpc.service.auth.error"
"""Salesforce's error code for a missing, invalid or expired session."""
TOPIC_NOT_FOUND = "sfdc.platform.eventbus.grpc.service.topic.not.found"
BAD_REQUEST = "sfdc.platform.eventbus.grpc.service.invalid.request"

# The Avro fields of each channel, in the order Salesforce lists a platform event's schema:
# the system fields, then the event's own (the reference's FOStatusChangedEvent fields).
_FIELDS = {
    "/event/FOStatusChangedEvent": [
        "EventUuid",
        "FulfillmentOrderId",
        "OrderSummaryId",
        "OldStatus",
        "NewStatus",
        "OldStatusCategory",
        "NewStatusCategory",
    ],
    "/event/OrderSummaryCreatedEvent": ["EventUuid", "OrderId", "OrderSummaryId"],
    "/event/OrderSumStatusChangedEvent": [
        "EventUuid",
        "OrderId",
        "OrderSummaryId",
        "OldStatus",
        "NewStatus",
    ],
    # Salesforce's ProcessExceptionEvent fields (Platform Events guide).
    "/event/ProcessExceptionEvent": [
        "EventUuid",
        "AttachedToId",
        "BackgroundOperationId",
        "Description",
        "ExceptionType",
        "Message",
        "OrderSummaryId",
        "Severity",
    ],
}


class PubSubOptions(Protocol):
    """Options the endpoint reads at each use."""

    pubsub_keepalive: float


def encode_replay_id(replay_id: int) -> bytes:
    """A bus replay id as the opaque bytes Pub/Sub hands out."""
    return replay_id.to_bytes(8, "big")


def decode_replay_id(raw: bytes) -> int | None:
    """The bus replay id of Pub/Sub replay bytes; None if they are not ours."""
    return int.from_bytes(raw, "big") if len(raw) == 8 else None


def avro_schema(channel: str) -> dict[str, Any]:
    """The Avro record schema of a channel's events (Salesforce's shape: ``CreatedDate`` a
    ``long`` of epoch milliseconds, ``CreatedById`` a string, the event's fields nullable)."""
    name = channel.rsplit("/", 1)[-1]
    fields: list[dict[str, Any]] = [
        {"name": "CreatedDate", "type": "long", "doc": "CreatedDate:DateTime"},
        {"name": "CreatedById", "type": "string", "doc": "CreatedBy:EntityId"},
    ]
    fields += [
        {"name": f, "type": ["null", "string"], "default": None} for f in _FIELDS.get(channel, [])
    ]
    return {"type": "record", "name": name, "namespace": "com.sforce.eventbus", "fields": fields}


_PARSED = {channel: fastavro.parse_schema(avro_schema(channel)) for channel in CHANNELS}


def _avro_payload(event: Event) -> bytes:
    payload = event.payload
    created = payload.get("CreatedDate")
    moment = parse_datetime(created) if isinstance(created, str) else None
    record: dict[str, Any] = {
        "CreatedDate": int(moment.timestamp() * 1000) if isinstance(moment, datetime) else 0,
        "CreatedById": str(payload.get("CreatedById") or ""),
    }
    for name in _FIELDS.get(event.channel, []):
        value = payload.get(name)
        record[name] = None if value is None else str(value)
    out = io.BytesIO()
    fastavro.schemaless_writer(out, _PARSED[event.channel], record)
    return out.getvalue()


def _rpc_id() -> str:
    return secrets.token_hex(16)


class _Org:
    """One org the endpoint serves: its bus, its token check, and a wake-up for its streams."""

    def __init__(self, org_id: str, bus: EventBus, token_valid: Callable[[str], bool]) -> None:
        self.org_id = org_id
        self.bus = bus
        self.token_valid = token_valid
        self.changed = asyncio.Event()
        """Set at the org's next publish (then replaced by a fresh one)."""

    def notify(self) -> None:
        """Wake the org's waiting streams (on the server's loop)."""
        self.changed.set()
        self.changed = asyncio.Event()


class _Servicer(pb_grpc.PubSubServicer):
    """The RPCs the sandbox serves: Subscribe, GetSchema, GetTopic."""

    def __init__(self, endpoint: PubSubServer) -> None:
        self._endpoint = endpoint

    async def _authenticate(self, context: grpc.aio.ServicerContext) -> _Org:
        headers = {k: v for k, v in (context.invocation_metadata() or ())}
        token = headers.get("accesstoken")
        endpoint = self._endpoint
        org = endpoint.orgs.get(str(headers.get("tenantid")))
        if not token or not headers.get("instanceurl"):
            await _abort(
                context,
                grpc.StatusCode.UNAUTHENTICATED,
                AUTH_ERROR,
                "accesstoken and instanceurl metadata are required",
            )
        if org is None:
            await _abort(
                context,
                grpc.StatusCode.UNAUTHENTICATED,
                AUTH_ERROR,
                "tenantid does not name this org",
            )
        assert org is not None
        if not org.token_valid(str(token)):
            await _abort(
                context, grpc.StatusCode.UNAUTHENTICATED, AUTH_ERROR, "session invalid or expired"
            )
        return org

    async def GetSchema(
        self, request: pb.SchemaRequest, context: grpc.aio.ServicerContext
    ) -> pb.SchemaInfo:
        """The Avro schema of a schema id."""
        await self._authenticate(context)
        for channel, schema_id in _SCHEMAS.items():
            if schema_id == request.schema_id:
                return pb.SchemaInfo(
                    schema_json=json.dumps(avro_schema(channel)),
                    schema_id=schema_id,
                    rpc_id=_rpc_id(),
                )
        await _abort(
            context,
            grpc.StatusCode.NOT_FOUND,
            "sfdc.platform.eventbus.grpc.schema.not.found",
            f"no schema {request.schema_id!r}",
        )
        raise AssertionError("unreachable")

    async def GetTopic(
        self, request: pb.TopicRequest, context: grpc.aio.ServicerContext
    ) -> pb.TopicInfo:
        """A topic's schema id and permissions."""
        org = await self._authenticate(context)
        if request.topic_name not in CHANNELS:
            await _abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                TOPIC_NOT_FOUND,
                f"topic {request.topic_name!r} not found",
            )
        return pb.TopicInfo(
            topic_name=request.topic_name,
            tenant_guid=org.org_id,
            can_publish=False,
            can_subscribe=True,
            schema_id=_SCHEMAS[request.topic_name],
            rpc_id=_rpc_id(),
        )

    async def Subscribe(
        self,
        request_iterator: AsyncIterator[pb.FetchRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.FetchResponse]:
        """Events of one topic, as many as requested, from the replay position asked."""
        org = await self._authenticate(context)
        endpoint = self._endpoint
        bus = org.bus
        first = await anext(aiter(request_iterator), None)
        if first is None:
            return
        topic = first.topic_name
        if topic not in CHANNELS:
            await _abort(
                context, grpc.StatusCode.NOT_FOUND, TOPIC_NOT_FOUND, f"topic {topic!r} not found"
            )
        if first.replay_preset == pb.ReplayPreset.LATEST:
            cursor = bus.tip
        elif first.replay_preset == pb.ReplayPreset.EARLIEST:
            cursor = 0
        else:
            position = decode_replay_id(first.replay_id)
            if position is None or not bus.valid_replay(position):
                await _abort(
                    context,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    REPLAY_CORRUPTED,
                    "The Replay ID validation failed.",
                )
            assert position is not None
            cursor = position
        # Headers go out once the subscription stands (a client can tell it is listening).
        await context.send_initial_metadata((("rpc-id", _rpc_id()),))
        credit = max(0, first.num_requested)
        credit_changed = asyncio.Event()
        ended = False

        async def read_requests() -> None:
            nonlocal credit, ended
            try:
                async for more in request_iterator:
                    credit += max(0, more.num_requested)
                    credit_changed.set()
            finally:
                ended = True
                credit_changed.set()

        generation = endpoint.generation
        reader = asyncio.ensure_future(read_requests())
        endpoint.subscriptions += 1
        try:
            quiet_since = asyncio.get_running_loop().time()
            while not ended and not endpoint.stopping:
                if endpoint.generation != generation:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "server restarted")
                if not org.token_valid(_header(context, "accesstoken")):
                    await _abort(
                        context,
                        grpc.StatusCode.UNAUTHENTICATED,
                        AUTH_ERROR,
                        "session invalid or expired",
                    )
                pending = bus.after(topic, cursor) if credit > 0 else []
                if pending:
                    batch = pending[:credit]
                    credit -= len(batch)
                    cursor = batch[-1].replay_id
                    yield pb.FetchResponse(
                        events=[
                            pb.ConsumerEvent(
                                event=pb.ProducerEvent(
                                    id=str(e.payload.get("EventUuid") or ""),
                                    schema_id=_SCHEMAS[topic],
                                    payload=_avro_payload(e),
                                ),
                                replay_id=encode_replay_id(e.replay_id),
                            )
                            for e in batch
                        ],
                        latest_replay_id=encode_replay_id(cursor),
                        rpc_id=_rpc_id(),
                        pending_num_requested=credit,
                    )
                    quiet_since = asyncio.get_running_loop().time()
                    continue
                now = asyncio.get_running_loop().time()
                keepalive = endpoint.options.pubsub_keepalive
                if now - quiet_since >= keepalive:
                    if not bus.after(topic, cursor):
                        # Nothing of this topic is pending: the subscription's position is the
                        # bus's newest, which keeps a quiet subscriber's replay id fresh.
                        cursor = max(cursor, bus.tip)
                    yield pb.FetchResponse(
                        latest_replay_id=encode_replay_id(cursor),
                        rpc_id=_rpc_id(),
                        pending_num_requested=credit,
                    )
                    quiet_since = now
                    continue
                wake = org.changed
                credit_changed.clear()
                waits = [asyncio.ensure_future(wake.wait())]
                waits.append(asyncio.ensure_future(credit_changed.wait()))
                await asyncio.wait(
                    waits,
                    timeout=min(1.0, max(0.01, keepalive - (now - quiet_since))),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for waiter in waits:
                    waiter.cancel()
        finally:
            endpoint.subscriptions -= 1
            reader.cancel()


def _header(context: grpc.aio.ServicerContext, name: str) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == name:
            return str(value)
    return ""


async def _abort(
    context: grpc.aio.ServicerContext, code: grpc.StatusCode, error_code: str, message: str
) -> None:
    context.set_trailing_metadata((("error-code", error_code), ("rpc-id", _rpc_id())))
    await context.abort(code, f"{error_code}: {message}")


class PubSubServer:
    """The gRPC endpoint of one sandbox org, on loopback, in its own thread and event loop.

    ``address`` is ``host:port``; ``token_valid`` says whether an access token is live (the
    sandbox's ``auth.lookup``). ``tls``: (certificate file, key file), PEM, to serve over TLS
    (the sandbox's self-signed certificate; clients trust ``cert_file``); None: plaintext."""

    def __init__(
        self,
        bus: EventBus,
        org_id: str,
        token_valid: Callable[[str], bool],
        options: PubSubOptions,
        clock: Clock,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: tuple[str, str] | None = None,
    ) -> None:
        self.bus = bus
        self.cert_file: str | None = tls[0] if tls else None
        """The certificate clients must trust (None: plaintext)."""
        self._tls = tls
        self.org_id = org_id
        self.orgs: dict[str, _Org] = {}
        self._first = (org_id, bus, token_valid)
        self._hooks: list[tuple[EventBus, Callable[[], None]]] = []
        self.options = options
        self.clock = clock
        self.host = host
        self.stopping = False
        self.generation = 0
        self.subscriptions = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._server: grpc.aio.Server | None = None
        self.port = 0
        self._requested_port = port
        self._thread = threading.Thread(target=self._run, name="sf-sandbox-pubsub", daemon=True)
        self._error: BaseException | None = None

    def restart(self) -> None:
        """End every open subscription with UNAVAILABLE (a restarted server's streams die)."""
        self.generation += 1
        self._on_publish()  # wake every stream, so each sees the new generation

    @property
    def address(self) -> str:
        """``host:port`` for a gRPC channel."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def add_org(self, org_id: str, bus: EventBus, token_valid: Callable[[str], bool]) -> None:
        """Serve another org (``tenantid``) from its own bus (benchmarks: one org per
        merchant). Call after :meth:`start`."""
        org = self._loop_call(lambda: _Org(org_id, bus, token_valid))
        self.orgs[org_id] = org

        def hook() -> None:
            self._wake(org)

        bus.on_publish.append(hook)
        self._hooks.append((bus, hook))

    def _loop_call(self, make: Callable[[], _Org]) -> _Org:
        # asyncio.Event binds to the loop that first waits on it; build it there all the same.
        async def build() -> _Org:
            return make()

        return asyncio.run_coroutine_threadsafe(build(), self._loop).result(10)

    def _wake(self, org: _Org) -> None:
        if not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                self._loop.call_soon_threadsafe(org.notify)

    def _on_publish(self) -> None:
        for org in list(self.orgs.values()):
            self._wake(org)

    def start(self) -> PubSubServer:
        """Bind and serve; returns once the port is known."""
        self._thread.start()
        self._started.wait(10)
        if self._error is not None:
            raise self._error
        self.add_org(*self._first)
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # handed to start()
            self._error = exc
            self._started.set()
        finally:
            # grpc leaves coroutines of ended calls behind: finish them before closing.
            pending = [t for t in asyncio.all_tasks(self._loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    async def _serve(self) -> None:
        server = grpc.aio.server(
            options=[("grpc.so_reuseport", 0), ("grpc.max_concurrent_streams", 100_000)]
        )
        pb_grpc.add_PubSubServicer_to_server(_Servicer(self), server)
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self._tls is not None:
            cert, key = (Path(name).read_bytes() for name in self._tls)
            credentials = grpc.ssl_server_credentials([(key, cert)])
            self.port = server.add_secure_port(f"{host}:{self._requested_port}", credentials)
        else:
            self.port = server.add_insecure_port(f"{host}:{self._requested_port}")
        await server.start()
        self._server = server
        self._started.set()
        await server.wait_for_termination()

    def stop(self) -> None:
        """End every subscription and stop serving."""
        self.stopping = True
        for bus, hook in self._hooks:
            if hook in bus.on_publish:
                bus.on_publish.remove(hook)
        server = self._server
        if server is not None and not self._loop.is_closed():
            # The loop may end first: the server is stopped all the same.
            with contextlib.suppress(RuntimeError, TimeoutError, concurrent.futures.CancelledError):
                asyncio.run_coroutine_threadsafe(server.stop(0), self._loop).result(5)
        self._thread.join(5)
