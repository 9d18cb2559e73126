"""A local, stateful Salesforce Order Management org that real Salesforce clients accept.

Run it as a server on loopback::

    from omsbridge_salesforce_sandbox import serve

    with serve(seed="demo") as server:          # any free port; server.url = instance_url
        token = server.token()["access_token"]  # password flow with the demo credentials
        with server.client(token) as http:
            http.get(f"/services/data/v{server.api_version}/query",
                     params={"q": "SELECT Id, Name FROM Location"})

or in-process (no socket) under httpx::

    import httpx
    from omsbridge_salesforce_sandbox import SalesforceSandbox

    sandbox = SalesforceSandbox(seed="demo", query_page_size=2)
    http = httpx.Client(transport=httpx.WSGITransport(app=sandbox),
                        base_url="http://sandbox.local")

or from the command line: ``omsbridge sandbox salesforce --port 8765 --seed demo``.

Every entry point takes ``org_profile`` (``--org-profile``): ``"som"`` (default: multicurrency,
Person Accounts, an order-summary flow, the omsbridge setup package), ``"som-minimal"`` (the
setup package only) or ``"som-unprepared"`` (no custom fields). ``GET /__sandbox__/info`` gives
the backend settings that suit the profile (``merchant_settings``).

With simple-salesforce (which always builds ``https://`` URLs), serve with ``tls=True`` and
trust the self-signed certificate::

    session = requests.Session()
    session.trust_env = False          # else REQUESTS_CA_BUNDLE overrides `verify`
    session.verify = server.cert_file
    sf = Salesforce(instance_url=server.url, session_id=token, session=session)

Tests control the org directly (``sandbox.clock.advance(3600)``,
``sandbox.add_fault("error", status=503, path="*/composite/graph", count=2)``,
``sandbox.set_api_budget(100)``, ``sandbox.restart()``, ``sandbox.reset("demo")``) or over
HTTP (``/__sandbox__/faults``, ``/clock``, ``/reset``, ``/restart``, ``/config``, ``/info``).
The pytest fixtures ``sf_sandbox``, ``sf_sandbox_demo`` and ``sf_sandbox_app`` live in
:mod:`omsbridge_salesforce_sandbox.pytest_plugin`. See docs/sandbox-salesforce.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import SalesforceSandbox, SandboxOptions
    from .faults import Fault
    from .schema import custom_field
    from .seed import CLIENT_ID, CLIENT_SECRET, PASSWORD, SECURITY_TOKEN, USERNAME
    from .server import SandboxServer, serve

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "PASSWORD",
    "SECURITY_TOKEN",
    "USERNAME",
    "Fault",
    "SalesforceSandbox",
    "SandboxOptions",
    "SandboxServer",
    "custom_field",
    "serve",
]

_WHERE = {
    "SalesforceSandbox": "app",
    "SandboxOptions": "app",
    "Fault": "faults",
    "custom_field": "schema",
    "CLIENT_ID": "seed",
    "CLIENT_SECRET": "seed",
    "PASSWORD": "seed",
    "SECURITY_TOKEN": "seed",
    "USERNAME": "seed",
    "SandboxServer": "server",
    "serve": "server",
}


def __getattr__(name: str) -> Any:
    # Lazy (PEP 562): the plugin entry point imports this package, and ``omsbridge --help``
    # must not pay for the emulator (werkzeug, cryptography, jwt).
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
