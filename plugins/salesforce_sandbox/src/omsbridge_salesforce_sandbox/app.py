"""The sandbox org as a WSGI application: state, options, routing, faults, control endpoints."""

from __future__ import annotations

import json
import random
import sys
import time
import traceback
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from . import ids
from .auth import Auth, OAuthError
from .clock import Clock
from .composite import Composite
from .errors import SalesforceError, not_found
from .faults import Fault, FaultInjector, error_body
from .limits import ApiUsage
from .oms import OrderManagement
from .profiles import DEFAULT_PROFILE, get_profile, merchant_settings
from .records import Dml
from .rest import NO_BODY, Rest, Result
from .schema import Field, default_schema
from .seed import SeedContext, load_org
from .store import Store
from .streaming import CometD, EventBus

#: Lowest and highest REST API versions the sandbox answers (``/services/data`` lists them).
MIN_VERSION = 31
MAX_VERSION = 66
CONTROL_PREFIX = "/__sandbox__"


def _release_label(major: int) -> str:
    season = ("Spring", "Summer", "Winter")[(major - 60) % 3]
    year = 24 + (major - 60) // 3 + (1 if season == "Winter" else 0)
    return f"{season} '{year:02d}"


@dataclass
class SandboxOptions:
    """Behaviour knobs of a sandbox org (all settable from the constructor or the CLI)."""

    seed: str = "empty"
    org_profile: str = DEFAULT_PROFILE
    state_path: str | None = None
    token_lifetime: float = 7200.0
    api_budget: int = 100_000
    query_page_size: int = 2000
    long_poll_timeout: float = 110.0
    reconnect_timeout: float = 40.0
    event_retention: float = 72 * 3600.0
    auto_order_summary: bool = True
    instantly_fulfilled_delivery_methods: tuple[str, ...] = ("IN_STORE-DEFAULT",)
    custom_fields: dict[str, list[Field]] = field(default_factory=dict)
    rng_seed: int = 0
    jwt_certificate_pem: str | None = None
    latency_ms: int = 0
    error_rate: float = 0.0
    error_status: int = 503
    pubsub_keepalive: float = 270.0
    """Seconds of quiet after which a Pub/Sub subscription gets an empty FetchResponse with
    ``latest_replay_id`` (Salesforce: about 270 s)."""


class SalesforceSandbox:
    """A stateful Salesforce Order Management org, served as a WSGI application.

    Construct it with :class:`SandboxOptions` field names as keyword arguments, then either
    serve it (:func:`omsbridge_salesforce_sandbox.serve`) or mount it in-process
    (``httpx.Client(transport=httpx.WSGITransport(app=sandbox))``).
    """

    def __init__(self, **options: Any) -> None:
        self.options = SandboxOptions(**options)
        self.profile = get_profile(self.options.org_profile)
        self.clock = Clock()
        self.schema = default_schema(self.options.custom_fields, self.profile.name)
        self.org_id = ids.org_id()
        self.user_id = ids.make_id("005", 1_000_001)
        self.store = Store(self.schema, self.options.state_path)
        self.lock = self.store.lock
        self._uuid_rng = random.Random(self.options.rng_seed)
        self.faults = FaultInjector(self.options.rng_seed)
        self.usage = ApiUsage(self.clock, self.options.api_budget)
        self.events = EventBus(self.clock, self.options.event_retention, self.options.rng_seed)
        # Each part gets the parts it uses, never this object: imports go one way
        # (app -> rest/composite/oms/records/auth/streaming -> store/schema/clock).
        self.dml = Dml(self.schema, self.store, self.clock, self.user_id, self.record_url)
        self.oms = OrderManagement(
            self.dml,
            self.store,
            self.clock,
            self.events,
            self.options,
            self.profile,
            self.user_id,
            self.rng_uuid,
        )
        self.auth = Auth(self.clock, self.org_id, self.options, self.persist_tokens)
        self.cometd = CometD(self.events, self.options, self.clock, self.auth.check)
        self.rest = Rest(
            self.schema,
            self.store,
            self.dml,
            self.clock,
            self.options,
            self.oms.routes(),
            lambda: self.usage.limits_body(self.cometd.client_count),
        )
        self.composite = Composite(self.schema, self.store, self.dml, self.rest)
        self.rest.mount("composite", self.composite.dispatch)
        self.events.on_publish.append(self._persist_events)
        self.demo: dict[str, Any] = {}
        self.credentials: dict[str, Any] = {}
        #: Set by a server serving this sandbox; ``POST /__sandbox__/shutdown`` calls it.
        self.shutdown_hook: Any = None
        #: ``host:port`` of the Pub/Sub (gRPC) endpoint, set by the server that serves it.
        self.pubsub_address: str | None = None
        self.pubsub_ca_file: str | None = None
        """The certificate a client trusts for a TLS Pub/Sub endpoint (None: plaintext)."""
        #: Called by :meth:`restart` (the Pub/Sub endpoint ends its open streams).
        self.restart_hooks: list[Any] = []
        #: Tracebacks of unexpected exceptions (a sandbox bug); the fixtures assert it's empty.
        self.internal_errors: list[str] = []
        self._apply_fault_options()
        restored = self.options.state_path is not None and self.store.load_meta("seeded")
        saved_profile = self.store.load_meta("org_profile") if restored else None
        if saved_profile and saved_profile != self.profile.name:
            self.store.close()
            raise ValueError(
                f"state file {self.options.state_path} holds a {saved_profile!r} org, not "
                f"{self.profile.name!r}: use --org-profile {saved_profile} or another file"
            )
        if restored:
            self._load_org(self.store.load_meta("seeded"), create_records=False)
            self._restore_runtime()
        else:
            self.reset(self.options.seed)

    def _load_org(self, seed: str, *, create_records: bool) -> None:
        context = SeedContext(
            auth=self.auth,
            store=self.store,
            dml=self.dml,
            oms=self.oms,
            clock=self.clock,
            schema=self.schema,
            profile=self.profile,
            user_id=self.user_id,
            jwt_certificate_pem=self.options.jwt_certificate_pem,
        )
        load_org(context, seed, create_records=create_records)
        self.credentials = context.credentials
        self.demo = context.demo

    # --- lifecycle ------------------------------------------------------------------------

    def _apply_fault_options(self) -> None:
        if self.options.latency_ms:
            self.faults.add(Fault("latency", latency_ms=self.options.latency_ms))
        if self.options.error_rate:
            self.faults.add(
                Fault("error", rate=self.options.error_rate, status=self.options.error_status)
            )

    def reset(self, seed: str | None = None) -> None:
        """Wipe every record, token, event and fault and load *seed* (``empty`` or ``demo``)."""
        with self.lock:
            seed = seed or self.options.seed
            self.options.seed = seed
            self.store.clear()
            self.auth.clear_tokens()
            self.events.restore(None)
            self.cometd.drop_all()
            self.rest.clear_cursors()
            self.usage.set(maximum=self.options.api_budget, used=0)
            self.faults.clear()
            self.faults.reseed(self.options.rng_seed)
            self._apply_fault_options()
            self.demo = {}
            self._load_org(seed, create_records=True)
            self.store.save_meta("seeded", seed)
            self.store.save_meta("org_profile", self.profile.name)
            self._persist_runtime()

    def restart(self) -> None:
        """Behave like a restarted server: CometD clients are forgotten (``403::Unknown
        client``), query cursors are lost, and state is re-read from the state file if any.
        Records, tokens and retained events survive."""
        with self.lock:
            self._persist_runtime()
            self.cometd.drop_all()
            self.rest.clear_cursors()
            for hook in self.restart_hooks:
                hook()
            if self.options.state_path:
                self.store.reload()
                self._restore_runtime()

    def close(self) -> None:
        """Release the state file and wake long polls."""
        with self.lock:
            self._persist_runtime()
            self.events.closed = True
            self.events.wake()
            self.store.close()

    def _persist_events(self) -> None:
        # Runs on every publish: without a state file there is nowhere to save, so skip
        # building a snapshot of every retained event (it grows with the org's history).
        if self.options.state_path:
            self.store.save_meta("events", self.events.snapshot())

    def persist_tokens(self) -> None:
        """Save issued tokens (so a restarted process still accepts them)."""
        if self.options.state_path:
            self.store.save_meta("tokens", self.auth.snapshot())

    def _persist_runtime(self) -> None:
        if self.options.state_path:
            self.persist_tokens()
            self._persist_events()
            self.store.save_meta(
                "usage", {"calls": self.usage.snapshot(), "max": self.usage.maximum}
            )

    def _restore_runtime(self) -> None:
        self.auth.restore(self.store.load_meta("tokens") or [])
        self.events.restore(self.store.load_meta("events"))
        usage = self.store.load_meta("usage")
        if usage:
            self.usage.maximum = usage["max"]
            self.usage.restore(usage["calls"])

    def rng_uuid(self) -> int:
        """128 random bits for an EventUuid (seeded, so runs are reproducible)."""
        return self._uuid_rng.getrandbits(128)

    def record_url(self, type_name: str, rec_id: str) -> str:
        """A record's REST URL at the newest API version."""
        return self.rest.record_url(f"{MAX_VERSION}.0", type_name, rec_id)

    # --- control API (in-process) -----------------------------------------------------------

    def add_fault(self, kind: str, **kwargs: Any) -> Fault:
        """Activate a fault rule (see :mod:`.faults`)."""
        fault = Fault(kind, **kwargs)
        self.faults.add(fault)
        return fault

    def set_api_budget(self, maximum: int | None = None, used: int | None = None) -> None:
        """Change the daily API budget and/or the calls already used."""
        if maximum is not None:
            self.options.api_budget = maximum
        self.usage.set(maximum=maximum, used=used)

    def set_token_lifetime(self, seconds: float) -> None:
        """Lifetime of access tokens issued from now on."""
        self.options.token_lifetime = seconds

    def configure(self, **changes: Any) -> None:
        """Change options at run time (page size, long-poll timeout, auto summaries...)."""
        known = {f.name for f in fields(SandboxOptions)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown options: {', '.join(sorted(unknown))}")
        if "org_profile" in changes or "custom_fields" in changes:
            raise ValueError("org_profile and custom_fields are fixed when the org is created")
        # Mutated in place: the org's parts hold this same options object.
        for key, value in changes.items():
            setattr(self.options, key, value)
        self.usage.maximum = self.options.api_budget
        self.events.retention_seconds = self.options.event_retention

    def info(self, base_url: str = "") -> dict[str, Any]:
        """Credentials, seeded ids and settings — what ``GET /__sandbox__/info`` answers."""
        url = base_url.rstrip("/")
        settings, environment = merchant_settings(
            self.profile,
            url=url,
            api_version=f"{MAX_VERSION}.0",
            credentials=self.credentials,
            pubsub=self.pubsub_address,
        )
        if self.pubsub_ca_file:
            settings["pubsub_ca_file"] = self.pubsub_ca_file
        return {
            "url": url,
            "org_id": self.org_id,
            "pubsub": self.pubsub_address,
            "pubsub_tls": self.pubsub_ca_file is not None,
            "org_profile": self.profile.name,
            "merchant_settings": settings,
            "environment": environment,
            "api_version": f"{MAX_VERSION}.0",
            "credentials": self.credentials,
            "demo": self.demo,
            "clock": self.clock.now().isoformat(),
            "options": {k: v for k, v in self.options.__dict__.items() if k != "custom_fields"},
            "faults": [f.to_json() for f in self.faults.list()],
            "api_usage": {"used": self.usage.used, "max": self.usage.maximum},
        }

    # --- WSGI ------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self.handle(request)
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        """Serve one HTTP request."""
        path = request.path
        if path.startswith(CONTROL_PREFIX + "/") or path == CONTROL_PREFIX:
            return self._control(request)
        fired = self.faults.fire(request.method, path)
        for fault in fired:
            if fault.kind == "latency":
                time.sleep(fault.latency_ms / 1000)
        for fault in fired:
            if fault.kind == "error":
                return _json(fault.status, error_body(fault.status))
            if fault.kind == "timeout" and not fault.after_commit:
                time.sleep(fault.hold_seconds)
                return _json(503, error_body(503))
        lock_fault = any(f.kind == "lock" for f in fired)
        self.dml.arm_lock_fault(lock_fault)
        self.oms.arm_gateway_failure(any(f.kind == "gateway" for f in fired))
        try:
            response = self._route(request)
        except Exception as exc:  # a sandbox bug: answer like Salesforce, but keep a record
            self.internal_errors.append(traceback.format_exc())
            print(self.internal_errors[-1], file=sys.stderr)
            del exc
            response = _json(500, error_body(500))
        finally:
            self.dml.arm_lock_fault(False)
            self.oms.arm_gateway_failure(False)
        for fault in fired:
            if fault.kind == "timeout" and fault.after_commit:
                time.sleep(fault.hold_seconds)
        return response

    def _route(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if path == "/services/oauth2/token":
            return self._token(request)
        if path == "/services/oauth2/revoke":
            token = request.form.get("token") or request.args.get("token") or ""
            with self.lock:
                revoked = self.auth.revoke(token)
            if not revoked:
                return _json(
                    400,
                    {
                        "error": "unsupported_token_type",
                        "error_description": "this token type is not supported",
                    },
                )
            return Response(status=200)
        if path.startswith("/id/"):
            return self._identity(request)
        if path == "/services/data":
            return _json(
                200,
                [
                    {
                        "label": _release_label(v),
                        "url": f"/services/data/v{v}.0",
                        "version": f"{v}.0",
                    }
                    for v in range(MIN_VERSION, MAX_VERSION + 1)
                ],
            )
        if path.startswith("/services/data/"):
            return self._rest(request)
        if path == "/cometd" or path.startswith("/cometd/"):
            return self._cometd(request)
        return _json(404, not_found().body())

    # --- OAuth ---------------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        if request.method != "POST":
            return _json(
                405,
                [
                    {
                        "errorCode": "METHOD_NOT_ALLOWED",
                        "message": f"HTTP Method '{request.method}' not allowed. Allowed are POST",
                    }
                ],
            )
        form = {k: v for k, v in request.form.items()}
        try:
            with self.lock:
                body = self.auth.token_endpoint(form, request.host_url)
        except OAuthError as exc:
            return _json(exc.status, exc.body(), {"Cache-Control": "no-store"})
        return _json(200, body, {"Cache-Control": "no-store"})

    def _identity(self, request: Request) -> Response:
        try:
            token = self.auth.check(
                request.headers.get("Authorization")
                or (
                    f"Bearer {request.args['oauth_token']}"
                    if "oauth_token" in request.args
                    else None
                )
            )
        except SalesforceError as exc:
            return _json(403 if exc.status == 401 else exc.status, "Bad_OAuth_Token")
        return _json(200, self.auth.identity(token, request.host_url))

    # --- REST ----------------------------------------------------------------------------

    def _rest(self, request: Request) -> Response:
        rest_path = request.path[len("/services/data/") :]
        version_part, _, remainder = rest_path.partition("/")
        if not (version_part.startswith("v") and _valid_version(version_part[1:])):
            return _json(404, not_found().body())
        version = version_part[1:]
        try:
            token = self.auth.check(request.headers.get("Authorization"))
            del token
            self.usage.count()
        except SalesforceError as exc:
            return self._limit_headers(_json(exc.status, exc.body()))
        body: Any = NO_BODY
        raw = request.get_data(cache=True)
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as exc:
                return self._limit_headers(
                    _json(
                        400,
                        [
                            {
                                "message": f"Unexpected character: {exc.msg} at "
                                f"[line:{exc.lineno}, column:{exc.colno}]",
                                "errorCode": "JSON_PARSER_ERROR",
                            }
                        ],
                    )
                )
        args = {k: v for k, v in request.args.items()}
        try:
            with self.lock:
                result = self.rest.dispatch(
                    request.method, version, remainder, args, body, request.headers
                )
        except SalesforceError as exc:
            result = Result(exc.status, exc.body())
        response = (
            _json(result.status, result.body, result.headers)
            if result.body is not None or result.status not in (204, 304)
            else Response(status=result.status, headers=result.headers)
        )
        return self._limit_headers(response)

    def _limit_headers(self, response: Response) -> Response:
        response.headers["Sforce-Limit-Info"] = self.usage.header()
        return response

    # --- CometD --------------------------------------------------------------------------

    def _cometd(self, request: Request) -> Response:
        version = (
            request.path[len("/cometd/") :].strip("/")
            if request.path.startswith("/cometd/")
            else ""
        )
        if not version:
            return Response(
                f"API version in the URI is mandatory. URI format: '/cometd/{MAX_VERSION}.0'",
                status=400,
            )
        if not _valid_version(version) or int(float(version)) < 37:
            return Response(f"Unsupported API version: {version}", status=400)
        if request.method != "POST":
            return Response(status=405)
        raw = request.get_data(cache=True)
        if len(raw) > 32_768:
            return Response("Maximum Request Size Exceeded", status=413)
        try:
            messages = json.loads(raw or b"[]")
        except ValueError:
            return _json(400, [{"successful": False, "error": "400::Invalid JSON"}])
        if isinstance(messages, dict):
            messages = [messages]
        replies = self.cometd.handle(messages, request.headers.get("Authorization"))
        response = _json(200, replies)
        if any(r.get("channel") == "/meta/handshake" and r.get("successful") for r in replies):
            response.set_cookie(
                "BAYEUX_BROWSER",
                ids.make_id("0Bx", int(time.time()) % 10**6),
                path="/",
                httponly=True,
            )
        return response

    # --- control endpoints ------------------------------------------------------------------

    def _control(self, request: Request) -> Response:
        name = request.path[len(CONTROL_PREFIX) :].strip("/")
        try:
            payload = request.get_json(silent=True) if request.get_data() else {}
            if payload is None:
                return _json(400, {"error": "body must be JSON"})
            return self._control_action(name, request.method, payload, request.host_url)
        except (ValueError, TypeError, KeyError) as exc:
            return _json(400, {"error": str(exc)})

    def _control_action(
        self, name: str, method: str, payload: dict[str, Any], host_url: str
    ) -> Response:
        if name == "info":
            return _json(200, self.info(host_url))
        if name == "faults":
            if method == "DELETE":
                self.faults.clear()
            elif method == "POST":
                self._configure_faults(payload)
            return _json(
                200,
                {
                    "faults": [f.to_json() for f in self.faults.list()],
                    "api_budget": self.usage.maximum,
                    "api_used": self.usage.used,
                    "token_lifetime": self.options.token_lifetime,
                },
            )
        if name == "clock":
            if method == "POST":
                if payload.get("freeze"):
                    self.clock.freeze()
                if "set" in payload:
                    self.clock.set(datetime.fromisoformat(str(payload["set"])))
                if "advance" in payload:
                    self.clock.advance(float(payload["advance"]))
                if payload.get("unfreeze"):
                    self.clock.unfreeze()
                self.events.wake()
            return _json(200, {"now": self.clock.now().isoformat(), "frozen": self.clock.frozen})
        if name == "reset" and method == "POST":
            self.reset(payload.get("seed"))
            return _json(200, self.info(host_url))
        if name == "restart" and method == "POST":
            self.restart()
            return _json(200, {"restarted": True})
        if name == "config" and method == "POST":
            self.configure(**payload)
            return _json(200, self.info(host_url))
        if name == "events":
            return _json(200, [e.message() for e in self.events.retained()])
        if name == "shutdown" and method == "POST":
            if self.shutdown_hook is None:
                return _json(409, {"error": "this sandbox is not served by a SandboxServer"})
            self.shutdown_hook()
            return _json(200, {"stopping": True})
        if name == "refresh-token" and method == "POST":
            token = self.auth.issue_refresh_token(payload["username"], payload["client_id"])
            return _json(200, {"refresh_token": token})
        return _json(404, {"error": f"unknown control endpoint {name!r}"})

    def _configure_faults(self, payload: dict[str, Any]) -> None:
        if payload.get("clear"):
            self.faults.clear()
        if "seed" in payload:
            self.faults.reseed(int(payload["seed"]))
        if "api_budget" in payload or "api_used" in payload:
            self.set_api_budget(payload.get("api_budget"), payload.get("api_used"))
        if "token_lifetime" in payload:
            self.set_token_lifetime(float(payload["token_lifetime"]))
        specs = payload.get("faults", [])
        if "kind" in payload:
            specs = [
                *specs,
                {
                    k: v
                    for k, v in payload.items()
                    if k
                    not in ("clear", "seed", "api_budget", "api_used", "token_lifetime", "faults")
                },
            ]
        parsed = [Fault.from_json(spec) for spec in specs]
        for fault in parsed:
            self.faults.add(fault)


def _valid_version(text: str) -> bool:
    try:
        major, minor = text.split(".")
        return minor == "0" and MIN_VERSION <= int(major) <= MAX_VERSION
    except ValueError:
        return False


class _Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        """Encode Decimals as numbers (Salesforce sends numbers, not strings)."""
        from decimal import Decimal

        if isinstance(o, Decimal):
            return float(o)
        if isinstance(o, Path):
            return str(o)
        if isinstance(o, set | tuple):
            return list(o)
        return super().default(o)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    response = Response(
        json.dumps(body, cls=_Encoder), status=status, content_type="application/json;charset=UTF-8"
    )
    if headers:
        for key, value in Headers(headers).items():
            response.headers[key] = value
    return response
