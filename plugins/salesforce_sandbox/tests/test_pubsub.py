"""The sandbox's Pub/Sub API endpoint, driven by a client made only of Salesforce's proto and
grpcio (stubs generated here from the reference ``pubsub_api.proto``; none of omsbridge's code),
plus fastavro to read payloads with the schema the server gives."""

from __future__ import annotations

import importlib
import io
import json
import queue
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import fastavro
import grpc
import httpx
import pytest

from omsbridge_salesforce_sandbox import SandboxServer

PROTO = Path(__file__).resolve().parents[1] / "reference" / "pubsub" / "pubsub_api.proto"
TOPIC = "/event/FOStatusChangedEvent"
CORRUPTED = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModuleType, ModuleType]:
    """pubsub_api_pb2 and pubsub_api_pb2_grpc, generated from the proto by grpcio-tools."""
    from grpc_tools import protoc

    out = tmp_path_factory.mktemp("stubs")
    (out / "pubsub_api.proto").write_text(PROTO.read_text())
    args = ["protoc", f"-I{out}", f"--python_out={out}", f"--grpc_python_out={out}"]
    assert protoc.main([*args, str(out / "pubsub_api.proto")]) == 0
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module("pubsub_api_pb2"), importlib.import_module(
            "pubsub_api_pb2_grpc"
        )
    finally:
        sys.path.remove(str(out))


class RawClient:
    """Subscribe / GetSchema with the metadata headers Salesforce requires."""

    def __init__(self, server: SandboxServer, stubs: tuple[ModuleType, ModuleType]) -> None:
        self.pb, pb_grpc = stubs
        info = httpx.get(f"{server.url}/__sandbox__/info").json()
        self.address = info["pubsub"]
        self.channel = grpc.insecure_channel(self.address)
        self.stub = pb_grpc.PubSubStub(self.channel)
        self.metadata = [
            ("accesstoken", server.token()["access_token"]),
            ("instanceurl", server.url),
            ("tenantid", info["org_id"]),
        ]
        self.requests: queue.Queue[Any] = queue.Queue()
        self._schemas: dict[str, Any] = {}

    def _requests(self) -> Iterator[Any]:
        while True:
            item = self.requests.get()
            if item is None:
                return
            yield item

    def subscribe(self, preset: str = "LATEST", replay_id: bytes = b"", n: int = 10) -> Any:
        """Open a Subscribe stream (its first FetchRequest sent)."""
        self.requests = queue.Queue()
        self.requests.put(
            self.pb.FetchRequest(
                topic_name=TOPIC,
                replay_preset=getattr(self.pb.ReplayPreset, preset),
                replay_id=replay_id,
                num_requested=n,
            )
        )
        return self.stub.Subscribe(self._requests(), metadata=self.metadata)

    def more(self, n: int) -> None:
        """Ask for ``n`` more events (pull flow control)."""
        self.requests.put(self.pb.FetchRequest(topic_name=TOPIC, num_requested=n))

    def decode(self, consumer_event: Any) -> dict[str, Any]:
        """An event's payload, with the schema GetSchema gives for its schema id."""
        schema_id = consumer_event.event.schema_id
        if schema_id not in self._schemas:
            info = self.stub.GetSchema(
                self.pb.SchemaRequest(schema_id=schema_id), metadata=self.metadata
            )
            self._schemas[schema_id] = fastavro.parse_schema(json.loads(info.schema_json))
        record: dict[str, Any] = fastavro.schemaless_reader(  # type: ignore[assignment]
            io.BytesIO(consumer_event.event.payload), self._schemas[schema_id], None
        )
        return record

    def close(self) -> None:
        self.requests.put(None)
        self.channel.close()


def _fo(server: SandboxServer, index: int = 0) -> str:
    return str(server.sandbox.demo["orders"][index]["fulfillment_order_id"])


def _set_status(server: SandboxServer, fo_id: str, status: str) -> None:
    with server.client() as http:
        url = f"/services/data/v{server.api_version}/sobjects/FulfillmentOrder/{fo_id}"
        assert http.patch(url, json={"Status": status}).status_code == 204


def test_info_names_the_pubsub_address(sf_sandbox_demo: SandboxServer) -> None:
    info = httpx.get(f"{sf_sandbox_demo.url}/__sandbox__/info").json()
    assert info["pubsub"] == f"127.0.0.1:{sf_sandbox_demo.pubsub.port}"
    assert sf_sandbox_demo.pubsub.port > 0


def test_earliest_replays_what_cometd_retains_with_the_same_ids_and_avro_payloads(
    sf_sandbox_demo: SandboxServer, stubs: tuple[ModuleType, ModuleType]
) -> None:
    client = RawClient(sf_sandbox_demo, stubs)
    retained = sf_sandbox_demo.sandbox.events.retained(TOPIC)
    stream = client.subscribe("EARLIEST", n=100)
    response = next(stream)
    got = [int.from_bytes(e.replay_id, "big") for e in response.events]
    assert got == [e.replay_id for e in retained]
    payload = client.decode(response.events[0])
    cometd = retained[0].payload
    assert payload["FulfillmentOrderId"] == cometd["FulfillmentOrderId"]
    assert payload["NewStatus"] == cometd["NewStatus"]
    assert response.events[0].event.id == cometd["EventUuid"]
    assert isinstance(payload["CreatedDate"], int) and payload["CreatedDate"] > 1_600_000_000_000
    assert response.latest_replay_id == response.events[-1].replay_id
    client.close()


def test_live_events_respect_num_requested(
    sf_sandbox_demo: SandboxServer, stubs: tuple[ModuleType, ModuleType]
) -> None:
    client = RawClient(sf_sandbox_demo, stubs)
    stream = client.subscribe("LATEST", n=1)
    responses: queue.Queue[Any] = queue.Queue()

    def read() -> None:
        try:
            for r in stream:
                responses.put(r)
        except grpc.RpcError as exc:
            responses.put(exc)

    threading.Thread(target=read, daemon=True).start()
    fo_id = _fo(sf_sandbox_demo)
    _set_status(sf_sandbox_demo, fo_id, "Pickpack")
    _set_status(sf_sandbox_demo, fo_id, "Ready For Pickup")
    first = responses.get(timeout=5)
    assert [client.decode(e)["NewStatus"] for e in first.events] == ["Pickpack"]
    assert first.pending_num_requested == 0
    with pytest.raises(queue.Empty):  # no credit left: the second event waits
        responses.get(timeout=0.5)
    client.more(5)
    second = responses.get(timeout=5)
    assert [client.decode(e)["NewStatus"] for e in second.events] == ["Ready For Pickup"]
    assert second.pending_num_requested == 4
    client.close()


def test_custom_replay_resumes_after_an_id_and_a_stale_id_is_corrupted(
    sf_sandbox_demo: SandboxServer, stubs: tuple[ModuleType, ModuleType]
) -> None:
    sandbox = sf_sandbox_demo.sandbox
    ids = [e.replay_id for e in sandbox.events.retained(TOPIC)]
    client = RawClient(sf_sandbox_demo, stubs)
    stream = client.subscribe("CUSTOM", ids[1].to_bytes(8, "big"), n=100)
    assert [int.from_bytes(e.replay_id, "big") for e in next(stream).events] == ids[2:]
    client.close()
    sandbox.set_token_lifetime(0)
    sandbox.clock.advance(73 * 3600)  # every event ages past the 72-hour retention
    client = RawClient(sf_sandbox_demo, stubs)
    with pytest.raises(grpc.RpcError) as caught:
        next(client.subscribe("CUSTOM", ids[0].to_bytes(8, "big")))
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    trailers = dict(error.trailing_metadata())  # type: ignore[attr-defined]
    assert trailers["error-code"] == CORRUPTED
    client.close()


def test_metadata_is_checked_like_salesforce(
    sf_sandbox_demo: SandboxServer, stubs: tuple[ModuleType, ModuleType]
) -> None:
    client = RawClient(sf_sandbox_demo, stubs)
    good = list(client.metadata)
    for bad in (
        [m for m in good if m[0] != "accesstoken"],
        [("accesstoken", "00Dxx!nope"), *good[1:]],
        [*good[:2], ("tenantid", "00D000000000001AAA")],
    ):
        client.metadata = bad
        with pytest.raises(grpc.RpcError) as caught:
            next(client.subscribe())
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        trailers = dict(caught.value.trailing_metadata())  # type: ignore[attr-defined]
        assert trailers["error-code"] == "sfdc.platform.eventbus.grpc.service.auth.error"
    client.close()


def test_keepalive_carries_the_latest_replay_id(
    sf_sandbox_demo: SandboxServer, stubs: tuple[ModuleType, ModuleType]
) -> None:
    sandbox = sf_sandbox_demo.sandbox
    sandbox.options.pubsub_keepalive = 0.3
    client = RawClient(sf_sandbox_demo, stubs)
    stream = client.subscribe("LATEST")
    # An event of another topic moves the bus; the quiet subscription still learns the newest id.
    sandbox.events.publish("/event/OrderSummaryCreatedEvent", {"EventUuid": "x"})
    keepalive = next(stream)
    assert list(keepalive.events) == []
    assert int.from_bytes(keepalive.latest_replay_id, "big") == sandbox.events.tip
    client.close()


def test_restart_ends_open_streams(
    sf_sandbox_demo: SandboxServer, stubs: tuple[ModuleType, ModuleType]
) -> None:
    client = RawClient(sf_sandbox_demo, stubs)
    stream = client.subscribe("LATEST")
    threading.Timer(0.3, sf_sandbox_demo.sandbox.restart).start()
    with pytest.raises(grpc.RpcError) as caught:
        next(stream)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    client.close()


@pytest.mark.sf_sandbox(tls=True)
def test_tls_endpoint_is_trusted_through_the_sandbox_certificate_only(
    sf_sandbox_demo: SandboxServer, stubs: tuple[ModuleType, ModuleType]
) -> None:
    """Started with TLS, the gRPC endpoint serves TLS on the sandbox's self-signed certificate
    (generated at start): a client trusting that certificate subscribes; a plaintext client and
    one trusting only the system's roots are refused."""
    server = sf_sandbox_demo
    pb, pb_grpc = stubs
    info = httpx.get(f"{server.url}/__sandbox__/info", verify=server.ssl_context()).json()
    assert info["pubsub_tls"] is True
    ca_file = info["merchant_settings"]["pubsub_ca_file"]
    assert ca_file == server.pubsub.cert_file
    metadata = [
        ("accesstoken", server.token()["access_token"]),
        ("instanceurl", server.url),
        ("tenantid", info["org_id"]),
    ]
    roots = Path(ca_file).read_bytes()
    with grpc.secure_channel(info["pubsub"], grpc.ssl_channel_credentials(roots)) as channel:
        stub = pb_grpc.PubSubStub(channel)
        topic = stub.GetTopic(pb.TopicRequest(topic_name=TOPIC), metadata=metadata, timeout=10)
        assert topic.schema_id
        request = pb.FetchRequest(
            topic_name=TOPIC, replay_preset=pb.ReplayPreset.EARLIEST, num_requested=5
        )
        stream = stub.Subscribe(iter([request]), metadata=metadata, timeout=10)
        assert next(stream).events  # the demo org's retained events, over TLS
        stream.cancel()
    for credentials in (None, grpc.ssl_channel_credentials()):
        channel = (
            grpc.insecure_channel(info["pubsub"])
            if credentials is None
            else grpc.secure_channel(info["pubsub"], credentials)
        )
        with channel, pytest.raises(grpc.RpcError) as refused:
            pb_grpc.PubSubStub(channel).GetTopic(
                pb.TopicRequest(topic_name=TOPIC), metadata=metadata, timeout=5
            )
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
