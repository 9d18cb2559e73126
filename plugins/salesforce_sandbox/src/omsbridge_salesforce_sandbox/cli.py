"""``omsbridge sandbox salesforce``: run the Salesforce OMS sandbox on loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .app import SalesforceSandbox
from .faults import Fault
from .profiles import DEFAULT_PROFILE, PROFILES
from .seed import SEEDS
from .server import LOOPBACK_HOSTS, SandboxServer


def _faults(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[Fault]:
    out = []
    for raw in values:
        try:
            out.append(Fault.from_json(json.loads(raw)))
        except (ValueError, TypeError) as exc:
            raise click.BadParameter(f"{raw!r}: {exc}") from None
    return out


@click.command(name="salesforce")
@click.option(
    "--port", type=int, default=8765, show_default=True, help="TCP port (0 picks a free one)."
)
@click.option(
    "--host",
    type=click.Choice(LOOPBACK_HOSTS),
    default="127.0.0.1",
    show_default=True,
    help="Loopback address to bind.",
)
@click.option(
    "--org-profile",
    type=click.Choice(list(PROFILES)),
    default=DEFAULT_PROFILE,
    show_default=True,
    help="Kind of org: 'som' (multicurrency, Person Accounts, activation flow, setup "
    "package), 'som-minimal' (setup package only), 'som-unprepared' (no setup package).",
)
@click.option(
    "--seed",
    type=click.Choice(SEEDS),
    default="empty",
    show_default=True,
    help="Initial data: 'demo' loads products, stores, BOPIS orders.",
)
@click.option(
    "--state",
    "state",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file that keeps records, tokens and events across restarts.",
)
@click.option("--tls", is_flag=True, help="Serve HTTPS with a self-signed certificate.")
@click.option(
    "--token-lifetime",
    type=float,
    default=7200.0,
    show_default=True,
    help="Access-token lifetime in seconds.",
)
@click.option(
    "--api-budget",
    type=int,
    default=100_000,
    show_default=True,
    help="DailyApiRequests maximum; past it calls answer REQUEST_LIMIT_EXCEEDED.",
)
@click.option("--latency-ms", type=int, default=0, help="Latency added to every request.")
@click.option(
    "--error-rate",
    type=float,
    default=0.0,
    help="Fraction of requests answered with --error-status (seeded RNG).",
)
@click.option(
    "--error-status",
    type=click.Choice(["500", "503"]),
    default="503",
    show_default=True,
    help="Status of --error-rate errors.",
)
@click.option("--rng-seed", type=int, default=0, help="Seed of the fault RNG.")
@click.option(
    "--page-size",
    type=int,
    default=2000,
    show_default=True,
    help="Records per SOQL page before nextRecordsUrl.",
)
@click.option(
    "--long-poll-timeout",
    type=float,
    default=110.0,
    show_default=True,
    help="Seconds a CometD /meta/connect waits for events.",
)
@click.option(
    "--jwt-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM certificate or public key that verifies JWT bearer assertions "
    "(default: a generated demo key pair).",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    callback=_faults,
    help='Fault rule as JSON, e.g. \'{"kind":"error","path":"*/composite/graph",'
    '"count":2}\' (repeatable).',
)
def command(
    port: int,
    host: str,
    org_profile: str,
    seed: str,
    state: Path | None,
    tls: bool,
    token_lifetime: float,
    api_budget: int,
    latency_ms: int,
    error_rate: float,
    error_status: str,
    rng_seed: int,
    page_size: int,
    long_poll_timeout: float,
    jwt_cert: Path | None,
    faults: list[Fault],
) -> None:
    """Run a local Salesforce Order Management sandbox until interrupted."""
    options: dict[str, Any] = {
        "seed": seed,
        "org_profile": org_profile,
        "state_path": str(state) if state else None,
        "token_lifetime": token_lifetime,
        "api_budget": api_budget,
        "latency_ms": latency_ms,
        "error_rate": error_rate,
        "error_status": int(error_status),
        "rng_seed": rng_seed,
        "query_page_size": page_size,
        "long_poll_timeout": long_poll_timeout,
        "jwt_certificate_pem": jwt_cert.read_text() if jwt_cert else None,
    }
    sandbox = SalesforceSandbox(**options)
    for fault in faults:
        sandbox.faults.add(fault)
    server = SandboxServer(sandbox, host, port, tls=tls, close_sandbox=True)
    creds = sandbox.credentials
    click.echo(
        f"Salesforce OMS sandbox listening on {server.url} (profile: {org_profile}, seed: {seed})"
    )
    click.echo(f"  token endpoint : {server.url}/services/oauth2/token")
    click.echo(f"  REST base      : {server.url}/services/data/v{server.api_version}/")
    click.echo(f"  username       : {creds['username']}")
    click.echo(f"  password       : {creds['password']}")
    click.echo(f"  client id      : {creds['client_id']}")
    click.echo(f"  client secret  : {creds['client_secret']}")
    click.echo(
        f"  Pub/Sub (gRPC) : {server.pubsub.address}"
        + (f" (TLS, trust {server.pubsub.cert_file})" if server.pubsub.cert_file else "")
    )
    click.echo(f"  control        : {server.url}/__sandbox__/info")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        click.echo("sandbox stopped")


if __name__ == "__main__":  # pragma: no cover - `python -m omsbridge_salesforce_sandbox.cli`
    command()
