"""Transaction ids that differ only in case (issue 11, item 1).

``POS-7f3a-abc`` and ``POS-7F3A-ABC`` are two sales. On an org whose external-id field ignores
case (Salesforce's default for a custom field) the second cannot be stored: it must be refused
with ``TRANSACTION_ID_CASE_COLLISION`` on every path (single post, check_before_post, the
export job's batches, returns, exchanges), never answered ``created: false`` with the first
sale's order. On the setup package's case-sensitive field it is posted as its own order.

The refusal tests use their own case-insensitive field (``POS_Txn_Ref__c``), so they keep
testing the refusal once the sandbox's ``POS_Transaction_Id__c`` becomes case-sensitive.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sf_export_helpers import make_sale, sf_config
from sf_return_helpers import exchange_of, return_of, sale

from omsbridge import MerchantContext, NotFound, PostResult, Rejected, Transaction
from omsbridge_salesforce.backend import SalesforceBackend
from omsbridge_salesforce_sandbox.schema import custom_field

FIELD = "POS_Txn_Ref__c"
CASE_INSENSITIVE_ORG = pytest.mark.sf_sandbox(
    custom_fields={"Order": [custom_field(FIELD, external_id=True)]}
)


def backend_on(url: str, **overrides: Any) -> SalesforceBackend:
    """A backend keeping transaction ids in ``FIELD`` unless told otherwise."""
    values = {"order_external_id_field": FIELD, **overrides}
    return SalesforceBackend(sf_config(url, **values), MerchantContext("SHOP", currency="USD"))


@pytest.fixture
def shop(sf_sandbox: Any) -> Iterator[SalesforceBackend]:
    """A backend on the case-insensitive field."""
    backend = backend_on(sf_sandbox.url)
    yield backend
    backend.close()


def twin_of(first: Transaction, twin_id: str) -> Transaction:
    """Another sale (another total) whose id differs from ``first``'s only in case."""
    other = make_sale(twin_id, 2)
    assert other.total != first.total
    return other


def orders(sb: Any, field: str = FIELD) -> dict[str, str]:
    """Transaction id -> order id of every order the org holds (change orders left out)."""
    return {
        str(o[field]): o["Id"]
        for o in sb.store.where("Order")
        if o.get(field) and not o.get("RelatedOrderId")
    }


def assert_collision(error: BaseException, twin: str, first: str) -> None:
    """The named refusal, saying what to do about it."""
    assert isinstance(error, Rejected) and not error.retryable
    assert error.code == "TRANSACTION_ID_CASE_COLLISION"
    text = str(error)
    assert repr(twin) in text and repr(first) in text and f"Order.{FIELD}" in text
    assert "not case-sensitive" in text and "org-setup" in text


@CASE_INSENSITIVE_ORG
@pytest.mark.parametrize("check_before_post", [False, True])
def test_a_case_twin_is_refused_not_reported_as_posted(
    sf_sandbox: Any, check_before_post: bool
) -> None:
    sb = sf_sandbox.sandbox
    shop = backend_on(sf_sandbox.url, check_before_post=check_before_post)
    first = make_sale("POS-7f3a-abc", 1)
    posted = shop.post(first)
    with pytest.raises(Rejected) as info:
        shop.post(twin_of(first, "POS-7F3A-ABC"))
    assert_collision(info.value, "POS-7F3A-ABC", "POS-7f3a-abc")
    assert orders(sb) == {"POS-7f3a-abc": posted.order_id}
    again = shop.post(first)  # the first sale is still itself
    assert (again.order_id, again.created) == (posted.order_id, False)
    shop.close()


@CASE_INSENSITIVE_ORG
def test_the_export_jobs_batches_refuse_a_case_twin(
    shop: SalesforceBackend, sf_sandbox: Any
) -> None:
    first = make_sale("POS-7f3a-abc", 1)
    posted = shop.post_batch([first])
    assert isinstance(posted[0], PostResult) and posted[0].created
    twin, other = twin_of(first, "POS-7F3A-ABC"), make_sale("POS-other", 3)
    outcomes = shop.post_batch([twin, first, other])
    assert_collision(outcomes[0], "POS-7F3A-ABC", "POS-7f3a-abc")
    assert isinstance(outcomes[1], PostResult) and not outcomes[1].created
    assert outcomes[1].order_id == posted[0].order_id
    assert isinstance(outcomes[2], PostResult) and outcomes[2].created
    assert set(orders(sf_sandbox.sandbox)) == {"POS-7f3a-abc", "POS-other"}


@CASE_INSENSITIVE_ORG
@pytest.mark.parametrize("kind", ["return", "exchange"])
def test_a_case_twin_return_or_exchange_is_refused_before_any_write(
    shop: SalesforceBackend, sf_sandbox: Any, kind: str
) -> None:
    sb = sf_sandbox.sandbox
    shop.post(sale("S-1"))
    build = return_of if kind == "return" else exchange_of
    shop.post(build("X-1", "S-1"))
    changes, memos = len(sb.store.where("Order")), len(sb.store.where("CreditMemo"))
    with pytest.raises(Rejected) as info:
        shop.post(build("x-1", "S-1"))
    assert info.value.code == "TRANSACTION_ID_CASE_COLLISION"
    assert (len(sb.store.where("Order")), len(sb.store.where("CreditMemo"))) == (changes, memos)
    items = sb.store.where("OrderItemSummary")
    returned = sum((Decimal(str(i["QuantityReturned"])) for i in items), Decimal(0))
    assert returned == 1  # the twin returned nothing


def test_on_the_setup_packages_case_sensitive_field_a_twin_is_its_own_order(
    sf_sandbox: Any,
) -> None:
    sb = sf_sandbox.sandbox
    shop = backend_on(sf_sandbox.url, order_external_id_field="POS_Transaction_Id__c")
    first = make_sale("POS-7f3a-abc", 1)
    one = shop.post(first)
    two = shop.post(twin_of(first, "POS-7F3A-ABC"))
    assert one.created and two.created and one.order_id != two.order_id
    held = orders(sb, "POS_Transaction_Id__c")
    assert held == {"POS-7f3a-abc": one.order_id, "POS-7F3A-ABC": two.order_id}
    batch = shop.post_batch([make_sale("POS-b", 3), make_sale("pos-B", 4)])
    assert all(isinstance(o, PostResult) and o.created for o in batch)
    shop.close()


@CASE_INSENSITIVE_ORG
def test_an_order_is_not_found_by_its_ids_case_twin(shop: SalesforceBackend) -> None:
    """A return (or a read) naming ``S-1`` does not reach the order of ``s-1``."""
    posted = shop.post(sale("s-1"))
    assert shop.get_order("s-1").order_id == posted.order_id
    with pytest.raises(NotFound):
        shop.get_order("S-1")
    with pytest.raises(Rejected) as info:
        shop.post(return_of("R-1", "S-1"))
    assert info.value.code == "ORIGINAL_ORDER_NOT_FOUND"
