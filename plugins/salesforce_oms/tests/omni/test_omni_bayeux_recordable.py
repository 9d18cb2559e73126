"""The CometD sessions' recordable transport (``LEAN_TRANSPORT`` off: the contract harness).

httpx's blocking transport answers with a sync stream; the async session reads and closes
every answer asynchronously, which such a stream refuses. Found when the Salesforce harness
ran live behind ``omsbridge serve`` (every handshake failed with a RuntimeError)."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from omsbridge_salesforce.streaming.bayeux_async import _RecordableTransport

_ANSWER = [{"channel": "/meta/handshake", "successful": True, "clientId": "c1"}]


class _Gzipped(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = gzip.compress(json.dumps(_ANSWER).encode())
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        """Quiet."""


def test_an_answer_over_the_blocking_transport_reads_and_closes_asynchronously() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gzipped)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    transport = _RecordableTransport()

    async def exchange() -> httpx.Response:
        request = httpx.Request(
            "POST", f"http://127.0.0.1:{server.server_address[1]}/cometd/62.0", content=b"[]"
        )
        response = await transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    try:
        response = asyncio.run(exchange())
    finally:
        asyncio.run(transport.aclose())
        server.shutdown()
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.json() == _ANSWER
