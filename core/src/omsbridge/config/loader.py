"""Load and check the one config file: the store and every merchant with its backend settings.

Every problem in the file is reported at once, each with its path::

    merchants.SHOPNOW.salesforce.password: environment variable SHOPNOW_SF_PASSWORD is not set
    merchants.ACME: settings for salesforce as well as pos-spi: one merchant uses one backend ...
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs

from omsbridge.config._files import read_small_file
from omsbridge.config.secrets import Secret, resolve_secret
from omsbridge.config.webhook import WebhookConfig, parse_webhook
from omsbridge.errors import ConfigError, Issue
from omsbridge.registry import BackendRegistry
from omsbridge.spi import MerchantContext
from omsbridge.wire import describe, issues_from, new_converter

__all__ = ["Config", "MerchantConfig", "StoreConfig", "load_config", "parse_config"]

_MERCHANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_LOCALE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
_REGION = re.compile(r"^[A-Z]{2}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_MERCHANT_KEYS = {"backend", "name", "locale", "region", "currency", "currencies", "webhook"}

MAX_CONFIG_BYTES = 4 * 1024 * 1024
"""A config file larger than this is refused rather than read (it is a few kilobytes)."""


@attrs.frozen
class StoreConfig:
    """Where the outbox and event checkpoints live: a SQLite file by default (``path``), or a
    PostgreSQL database (``url = "postgresql://..."``) that many workers share."""

    path: Path
    url: str | None = attrs.field(default=None, repr=False)
    """A PostgreSQL connection URL (may hold a password: never shown in reprs)."""


@attrs.frozen
class MerchantConfig:
    """One merchant: which backend serves it and that backend's typed settings."""

    merchant_id: str
    backend: str
    settings: Any
    name: str | None = None
    locale: str | None = None
    region: str | None = None
    currency: str | None = None
    currencies: tuple[str, ...] = ()
    """Every currency the merchant takes, when more than ``currency`` (needs a backend with
    :attr:`~omsbridge.spi.Capability.MULTI_CURRENCY`); empty: only ``currency``."""
    webhook: WebhookConfig | None = None
    """Where this merchant's outgoing webhooks go (``[merchants.<id>.webhook]``); None: none."""

    def context(self) -> MerchantContext:
        """What the backend is told about its merchant."""
        return MerchantContext(self.merchant_id, self.locale, self.region, self.currency)


@attrs.frozen
class Config:
    """A loaded, checked config file."""

    store: StoreConfig
    merchants: Mapping[str, MerchantConfig]
    path: Path | None = None


def load_config(path: str | Path, registry: BackendRegistry | None = None) -> Config:
    """Read and check a TOML config file; :class:`ConfigError` lists every problem found."""
    path = Path(path)
    try:
        raw = read_small_file(path, MAX_CONFIG_BYTES)
    except ValueError as exc:
        raise ConfigError([Issue("", str(exc))]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [Issue("", f"{path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at {exc.start})")]
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([Issue("", f"{path} is not valid TOML: {exc}")]) from None
    except RecursionError:
        raise ConfigError([Issue("", f"{path} nests arrays or tables too deeply")]) from None
    return parse_config(data, base_dir=path.resolve().parent, registry=registry, source=path)


def parse_config(
    data: Mapping[str, Any],
    *,
    base_dir: Path,
    registry: BackendRegistry | None = None,
    source: Path | None = None,
) -> Config:
    """Check already-parsed config data (a TOML document as a dict)."""
    registry = registry if registry is not None else BackendRegistry.from_plugins()
    issues: list[Issue] = []
    for key in data:
        # [serve] belongs to `omsbridge serve` (omsbridge-posspi), which checks it itself.
        if key not in ("store", "merchants", "serve"):
            issues.append(Issue(str(key), "unknown key (expected store, merchants, serve)"))
    store = _store(data.get("store", {}), base_dir, issues)
    merchants_data = data.get("merchants")
    merchants: dict[str, MerchantConfig] = {}
    if not isinstance(merchants_data, Mapping) or not merchants_data:
        issues.append(Issue("merchants", "at least one [merchants.ID] table is required"))
    else:
        conv = _settings_converter(base_dir)
        for merchant_id, table in merchants_data.items():
            merchant = _merchant(str(merchant_id), table, registry, conv, issues, base_dir)
            if merchant is not None:
                merchants[merchant.merchant_id] = merchant
    if issues:
        where = f" in {source}" if source else ""
        raise ConfigError(issues, title=f"{len(issues)} problem(s){where}:")
    return Config(store=store, merchants=merchants, path=source)


def _store(table: Any, base_dir: Path, issues: list[Issue]) -> StoreConfig:
    default = StoreConfig(base_dir / "omsbridge.db")
    if not isinstance(table, Mapping):
        issues.append(Issue("store", "must be a table"))
        return default
    for key in table:
        if key not in ("path", "url"):
            issues.append(Issue(f"store.{key}", "unknown key (expected path or url)"))
    if "url" in table:
        url = table["url"]
        if "path" in table:
            issues.append(Issue("store", "give either path (SQLite) or url (PostgreSQL), not both"))
        if not isinstance(url, str) or not url.startswith(("postgresql://", "postgres://")):
            shown = describe(url) if not isinstance(url, str) else "a URL of another scheme"
            issues.append(
                Issue("store.url", f"must be a postgresql:// connection URL, got {shown}")
            )
            return default
        return StoreConfig(default.path, url)
    raw = table.get("path", "omsbridge.db")
    if not isinstance(raw, str) or not raw:
        issues.append(Issue("store.path", f"must be a file path, got {describe(raw)}"))
        return default
    path = base_dir / raw
    problem = _store_path_problem(path)
    if problem:
        issues.append(Issue("store.path", problem))
    return StoreConfig(path)


def _store_path_problem(path: Path) -> str | None:
    """Why SQLite could not keep its database at ``path``, checked now rather than at first use."""
    try:
        if path.exists() and not path.is_file():
            kind = "a directory" if path.is_dir() else "a device or other special file"
            return f"must be an SQLite database file, but {path} is {kind}"
        # The store creates missing folders; the nearest existing one must be a folder.
        existing = next((p for p in path.parents if p.exists()), None)
        if not path.exists() and existing is not None and not existing.is_dir():
            return f"must be under a directory, but {existing} is a file"
    except OSError as exc:
        return f"cannot use {path}: {exc.strerror or exc}"
    return None


def _merchant(
    merchant_id: str,
    table: Any,
    registry: BackendRegistry,
    conv: cattrs.Converter,
    issues: list[Issue],
    base_dir: Path,
) -> MerchantConfig | None:
    prefix = f"merchants.{merchant_id}"
    before = len(issues)
    if not _MERCHANT_ID.match(merchant_id):
        issues.append(Issue(prefix, "a merchant id is letters, digits, '.', '_' or '-'"))
    if not isinstance(table, Mapping):
        issues.append(Issue(prefix, "must be a table"))
        return None
    installed = ", ".join(registry.names()) or "none"
    backend = table.get("backend")
    if backend is None:
        issues.append(Issue(f"{prefix}.backend", f"is required (installed backends: {installed})"))
    elif not isinstance(backend, str):
        issues.append(
            Issue(f"{prefix}.backend", f"expected a backend name, got {describe(backend)}")
        )
    elif backend not in registry:
        issues.append(
            Issue(
                f"{prefix}.backend", f"unknown backend {backend!r}; installed backends: {installed}"
            )
        )
    backend_tables = [k for k, v in table.items() if k in registry and isinstance(v, Mapping)]
    others = [k for k in backend_tables if k != backend]
    if others:
        issues.append(
            Issue(
                prefix,
                f"settings for {', '.join(others)} as well as {backend or 'no backend'}: one "
                "merchant uses exactly one backend (dual mode, e.g. Salesforce OMS and the POS "
                "Order SPI together, is not supported)",
            )
        )
    for key, value in table.items():
        if key in _MERCHANT_KEYS or key in backend_tables:
            continue
        hint = " (no installed backend has this name)" if isinstance(value, Mapping) else ""
        issues.append(Issue(f"{prefix}.{key}", f"unknown key{hint}"))
    name = table.get("name")
    if name is not None and not isinstance(name, str):
        issues.append(Issue(f"{prefix}.name", f"expected a string, got {describe(name)}"))
    for key, pattern, example in (
        ("locale", _LOCALE, "en_US"),
        ("region", _REGION, "US"),
        ("currency", _CURRENCY, "USD"),
    ):
        value = table.get(key)
        if value is not None and not (isinstance(value, str) and pattern.match(value)):
            shown = repr(value) if isinstance(value, str) else describe(value)
            issues.append(Issue(f"{prefix}.{key}", f"must look like {example}, got {shown}"))
    currencies = _currencies(table, prefix, issues)
    webhook = None
    if "webhook" in table:
        webhook = parse_webhook(table["webhook"], f"{prefix}.webhook", base_dir, issues)
    settings = None
    if isinstance(backend, str) and backend in registry:
        settings_data = table.get(backend, {})
        if not isinstance(settings_data, Mapping):
            issues.append(Issue(f"{prefix}.{backend}", "must be a table"))
        else:
            settings_cls = registry.get(backend).config_class
            try:
                settings = conv.structure(dict(settings_data), settings_cls)
            except Exception as exc:  # cattrs groups every field problem in one exception
                issues += [
                    Issue(_join(f"{prefix}.{backend}", i.path), i.message) for i in issues_from(exc)
                ]
    if len(issues) > before or backend is None:
        return None
    return MerchantConfig(
        merchant_id=merchant_id,
        backend=str(backend),
        settings=settings,
        name=table.get("name"),
        locale=table.get("locale"),
        region=table.get("region"),
        currency=table.get("currency"),
        currencies=currencies,
        webhook=webhook,
    )


def _currencies(table: Mapping[str, Any], prefix: str, issues: list[Issue]) -> tuple[str, ...]:
    """``currencies = ["USD", "EUR"]``: ISO codes, at least one, including ``currency``."""
    raw = table.get("currencies")
    if raw is None:
        return ()
    path = f"{prefix}.currencies"
    if not isinstance(raw, list) or not raw:
        issues.append(
            Issue(
                path, f'must be a list of ISO 4217 codes such as ["USD", "EUR"], got {_shown(raw)}'
            )
        )
        return ()
    bad = [c for c in raw if not (isinstance(c, str) and _CURRENCY.match(c))]
    if bad:
        issues.append(Issue(path, f"must be ISO 4217 codes such as USD, got {_shown(bad[0])}"))
        return ()
    currency = table.get("currency")
    if isinstance(currency, str) and currency not in raw:
        issues.append(Issue(path, f"must include the merchant's currency {currency!r}"))
    return tuple(dict.fromkeys(raw))


def _shown(value: Any) -> str:
    # A wrong value is quoted in the message, but never at any length (a megabyte string).
    if isinstance(value, list | dict):
        return f"a {'list' if isinstance(value, list) else 'table'}"  # may nest thousands deep
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _join(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if path else prefix


def _settings_converter(base_dir: Path) -> cattrs.Converter:
    conv = new_converter()
    conv.register_structure_hook(Secret, lambda value, _: resolve_secret(value, base_dir))
    conv.register_structure_hook(Path, lambda value, _: base_dir / _as_str(value))
    return conv


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a file path, got {describe(value)}")
    return value
