"""The ``oms`` fixture's object: the backend under test, its harness, and checked shortcuts.

Scenarios call the backend directly (not through :class:`omsbridge.Bridge`), so a backend that
silently ignores an operation it does not declare is caught rather than hidden by the bridge's
own capability check.
"""

from __future__ import annotations

from omsbridge.model import OrderDetail, PostResult, Transaction
from omsbridge.spi import Capability, OrderBackend
from omsbridge_contract import checks
from omsbridge_contract.harness import Harness
from omsbridge_contract.registry import ScenarioInfo

__all__ = ["Contract"]


class Contract:
    """What a scenario works with: ``oms.backend``, ``oms.harness`` and checked operations."""

    def __init__(self, *, backend: OrderBackend, harness: Harness, info: ScenarioInfo) -> None:
        self.backend = backend
        """The backend instance under test, built for this scenario only."""
        self.harness = harness
        self.info = info
        """The running scenario's catalogue entry."""

    @property
    def ref(self) -> str:
        """The scenario's id without ``test_``, dashed: the stem of its ids, emails and names."""
        return self.info.id.removeprefix("test_").replace("_", "-")

    @property
    def name(self) -> str:
        """The backend's name."""
        return self.backend.name

    def has(self, capability: Capability) -> bool:
        """Whether the backend declares ``capability``."""
        return capability in self.backend.capabilities

    def count(self) -> int:
        """How many orders the system holds (from the harness)."""
        count = self.harness.order_count()
        assert isinstance(count, int) and not isinstance(count, bool) and count >= 0, (
            f"{type(self.harness).__name__}.order_count() must return an int >= 0, got {count!r}"
        )
        return count

    def post(self, txn: Transaction, *, created: bool = True) -> PostResult:
        """Post ``txn`` and check the answer (a PostResult for it, ``created`` as expected)."""
        return checks.assert_post_result(self.backend.post(txn), txn, created=created)

    def post_new(self, txn: Transaction) -> PostResult:
        """Post ``txn`` and check it made exactly one new order."""
        before = self.count()
        result = self.post(txn)
        after = self.count()
        assert after == before + 1, (
            f"posting {txn.transaction_id} must create exactly one order: "
            f"order_count went from {before} to {after}"
        )
        return result

    def detail(self, order_id: str) -> OrderDetail:
        """``get_order`` with the answer's type and money checked."""
        detail = self.backend.get_order(order_id)
        assert isinstance(detail, OrderDetail), (
            f"get_order() must return an OrderDetail, got {type(detail).__name__}"
        )
        checks.assert_no_floats(detail, "detail")
        return detail

    def verify(self, txn: Transaction, result: PostResult) -> OrderDetail | None:
        """When the backend can read orders back, check the order matches what was posted."""
        if not self.has(Capability.GET_ORDER):
            return None
        return checks.assert_detail_matches(self.backend.get_order(result.order_id), txn, result)

    def __repr__(self) -> str:
        return f"<Contract {self.info.id} backend={self.name!r}>"
