"""A property-based run of docs/pos-spi-openapi.yaml (schemathesis) against the live ``omsbridge
serve`` fronting the reference SPI server: no 5xx, and no answer that breaks the contract
(status codes, content types, headers and bodies as documented). A few examples per operation
keep it under a minute; ``OMSBRIDGE_FUZZ_EXAMPLES=500`` runs it longer (``nox -s fuzz``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from serve_support import POS_EU_KEY, set_env, write_config  # noqa: E402

from omsbridge_posspi.serve import create_app  # noqa: E402
from omsbridge_posspi.server import ServerHandle, SpiApp, serve  # noqa: E402

DOC = Path(__file__).resolve().parents[3] / "docs" / "pos-spi-openapi.yaml"
EXAMPLES = int(os.environ.get("OMSBRIDGE_FUZZ_EXAMPLES", "6"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_path(DOC)


@pytest.fixture(scope="module")
def serve_url(
    _session_app: tuple[SpiApp, ServerHandle], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        set_env(monkeypatch)
        spi = _session_app[1]
        config = write_config(tmp_path_factory.mktemp("fuzz"), spi.url, spi.url)
        app = create_app(config)
        with serve(app) as handle:
            yield f"{handle.url}/merchants/SHOPNOW"
        app.bridge.close()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_served_contract_holds(case: object, serve_url: str) -> None:
    query = getattr(case, "query", None)
    if isinstance(query, dict) and _seconds(query.get("wait")) > 0.5:
        # Long polls with no event to wait for would hold each example up to 30 s.
        query["wait"] = "0.5"
    case.call_and_validate(  # type: ignore[attr-defined]
        base_url=serve_url, headers={"X-API-Key": POS_EU_KEY}, checks=CHECKS, timeout=40
    )


def _seconds(value: object) -> float:
    try:
        return float(str(value))
    except ValueError:
        return 0.0
