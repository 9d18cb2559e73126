"""The cassette policy: how HTTP is recorded, scrubbed, replayed and checked for secrets.

One audited policy for every backend:

* one cassette per scenario, ``<cassette dir>/<scenario id>.yaml``;
* secrets are scrubbed on **both** sides before anything is written: request headers
  (``Authorization``, ``Cookie``, ``X-API-Key``-style), query parameters, form and JSON bodies
  (passwords, client secrets, assertions, tokens), response headers (``Set-Cookie`` is dropped)
  and response bodies (OAuth token answers: ``access_token``, ``refresh_token``, ``id_token``,
  ``instance_url`` unless it is a loopback address); any JWT, bearer token or Salesforce session
  id left in a text body is replaced too;
* replay uses record mode ``none``, never repeats an interaction, never rewrites a cassette,
  and a scenario fails if the cassette holds an interaction it did not play or if the backend
  sent a request the cassette does not hold;
* :func:`scan_cassette` finds secrets that slipped through anyway (the suite runs it over every
  committed cassette).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs
import yaml

__all__ = [
    "LOOPBACK_PORT",
    "MATCH_ON",
    "REDACTED",
    "Finding",
    "base_vcr_config",
    "is_sensitive_header",
    "is_sensitive_key",
    "normalize_request",
    "redact_text",
    "scan_cassette",
    "scan_tree",
    "scrub_request",
    "scrub_response",
]

REDACTED = "REDACTED"
"""What every scrubbed value becomes."""

MATCH_ON = ("method", "scheme", "host", "path", "query", "body")
"""How a request is matched to a recorded one. Not the port: local servers bind a free port when
recording. The body is matched (JSON compared as data), which is why scenarios use fixed ids
and times."""

_SENSITIVE_HEADERS = {
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "apikey",
    "x-auth-token",
    "x-access-token",
    "x-csrf-token",
    "x-xsrf-token",
    "x-amz-security-token",
    "x-sfdc-session",
}
_SENSITIVE_HEADER_PATTERN = re.compile(r"(token|secret|password|api-?key|session|signature|cookie)")

_SENSITIVE_KEYS = {
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "token",
    "clientsecret",
    "secret",
    "password",
    "passwd",
    "assertion",
    "clientassertion",
    "apikey",
    "signature",
    "sessionid",
    "privatekey",
    "authorization",
}
# Keys whose value identifies a tenant unless it points at this machine.
_TENANT_KEYS = {"instanceurl"}

_TEXT_SECRETS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("JSON web token", re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")),
    ("bearer token", re.compile(r"\b[Bb]earer\s+(?!REDACTED\b)[A-Za-z0-9._~+/=-]{8,}")),
    ("Salesforce session id", re.compile(r"\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._]{20,}")),
    ("AWS access key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b")),
    ("Stripe-style live key", re.compile(r"\b[sr]k_live_[A-Za-z0-9]{10,}\b")),
)
# What each token shape found in a body or header is replaced with when recording.
_TEXT_REPLACEMENTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (pattern, f"Bearer {REDACTED}" if name == "bearer token" else REDACTED)
    for name, pattern in _TEXT_SECRETS
    if name != "private key"
)
_COOKIE_NAMES = re.compile(
    r"\b(JSESSIONID|PHPSESSID|ASP\.NET_SessionId|sessionid|session|sid|__cf_bm|__Secure-[\w-]+|"
    r"__Host-[\w-]+|BrowserId|BrowserId_sec|CookieConsentPolicy|LSKey-c\$CookieConsentPolicy|"
    r"oid|inst|disco|autocomplete|rememberUn)=(?!REDACTED)[^;\s\"']{4,}"
)
_FORM_SECRET = re.compile(
    r"(?:^|[&?])(password|client_secret|assertion|client_assertion|refresh_token|access_token|"
    r"id_token|api_key|token)=(?!REDACTED(?:&|$))([^&\s]+)",
    re.IGNORECASE,
)


def _norm(key: str) -> str:
    return re.sub(r"[-_\s]", "", key).lower()


def is_sensitive_key(key: str) -> bool:
    """True for body or query keys whose values are secrets (``client_secret``, ``accessToken``...)."""
    return _norm(key) in _SENSITIVE_KEYS


def is_sensitive_header(name: str) -> bool:
    """True for headers that carry credentials or sessions (``Authorization``, ``X-Api-Key``...)."""
    lowered = name.lower()
    return lowered in _SENSITIVE_HEADERS or bool(_SENSITIVE_HEADER_PATTERN.search(lowered))


def _is_loopback_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    host = urlsplit(value).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redact_text(text: str) -> str:
    """Replace JWTs, bearer tokens, session ids and similar token shapes found in free text."""
    for pattern, replacement in _TEXT_REPLACEMENTS:
        text = pattern.sub(replacement, text)
    return text


def _scrub_data(data: Any) -> Any:
    if isinstance(data, Mapping):
        cleaned: dict[str, Any] = {}
        for key, value in data.items():
            norm = _norm(str(key))
            if norm in _SENSITIVE_KEYS and value not in (None, ""):
                cleaned[key] = REDACTED
            elif norm in _TENANT_KEYS and value and not _is_loopback_url(value):
                cleaned[key] = f"https://{REDACTED.lower()}.invalid"
            else:
                cleaned[key] = _scrub_data(value)
        return cleaned
    if isinstance(data, list):
        return [_scrub_data(item) for item in data]
    if isinstance(data, str):
        return redact_text(data)
    return data


def _scrub_body(body: bytes | str | None, content_type: str) -> bytes | str | None:
    """Scrub a JSON, form or text body; binary bodies are left alone."""
    if body in (None, b"", ""):
        return body
    as_bytes = isinstance(body, bytes)
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        return body
    ctype = content_type.lower()
    stripped = text.lstrip()
    if "json" in ctype or stripped[:1] in ("{", "["):
        try:
            data = json.loads(text)
        except ValueError:
            pass
        else:
            cleaned = _scrub_data(data)
            if cleaned != data:
                # Compact and key-ordered so the body matcher still compares the data only.
                text = json.dumps(cleaned, separators=(",", ":"))
            return text.encode("utf-8") if as_bytes else text
    if "x-www-form-urlencoded" in ctype:
        pairs = parse_qsl(text, keep_blank_values=True)
        cleaned_pairs = [(k, REDACTED if is_sensitive_key(k) and v else v) for k, v in pairs]
        if cleaned_pairs != pairs:
            text = urlencode(cleaned_pairs)
    else:
        text = redact_text(text)
    return text.encode("utf-8") if as_bytes else text


def _scrub_uri(uri: str) -> str:
    parts = urlsplit(uri)
    if not parts.query:
        return uri
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    cleaned = [(k, REDACTED if is_sensitive_key(k) and v else v) for k, v in pairs]
    if cleaned == pairs:
        return uri
    return urlunsplit(parts._replace(query=urlencode(cleaned)))


LOOPBACK_PORT = 9
"""The port every loopback URL is stored with: local servers bind a free port each time they
record, and a fixed one keeps re-recorded cassettes free of meaningless diffs."""

_VOLATILE_RESPONSE_HEADERS = {"date"}


def normalize_request(request: Any) -> Any:
    """Store loopback URLs (and their ``Host`` header) with :data:`LOOPBACK_PORT`."""
    parts = urlsplit(request.uri)
    if _is_loopback_url(request.uri) and parts.port not in (None, LOOPBACK_PORT):
        netloc = f"{parts.hostname}:{LOOPBACK_PORT}"
        request.uri = urlunsplit(parts._replace(netloc=netloc))
        for name in list(request.headers):
            if name.lower() == "host":
                request.headers[name] = netloc
    return request


def scrub_request(request: Any) -> Any:
    """vcrpy ``before_record_request``: scrub a request's headers, query and body.

    It also runs on live requests before they are matched against a cassette, so a replayed
    request compares equal to the scrubbed recording.
    """
    request = normalize_request(request)
    for name in list(request.headers):
        if is_sensitive_header(name):
            request.headers[name] = REDACTED
    request.uri = _scrub_uri(request.uri)
    content_type = next((v for k, v in request.headers.items() if k.lower() == "content-type"), "")
    request.body = _scrub_body(request.body, content_type)
    return request


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """vcrpy ``before_record_response``: drop ``Set-Cookie`` (and the volatile ``Date``), scrub
    credential headers and the body (OAuth token answers, tenant URLs, token shapes)."""
    headers: dict[str, Any] = response.get("headers") or {}
    content_type = ""
    for name in list(headers):
        lowered = name.lower()
        if lowered == "set-cookie" or lowered in _VOLATILE_RESPONSE_HEADERS:
            del headers[name]
        elif is_sensitive_header(name):
            headers[name] = [REDACTED]
        elif lowered == "content-type":
            value = headers[name]
            content_type = value[0] if isinstance(value, list) and value else str(value)
    body = response.get("body")
    if isinstance(body, dict) and "string" in body:
        scrubbed = _scrub_body(body["string"], content_type)
        if scrubbed != body["string"]:
            body["string"] = scrubbed
            for name in list(headers):
                if name.lower() == "content-length" and isinstance(scrubbed, bytes | str):
                    size = len(scrubbed.encode("utf-8") if isinstance(scrubbed, str) else scrubbed)
                    headers[name] = [str(size)]
    return response


def _chain(
    first: Iterable[Callable[[Any], Any]], last: Callable[[Any], Any]
) -> Callable[[Any], Any]:
    functions = [*first, last]

    def run(value: Any) -> Any:
        for function in functions:
            if value is None:
                return None
            value = function(value)
        return value

    return run


def base_vcr_config(record_mode: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The vcrpy options every contract cassette uses, merged with a harness's ``extra`` options.

    A harness's own ``before_record_request`` / ``before_record_response`` run first; the suite's
    scrubbing always runs last, so nothing a harness does can put a secret back.
    """
    extra = dict(extra or {})

    def as_list(value: Any) -> list[Callable[[Any], Any]]:
        if value is None:
            return []
        return list(value) if isinstance(value, list | tuple) else [value]

    before_request = as_list(extra.pop("before_record_request", None))
    before_response = as_list(extra.pop("before_record_response", None))
    replaying = record_mode == "none"
    config: dict[str, Any] = {
        "record_mode": record_mode,
        "match_on": MATCH_ON,
        "serializer": "yaml",
        "decode_compressed_response": True,
        "record_on_exception": False,
        # Never repeat an interaction: a second identical request must have been recorded twice.
        "allow_playback_repeats": False,
        # Re-recording sheds stale interactions; replay must never rewrite a committed cassette.
        "drop_unused_requests": not replaying,
    }
    config.update(extra)
    config["allow_playback_repeats"] = False
    if replaying:
        config["drop_unused_requests"] = False
    config["before_record_request"] = _chain(before_request, scrub_request)
    config["before_record_response"] = _chain(before_response, scrub_response)
    return config


# -- scanning committed cassettes ----------------------------------------------------------------


@attrs.frozen
class Finding:
    """A secret found in a cassette: which file, which interaction, where, and what kind."""

    path: Path
    interaction: int | None
    where: str
    kind: str

    def __str__(self) -> str:
        at = f" interaction {self.interaction}" if self.interaction is not None else ""
        return f"{self.path}:{at} {self.where}: {self.kind}"


def _body_text(body: Any) -> str:
    if isinstance(body, Mapping):
        body = body.get("string", "")
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return "" if body is None else str(body)


def _walk_json(data: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(data, Mapping):
        for key, value in data.items():
            here = f"{path}.{key}" if path else str(key)
            norm = _norm(str(key))
            if norm in _SENSITIVE_KEYS and value not in (None, "", REDACTED):
                yield here, f"unscrubbed {key!r}"
            elif (
                norm in _TENANT_KEYS
                and value
                and not _is_loopback_url(value)
                and (REDACTED.lower() not in str(value))
            ):
                yield here, f"tenant-identifying {key!r}"
            else:
                yield from _walk_json(value, here)
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield from _walk_json(item, f"{path}[{i}]")


def _scan_text(text: str, where: str) -> Iterator[tuple[str, str]]:
    for kind, pattern in _TEXT_SECRETS:
        if pattern.search(text):
            yield where, kind
    match = _COOKIE_NAMES.search(text)
    if match:
        yield where, f"cookie {match.group(1)!r}"
    match = _FORM_SECRET.search(text)
    if match:
        yield where, f"unscrubbed form field {match.group(1)!r}"
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            data = json.loads(text)
        except ValueError:
            return
        yield from _walk_json(data, where)


def _scan_headers(headers: Any, where: str, *, response: bool) -> Iterator[tuple[str, str]]:
    if not isinstance(headers, Mapping):
        return
    for name, values in headers.items():
        values = values if isinstance(values, list) else [values]
        lowered = str(name).lower()
        if response and lowered == "set-cookie":
            yield f"{where}.{name}", "Set-Cookie kept"
        elif is_sensitive_header(str(name)) and any(str(v) != REDACTED for v in values):
            yield f"{where}.{name}", "unscrubbed credential header"
        else:
            for value in values:
                for _, kind in _scan_text(str(value), f"{where}.{name}"):
                    yield f"{where}.{name}", kind


def scan_cassette(path: str | Path) -> list[Finding]:
    """Every secret found in one cassette file (headers, URIs, bodies, and the raw text)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    found: list[Finding] = []
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [Finding(path, None, "file", f"not loadable with a safe YAML loader: {exc}")]
    interactions = data.get("interactions", []) if isinstance(data, Mapping) else []
    for i, interaction in enumerate(interactions or []):
        if not isinstance(interaction, Mapping):
            continue
        request = interaction.get("request") or {}
        response = interaction.get("response") or {}
        places: list[tuple[str, str]] = []
        uri = str(request.get("uri", ""))
        places += _scan_text(uri, "request.uri")
        query = urlsplit(uri).query
        places += [
            ("request.uri", f"unscrubbed query parameter {k!r}")
            for k, v in parse_qsl(query, keep_blank_values=True)
            if is_sensitive_key(k) and v and v != REDACTED
        ]
        places += _scan_headers(request.get("headers"), "request.headers", response=False)
        places += _scan_text(_body_text(request.get("body")), "request.body")
        places += _scan_headers(response.get("headers"), "response.headers", response=True)
        places += _scan_text(_body_text(response.get("body")), "response.body")
        seen: set[tuple[str, str]] = set()
        for where, kind in places:
            if (where, kind) not in seen:
                seen.add((where, kind))
                found.append(Finding(path, i, where, kind))
    return found


def scan_tree(root: str | Path, pattern: str = "**/cassettes/**/*.yaml") -> list[Finding]:
    """Scan every cassette under ``root`` (by default, YAML files below a ``cassettes`` folder)."""
    root = Path(root)
    findings: list[Finding] = []
    skip = {".venv", ".nox", ".git", "node_modules", "site-packages"}
    for path in sorted(root.glob(pattern)):
        if skip.intersection(path.relative_to(root).parts):
            continue
        findings += scan_cassette(path)
    return findings
