"""Backend faults: each maps to the right class of :mod:`omsbridge.errors`, and a failed post
is safe to send again (it writes one order, once)."""

from __future__ import annotations

from omsbridge.errors import AuthFailed, RateLimited, TransientBackendError
from omsbridge.model import Transaction
from omsbridge.spi import Capability
from omsbridge_contract import data
from omsbridge_contract.checks import raises
from omsbridge_contract.contract import Contract
from omsbridge_contract.harness import Fault
from omsbridge_contract.registry import scenario

SALE = Capability.POST_SALE
INJECT = ["inject_fault"]


def _sale(oms: Contract) -> Transaction:
    return data.transaction(oms.ref, [data.line(1, "SKU-FAULT", 1, "25.00", tax="2.00")])


def _post_fails_then_succeeds(
    oms: Contract, fault: Fault, expected: type[TransientBackendError] | type[AuthFailed]
) -> None:
    txn = _sale(oms)
    before = oms.count()
    oms.harness.inject_fault(fault)
    try:
        with raises(expected):
            oms.backend.post(txn)
    finally:
        oms.harness.clear_faults()
    assert oms.count() == before, f"a post that failed with {fault.value} wrote an order"
    oms.post(txn, created=True)
    assert oms.count() == before + 1, "posting again after the fault must create exactly one order"


@scenario(
    "the system answers 5xx: TransientBackendError (retryable); posting again later creates "
    "the order once",
    area="faults",
    requires=[SALE],
    harness=INJECT,
    fault=Fault.SERVER_ERROR,
)
def test_fault_server_error(oms: Contract) -> None:
    _post_fails_then_succeeds(oms, Fault.SERVER_ERROR, TransientBackendError)


@scenario(
    "requests time out: TransientBackendError (retryable); posting again creates the order once",
    area="faults",
    requires=[SALE],
    harness=INJECT,
    fault=Fault.TIMEOUT,
)
def test_fault_timeout(oms: Contract) -> None:
    _post_fails_then_succeeds(oms, Fault.TIMEOUT, TransientBackendError)


@scenario(
    "credentials are refused: AuthFailed (not retryable), nothing written",
    area="faults",
    requires=[SALE],
    harness=INJECT,
    fault=Fault.AUTH,
)
def test_fault_auth_failure(oms: Contract) -> None:
    _post_fails_then_succeeds(oms, Fault.AUTH, AuthFailed)


@scenario(
    "the API budget is exhausted: RateLimited (retryable) with retry_after in seconds",
    area="faults",
    requires=[SALE],
    harness=INJECT,
    fault=Fault.RATE_LIMIT,
)
def test_fault_rate_limited(oms: Contract) -> None:
    txn = _sale(oms)
    before = oms.count()
    oms.harness.inject_fault(Fault.RATE_LIMIT)
    try:
        with raises(RateLimited) as caught:
            oms.backend.post(txn)
    finally:
        oms.harness.clear_faults()
    retry_after = caught.error.retry_after  # type: ignore[union-attr]
    assert retry_after is None or (isinstance(retry_after, int | float) and retry_after >= 0), (
        f"retry_after must be seconds (a number >= 0) or None, got {retry_after!r}"
    )
    assert oms.count() == before, "a rate-limited post wrote an order"


@scenario(
    "reads fail the same way: order detail during a 5xx is TransientBackendError",
    area="faults",
    requires=[SALE, Capability.GET_ORDER],
    harness=INJECT,
    fault=Fault.SERVER_ERROR,
)
def test_fault_server_error_on_read(oms: Contract) -> None:
    result = oms.post_new(_sale(oms))
    oms.harness.inject_fault(Fault.SERVER_ERROR)
    try:
        with raises(TransientBackendError):
            oms.backend.get_order(result.order_id)
    finally:
        oms.harness.clear_faults()
    assert oms.detail(result.order_id).order_id == result.order_id
