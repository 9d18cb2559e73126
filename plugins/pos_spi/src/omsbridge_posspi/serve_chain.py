"""``omsbridge serve`` in front of another backend's test system, for the contract suite.

The chain the ``serve-*`` variants of :class:`~omsbridge_posspi.contract_harness.PosSpiHarness`
test: the pos-spi backend (the POS) -> ``omsbridge serve`` on loopback -> the bridge -> the
fronted backend -> its local system (the reference SPI server, or the Salesforce sandbox). The
fronted system is driven by its own contract harness, found through the plugins (this
distribution imports no other plugin). Imported only by the contract suite.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from omsbridge.bridge import Bridge
from omsbridge.config import parse_config
from omsbridge.plugins import get_plugin_manager
from omsbridge.registry import BackendRegistry
from omsbridge_contract import Harness
from omsbridge_contract.plugin import collect_harnesses
from omsbridge_posspi.serve import ServeApp, openapi_document, parse_serve
from omsbridge_posspi.server import ServerHandle, serve

__all__ = ["ServeChain"]

CLIENT_ID = "contract-pos"
_SECRET_FILE = "serve-client-secret.txt"
_SECRET = "contract-pos-secret"  # a loopback test credential, like the reference server's


class _Switch:
    """A WSGI app that forwards to the current :class:`ServeApp` (replaced on every reset)."""

    def __init__(self) -> None:
        self.app: ServeApp | None = None

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        assert self.app is not None, "the chain is not started"
        return self.app(environ, start_response)


class ServeChain:
    """The fronted system (through its harness) and ``serve`` in front of it."""

    def __init__(self, fronted: str, workdir: Path) -> None:
        self.fronted = fronted
        self.workdir = workdir
        self._pm = get_plugin_manager()
        self._registry = BackendRegistry.from_plugins(self._pm)
        harness_class = collect_harnesses(self._pm)[fronted]
        inner_dir = workdir / f"fronted-{fronted}"
        inner_dir.mkdir(exist_ok=True)
        self.inner: Harness = harness_class(live=True, workdir=inner_dir)
        self._switch = _Switch()
        self._server: ServerHandle | None = None
        self._lock = threading.Lock()
        self._generation = itertools.count(1)
        self.url = ""

    @property
    def app(self) -> ServeApp:
        """The serve app answering now."""
        assert self._switch.app is not None, "the chain is not started"
        return self._switch.app

    def start(self) -> None:
        """Start the fronted system, then ``serve`` on a free loopback port."""
        self.inner.start()
        (self.workdir / _SECRET_FILE).write_text(_SECRET, encoding="utf-8")
        self._switch.app = self._build()
        self._server = serve(self._switch)
        self.url = self._server.url

    def stop(self) -> None:
        """Stop ``serve`` and the fronted system."""
        if self._server is not None:
            self._server.stop()
        if self._switch.app is not None:
            self._switch.app.bridge.close()
        self.inner.stop()

    def reset(self) -> None:
        """Reset the fronted system; a new bridge with an empty outbox, so nothing (no cached
        look-up, no queued post) crosses from one scenario into the next."""
        self.inner.reset()
        old, self._switch.app = self._switch.app, self._build()
        if old is not None:
            old.bridge.close()

    def pos_settings(self) -> dict[str, Any]:
        """The POS's ``[merchants.ID.pos-spi]`` table: serve's base URL for the merchant, OAuth2
        through serve's token operation, and what the fronted backend can do."""
        base = f"{self.url}/merchants/{self.inner.merchant_id}"
        capabilities = self.app.bridge.for_merchant(self.inner.merchant_id).backend.capabilities
        return {
            "base_url": base,
            "timeout": 30,
            "max_event_wait": 5,
            "capabilities": sorted(c.value for c in capabilities),
            "auth": {
                "type": "oauth2",
                "token_url": f"{base}/oauth/token",
                "client_id": CLIENT_ID,
                "client_secret": {"file": _SECRET_FILE},
            },
        }

    def _build(self) -> ServeApp:
        merchant = self.inner.merchant()
        table: dict[str, Any] = {"backend": self.fronted, self.fronted: dict(self.inner.settings())}
        for key in ("locale", "region", "currency"):
            if getattr(merchant, key):
                table[key] = getattr(merchant, key)
        store = self.workdir / f"serve-outbox-{next(self._generation)}.db"
        serve_table = {
            "clients": {
                "contract-pos": {
                    "client_id": CLIENT_ID,
                    "client_secret": {"file": str(self.workdir / _SECRET_FILE)},
                    "merchants": [merchant.merchant_id],
                }
            }
        }
        config = parse_config(
            {"store": {"path": str(store)}, "merchants": {merchant.merchant_id: table}},
            base_dir=self.inner.workdir,
            registry=self._registry,
        )
        bridge = Bridge(config, registry=self._registry, plugin_manager=self._pm)
        settings = parse_serve(serve_table, config, self.workdir)
        return ServeApp(bridge, settings, openapi=openapi_document())
