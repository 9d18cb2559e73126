"""One TLS context for every Salesforce client in the process."""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def shared_tls() -> ssl.SSLContext:
    """The TLS context every merchant's clients share (REST, token, CometD): each context loads
    the CA bundle (about 0.85 MB), and a worker holds thousands of merchants' clients."""
    return httpx.create_ssl_context()
