"""Serve a sandbox on loopback in a background thread (HTTP, or HTTPS with a self-signed cert)."""

from __future__ import annotations

import datetime as _dt
import ipaddress
import ssl
import tempfile
import threading
import time
from email.utils import format_datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from werkzeug.serving import BaseWSGIServer, make_server

from omsbridge.local_http import KeepAliveRequestHandler

from .app import MAX_VERSION, SalesforceSandbox
from .pubsub import PubSubServer
from .seed import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

_CERT: tuple[str, str] | None = None
_CERT_LOCK = threading.Lock()


class _QuietHandler(KeepAliveRequestHandler):
    """The shared keep-alive request handler (connections stay open between requests, as
    Salesforce's do), quiet, with the org's clock in the ``Date`` header."""

    # An idle kept-alive connection is dropped after this many seconds of silence (longer
    # than a CometD long poll, which waits server-side, not on the socket).
    timeout = 150

    def log(self, type: str, message: str, *args: Any) -> None:
        """Stay quiet: tests and the CLI do their own reporting."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header from the org's clock (``sandbox.clock``), as Salesforce's
        servers send their own time: a client whose clock differs can tell."""
        app = getattr(self.server, "app", None)
        clock = getattr(app, "clock", None)
        if timestamp is not None or clock is None:
            return super().date_time_string(timestamp)
        return format_datetime(clock.now(), usegmt=True)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Stay quiet (no access log line per request)."""


def self_signed_certificate() -> tuple[str, str]:
    """(certificate file, key file) of a self-signed cert for 127.0.0.1/localhost (per process)."""
    global _CERT
    with _CERT_LOCK:
        if _CERT is not None:
            return _CERT
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "omsbridge sandbox")])
        now = _dt.datetime.now(_dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(days=1))
            .not_valid_after(now + _dt.timedelta(days=365))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        folder = Path(tempfile.mkdtemp(prefix="omsbridge-sf-sandbox-"))
        cert_file, key_file = folder / "cert.pem", folder / "key.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        _CERT = (str(cert_file), str(key_file))
        return _CERT


class SandboxServer:
    """A running sandbox: ``.url``, ``.sandbox``, ``.stop()``; also a context manager."""

    def __init__(
        self,
        sandbox: SalesforceSandbox,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: bool = False,
        close_sandbox: bool = False,
    ) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"the sandbox only binds loopback addresses, not {host!r}")
        self.sandbox = sandbox
        self.host = host
        self.tls = tls
        self.cert_file: str | None = None
        context = None
        key_file = None
        if tls:
            self.cert_file, key_file = self_signed_certificate()
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.cert_file, key_file)
        self._server: BaseWSGIServer = make_server(
            host, port, sandbox, threaded=True, request_handler=_QuietHandler, ssl_context=context
        )
        self.port = self._server.server_port
        # The Pub/Sub API (gRPC) endpoint, serving the same event bus as CometD.
        self.pubsub = PubSubServer(
            sandbox.events,
            sandbox.org_id,
            lambda token: sandbox.auth.lookup(token) is not None,
            sandbox.options,
            sandbox.clock,
            host=host,
            # With TLS, the gRPC endpoint too, on the same self-signed certificate.
            tls=(self.cert_file, key_file) if self.cert_file and key_file else None,
        ).start()
        sandbox.pubsub_address = self.pubsub.address
        sandbox.pubsub_ca_file = self.pubsub.cert_file
        sandbox.restart_hooks.append(self.pubsub.restart)
        self._close_sandbox = close_sandbox
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._done = threading.Event()
        sandbox.shutdown_hook = self._request_stop

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (the instance_url clients use)."""
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def api_version(self) -> str:
        """The newest REST API version served (e.g. ``66.0``)."""
        return f"{MAX_VERSION}.0"

    def start(self) -> SandboxServer:
        """Start serving in a daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"sf-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` (or ``/__sandbox__/shutdown``)."""
        self._server.serve_forever(poll_interval=0.1)

    def _request_stop(self) -> None:
        def _later() -> None:
            # Give the handler of the shutdown request time to send its answer first.
            time.sleep(0.2)
            self.stop()

        threading.Thread(target=_later, daemon=True).start()

    def stop(self) -> None:
        """Stop serving (and close the sandbox if this server created it)."""
        if self._stopped.is_set():
            self._done.wait(timeout=10)  # another thread is stopping it: wait until it's done
            return
        self._stopped.set()
        try:
            self.sandbox.events.wake()
            self.pubsub.stop()
            if self.pubsub.restart in self.sandbox.restart_hooks:
                self.sandbox.restart_hooks.remove(self.pubsub.restart)
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None and self._thread is not threading.current_thread():
                self._thread.join(timeout=5)
            if self._close_sandbox:
                self.sandbox.close()
        finally:
            self._done.set()

    def wait(self) -> None:
        """Block until the server is stopped."""
        self._done.wait()

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- conveniences for tests and demos ---------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext | bool:
        """What an httpx client passes as ``verify=`` to trust this server (True for HTTP)."""
        if not self.cert_file:
            return True
        return ssl.create_default_context(cafile=self.cert_file)

    def _verify(self) -> ssl.SSLContext | bool:
        return self.ssl_context()

    def token(self) -> dict[str, Any]:
        """Log in with the demo credentials (password flow); the token response body."""
        response = httpx.post(
            f"{self.url}/services/oauth2/token",
            verify=self._verify(),
            data={
                "grant_type": "password",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "username": USERNAME,
                "password": PASSWORD,
            },
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        """An httpx client with base URL and bearer token set (logs in if no token given)."""
        token = token or self.token()["access_token"]
        return httpx.Client(
            base_url=self.url,
            verify=self._verify(),
            headers={"Authorization": f"Bearer {token}"},
            **kwargs,
        )


def serve(
    sandbox: SalesforceSandbox | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    tls: bool = False,
    **options: Any,
) -> SandboxServer:
    """Start serving *sandbox* (or a new one built from *options*) and return the handle."""
    own = sandbox is None
    if sandbox is None:
        sandbox = SalesforceSandbox(**options)
    elif options:
        raise TypeError("pass options either to SalesforceSandbox or to serve, not both")
    return SandboxServer(sandbox, host, port, tls=tls, close_sandbox=own).start()
