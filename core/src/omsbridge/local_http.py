"""HTTP/1.1 keep-alive for the local servers plugins run on werkzeug (reference servers,
emulators: see :mod:`omsbridge.local`).

werkzeug's development request handler closes the connection after every answer and writes
headers and body in separate sends; a local server measured against (benchmarks) or driven by
thousands of requests (tests, the demo) should behave like the production system it stands
for: connections kept open, no Nagle delay.
"""

from __future__ import annotations

from typing import Any

from werkzeug.serving import WSGIRequestHandler
from werkzeug.wsgi import LimitedStream

__all__ = ["KeepAliveRequestHandler"]


class KeepAliveRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler with HTTP/1.1 keep-alive: a client's connection stays open
    between requests, as a production OMS's does, instead of a new TCP connection (connect,
    accept, close: CPU on both sides) for every request."""

    protocol_version = "HTTP/1.1"
    # An idle kept-alive connection is dropped after this many seconds of silence (a
    # subclass sets its own: longer than the longest long poll it serves).
    timeout = 75
    # werkzeug writes the headers and the body in separate sends; with Nagle's algorithm the
    # body of a kept-alive answer waits for the client's delayed ACK (~40 ms on Linux).
    disable_nagle_algorithm = True

    def make_environ(self) -> dict[str, Any]:
        """The WSGI environ, with the body limited to Content-Length so that whatever the app
        leaves unread can be drained before the next request on this connection."""
        environ: dict[str, Any] = super().make_environ()
        self._body: LimitedStream | None = None
        if environ.get("wsgi.input_terminated"):
            self._keep_alive = False  # chunked request body: close afterwards (simplest)
        else:
            self._keep_alive = True
            length = int(self.headers.get("Content-Length") or 0)
            # rfile is the socket's buffered reader: an IO[bytes] in all but typeshed's name.
            self._body = LimitedStream(self.rfile, length)  # type: ignore[arg-type]
            environ["wsgi.input"] = self._body
        return environ

    def run_wsgi(self) -> None:
        """Serve one request and keep the connection open.

        werkzeug's own ``run_wsgi`` always answers ``Connection: close`` (it cannot drain an
        unread body without eating the next request), so the answer is written here: status,
        headers, ``Content-Length``, body; then the unread rest of this request's body is
        drained. Answers are small JSON documents, so buffering each one costs nothing."""
        if self.headers.get("Expect", "").lower().strip() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        environ = self.environ = self.make_environ()
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            started[:] = [status, headers]
            return lambda data: None

        try:
            result = self.server.app(environ, start_response)
            try:
                data = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except (ConnectionError, TimeoutError):
            self.close_connection = True
            return
        status, headers = started
        code, _, reason = status.partition(" ")
        status_code = int(code)
        self.send_response(status_code, reason)
        for key, value in headers:
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        if status_code not in (204, 304) and not 100 <= status_code < 200:
            self.send_header("Content-Length", str(len(data)))
        if not self._keep_alive:
            self.close_connection = True
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if environ["REQUEST_METHOD"] != "HEAD" and status_code not in (204, 304):
            self.wfile.write(data)
        self.wfile.flush()
        if self._body is not None:
            self._body.exhaust()
