"""The ``[serve]`` section of the config file: where ``omsbridge serve`` listens and who may call it.

::

    [serve]
    host = "127.0.0.1"
    port = 8780
    workers = 2              # server processes (gunicorn workers)
    threads = 16             # requests each worker answers at once (long polls hold one)
    graceful_timeout = 30    # seconds in-flight requests get to finish on SIGTERM
    token_ttl = 3600         # lifetime of bearer tokens from POST /oauth/token, seconds

    [serve.clients.pos-eu]
    api_key = { env = "POS_EU_KEY" }      # sent as X-API-Key
    merchants = ["SHOPNOW", "ACME"]       # or ["*"] for every merchant

    [serve.clients.pos-us]
    client_id = "pos-us"                  # OAuth2 client credentials (POST .../oauth/token)
    client_secret = { env = "POS_US_SECRET" }
    merchants = ["*"]

    [serve.admin]
    api_key = { env = "OMSBRIDGE_ADMIN_KEY" }   # the outbox admin under /admin/

Every problem is reported at once with its path (``serve.clients.pos-eu.merchants[1]: ...``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from omsbridge.config import Config
from omsbridge.config._files import read_small_file
from omsbridge.config.loader import MAX_CONFIG_BYTES
from omsbridge.config.secrets import Secret, resolve_secret
from omsbridge.errors import ConfigError, Issue

__all__ = ["ALL_MERCHANTS", "AdminClient", "ServeClient", "ServeConfig", "parse_serve"]

ALL_MERCHANTS = "*"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_SERVE_KEYS = {
    "host",
    "port",
    "workers",
    "threads",
    "graceful_timeout",
    "token_ttl",
    "clients",
    "admin",
}
_CLIENT_KEYS = {"api_key", "client_id", "client_secret", "merchants"}


@attrs.frozen
class ServeClient:
    """A POS client of ``omsbridge serve``: its credentials and the merchants it may reach."""

    name: str
    merchants: tuple[str, ...]
    api_key: Secret | None = None
    client_id: str | None = None
    client_secret: Secret | None = None

    def may_reach(self, merchant_id: str) -> bool:
        """Whether this client may call ``merchant_id``'s endpoints."""
        return ALL_MERCHANTS in self.merchants or merchant_id in self.merchants


@attrs.frozen
class AdminClient:
    """The operator's client: the outbox admin under ``/admin/`` (every merchant)."""

    api_key: Secret


@attrs.frozen
class ServeConfig:
    """The checked ``[serve]`` section."""

    host: str = "127.0.0.1"
    port: int = 8780
    workers: int = 2
    threads: int = 16
    graceful_timeout: float = 30.0
    token_ttl: int = 3600
    clients: tuple[ServeClient, ...] = ()
    admin: AdminClient | None = None


def load_serve_section(path: Path) -> Mapping[str, Any]:
    """The raw ``[serve]`` table of a config file (the rest is checked by :func:`load_config`)."""
    data = tomllib.loads(read_small_file(path, MAX_CONFIG_BYTES).decode("utf-8"))
    table = data.get("serve", {})
    if not isinstance(table, Mapping):
        raise ConfigError([Issue("serve", "must be a table ([serve])")])
    return table


def parse_serve(table: Mapping[str, Any], config: Config, base_dir: Path) -> ServeConfig:
    """Check the ``[serve]`` table against the loaded config; ConfigError lists every problem."""
    issues: list[Issue] = []
    for key in table:
        if key not in _SERVE_KEYS:
            issues.append(
                Issue(f"serve.{key}", f"unknown key (expected {', '.join(sorted(_SERVE_KEYS))})")
            )
    host = table.get("host", "127.0.0.1")
    if not isinstance(host, str) or not host:
        issues.append(Issue("serve.host", f"must be a host name or address, got {host!r}"))
    port = _int(table, "port", 8780, 0, 65535, issues)
    workers = _int(table, "workers", 2, 1, 64, issues)
    threads = _int(table, "threads", 16, 1, 1000, issues)
    token_ttl = _int(table, "token_ttl", 3600, 60, 86400, issues)
    graceful = table.get("graceful_timeout", 30)
    if (
        isinstance(graceful, bool)
        or not isinstance(graceful, int | float)
        or not 0 < graceful <= 3600
    ):
        issues.append(
            Issue("serve.graceful_timeout", f"must be seconds in (0, 3600], got {graceful!r}")
        )
        graceful = 30
    clients = _clients(table.get("clients", {}), config, base_dir, issues)
    admin = _admin(table.get("admin"), base_dir, issues)
    if issues:
        raise ConfigError(issues, title=f"{len(issues)} problem(s) in [serve]:")
    return ServeConfig(
        host=str(host),
        port=port,
        workers=workers,
        threads=threads,
        graceful_timeout=float(graceful),
        token_ttl=token_ttl,
        clients=clients,
        admin=admin,
    )


def _int(
    table: Mapping[str, Any], key: str, default: int, low: int, high: int, issues: list[Issue]
) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        issues.append(
            Issue(f"serve.{key}", f"must be a whole number from {low} to {high}, got {value!r}")
        )
        return default
    return value


def _secret(value: Any, path: str, base_dir: Path, issues: list[Issue]) -> Secret | None:
    try:
        return resolve_secret(value, base_dir)
    except ValueError as exc:
        issues.append(Issue(path, str(exc)))
        return None


def _clients(
    table: Any, config: Config, base_dir: Path, issues: list[Issue]
) -> tuple[ServeClient, ...]:
    if not isinstance(table, Mapping):
        issues.append(Issue("serve.clients", "must be a table of clients ([serve.clients.NAME])"))
        return ()
    clients: list[ServeClient] = []
    client_ids: dict[str, str] = {}
    for name, body in table.items():
        prefix = f"serve.clients.{name}"
        if not _NAME.match(str(name)):
            issues.append(Issue(prefix, "a client name is letters, digits, '.', '_' or '-'"))
        if not isinstance(body, Mapping):
            issues.append(Issue(prefix, "must be a table"))
            continue
        for key in body:
            if key not in _CLIENT_KEYS:
                issues.append(
                    Issue(
                        f"{prefix}.{key}",
                        f"unknown key (expected {', '.join(sorted(_CLIENT_KEYS))})",
                    )
                )
        api_key = (
            _secret(body["api_key"], f"{prefix}.api_key", base_dir, issues)
            if "api_key" in body
            else None
        )
        client_id = body.get("client_id")
        secret = None
        if client_id is not None:
            if not isinstance(client_id, str) or not client_id:
                issues.append(
                    Issue(f"{prefix}.client_id", f"must be a non-empty string, got {client_id!r}")
                )
            elif client_id in client_ids:
                issues.append(
                    Issue(
                        f"{prefix}.client_id", f"already used by client {client_ids[client_id]!r}"
                    )
                )
            else:
                client_ids[client_id] = str(name)
            if "client_secret" not in body:
                issues.append(Issue(f"{prefix}.client_secret", "is required with client_id"))
            else:
                secret = _secret(body["client_secret"], f"{prefix}.client_secret", base_dir, issues)
        elif "client_secret" in body:
            issues.append(Issue(f"{prefix}.client_id", "is required with client_secret"))
        if "api_key" not in body and client_id is None:
            issues.append(Issue(prefix, "give api_key, or client_id and client_secret (or both)"))
        merchants = _merchants(body.get("merchants"), f"{prefix}.merchants", config, issues)
        clients.append(
            ServeClient(
                str(name),
                merchants,
                api_key,
                client_id if isinstance(client_id, str) else None,
                secret,
            )
        )
    return tuple(clients)


def _merchants(value: Any, path: str, config: Config, issues: list[Issue]) -> tuple[str, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        issues.append(
            Issue(
                path,
                f'must list the merchants this client may reach (["*"] for all), got {value!r}',
            )
        )
        return ()
    for i, merchant_id in enumerate(value):
        if merchant_id == ALL_MERCHANTS:
            continue
        if not isinstance(merchant_id, str) or merchant_id not in config.merchants:
            known = ", ".join(sorted(config.merchants))
            issues.append(
                Issue(
                    f"{path}[{i}]",
                    f"no merchant {merchant_id!r} in the config (merchants: {known})",
                )
            )
    return tuple(str(m) for m in value)


def _admin(table: Any, base_dir: Path, issues: list[Issue]) -> AdminClient | None:
    if table is None:
        return None
    if not isinstance(table, Mapping) or set(table) != {"api_key"}:
        issues.append(
            Issue(
                "serve.admin",
                "must be a table with api_key only ([serve.admin] api_key = { env = ... })",
            )
        )
        return None
    secret = _secret(table["api_key"], "serve.admin.api_key", base_dir, issues)
    return AdminClient(secret) if secret is not None else None
