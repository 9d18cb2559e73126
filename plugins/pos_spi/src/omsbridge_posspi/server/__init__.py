"""The reference POS Order SPI server: what a merchant hosts, in a few readable modules.

>>> from omsbridge_posspi.server import SpiApp, serve
>>> app = SpiApp()                      # in-memory SQLite; SpiApp("spi.db") keeps data
>>> with serve(app) as server:          # a free port on 127.0.0.1
...     seeded = app.seed_online_order("STORE-1", kind="PICKUP")
...     print(server.url)

``app.py`` is the HTTP layer, ``store.py`` the SQLite store with the bookkeeping rules,
``serving.py`` runs it. Default credentials: API key ``dev-api-key`` in ``X-API-Key``, or OAuth2
client ``pos`` / ``dev-client-secret`` at ``POST /oauth/token``.
"""

from omsbridge_posspi.server.app import (
    DEFAULT_API_KEY,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    Fault,
    FaultKind,
    SeedRequest,
    SpiApp,
)
from omsbridge_posspi.server.serving import ServerHandle, serve
from omsbridge_posspi.server.store import SeededOrder, SeedLine, SpiStore

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "Fault",
    "FaultKind",
    "SeedLine",
    "SeedRequest",
    "SeededOrder",
    "ServerHandle",
    "SpiApp",
    "SpiStore",
    "serve",
]
