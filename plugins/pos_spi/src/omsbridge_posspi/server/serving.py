"""Run a WSGI app on a local port in a background thread (tests, demos, the sandbox command)."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from omsbridge.local_http import KeepAliveRequestHandler

__all__ = ["ServerHandle", "serve"]


class _KeepAliveHandler(KeepAliveRequestHandler):
    """The shared keep-alive handler; idle connections dropped after 75 s."""

    timeout = 75


class ServerHandle:
    """A running server: ``url`` to call it, ``stop()`` (or ``with``) to end it."""

    def __init__(self, server: BaseWSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.host = server.host
        self.port = server.port
        self.url = f"http://{server.host}:{server.port}"

    def stop(self) -> None:
        """Stop accepting requests and wait for the serving thread to end."""
        self._server.shutdown()
        self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<ServerHandle {self.url}>"


def serve(app: Any, host: str = "127.0.0.1", port: int = 0) -> ServerHandle:
    """Serve ``app`` on ``host:port`` (0: a free port) in a daemon thread, one thread per
    connection (HTTP/1.1 keep-alive: a connection serves its client's requests in turn)."""
    server = make_server(host, port, app, threaded=True, request_handler=_KeepAliveHandler)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        daemon=True,
        name="pos-spi-server",
    )
    thread.start()
    return ServerHandle(server, thread)
