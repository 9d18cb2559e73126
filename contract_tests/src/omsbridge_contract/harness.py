"""The harness: what a backend tells the contract suite so that every scenario can run against it.

A harness is small. It says which backend it drives, where that backend's cassettes live and how
to build its settings; it can count the orders the system holds (to prove "no second order" and
"nothing written"), and, optionally, set up what only the OMS side can create (an online order
for BORIS, a fulfillment order for BOPIS/BOFIS) and break the backend on purpose (faults).

Rules that keep recordings replayable:

* Everything the harness does to the system *during a scenario* (``reset``, ``order_count``,
  ``seed_online_order``, ``make_fulfillment_order``, ``inject_fault``, ``clear_faults``) must go
  over the same recorded HTTP as the backend (or touch nothing external), because in CI no
  server runs: the scenario replays from its cassette.
* ``start()`` may start a local server only when ``self.live`` is true (the run may record).
* The system must start empty at record time; scenarios use fixed ids and times, so the
  requests they send are the same on every run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Self

import attrs

from omsbridge.model import Customer, FulfillmentKind
from omsbridge.spi import MerchantContext

__all__ = ["Fault", "Harness", "OnlineLine", "OnlineOrder"]


class Fault(StrEnum):
    """A failure the harness can make the backend meet; it lasts until ``clear_faults()``."""

    SERVER_ERROR = "server_error"
    """The system answers 5xx (503): the backend must raise ``TransientBackendError``."""
    TIMEOUT = "timeout"
    """Requests time out: the backend must raise ``TransientBackendError``."""
    AUTH = "auth"
    """Credentials are refused (401, also after a token refresh): ``AuthFailed``."""
    RATE_LIMIT = "rate_limit"
    """The API budget is exhausted (429 with Retry-After): ``RateLimited``."""


@attrs.frozen
class OnlineLine:
    """One line of an order placed online (outside the POS), for :meth:`Harness.seed_online_order`."""

    line_number: int
    sku: str
    quantity: Decimal
    unit_price: Decimal
    name: str | None = None


@attrs.frozen
class OnlineOrder:
    """An order placed online that the harness creates in the OMS (BORIS, online cancel).

    ``shipped`` means the goods reached the customer (so they can be returned in store);
    otherwise the order is still open (so it can be cancelled). ``ref`` is unique per scenario
    and may be used to build the order number.
    """

    ref: str
    customer: Customer
    lines: tuple[OnlineLine, ...]
    placed_at: datetime
    currency: str = "USD"
    shipped: bool = True

    @property
    def total(self) -> Decimal:
        """The order's value: the sum of quantity times unit price."""
        return sum((line.quantity * line.unit_price for line in self.lines), Decimal(0))


class Harness:
    """Base class of contract-suite harnesses; subclass it once per backend.

    The suite builds one harness per test session: ``HarnessClass(live=..., workdir=...)``, then
    ``with harness:`` (``start()`` / ``stop()``) around every scenario. Override what your
    backend can do; a scenario that needs something you did not override is skipped with the
    reason shown.
    """

    backend: ClassVar[str]
    """The backend name this harness drives (what ``--oms-backend`` selects)."""

    cassette_dir: ClassVar[str | os.PathLike[str] | None] = None
    """Where the backend's cassettes live (one ``<scenario id>.yaml`` each). None: the backend
    makes no HTTP calls (an in-memory backend) and nothing is recorded.
    ``--oms-cassettes DIR`` overrides it."""

    faults: ClassVar[frozenset[Fault]] = frozenset()
    """The faults :meth:`inject_fault` can produce; fault scenarios for the others are skipped."""

    variants: ClassVar[tuple[str, ...]] = ()
    """Named set-ups of the system under test the suite can run against (for Salesforce, the
    org profiles). ``--oms-variant NAME`` picks one (default: the first); the scenario runs read
    :attr:`variant`, and each variant's cassettes live in ``cassette_dir/NAME``."""

    merchant_id: ClassVar[str] = "CONTRACT"
    """The merchant id the scenarios run as."""

    long_poll_paths: ClassVar[tuple[str, ...]] = ()
    """URL path prefixes (e.g. ``"/cometd/"``) of long polls the backend sends from a background
    thread. On replay, such a request the cassette does not hold (the poll that was still open
    when the recording stopped) is held open until the cassette closes and then fails like a
    dropped connection, instead of failing the scenario. Recorded long polls still match
    exactly, and interactions recorded but never played still fail the scenario."""

    expected_failures: ClassVar[Mapping[str, str]] = {}
    """Scenario id -> why it is known to fail for this backend. Those scenarios run as strict
    xfails: still reported, and a pass (the bug is fixed) fails the run until the entry goes."""

    def __init__(self, *, live: bool, workdir: Path) -> None:
        self.live = live
        """True when the run may record (a record mode other than ``none``): start real servers."""
        self.workdir = workdir
        """A private temporary directory for this session (databases, logs)."""
        self.variant: str | None = self.variants[0] if self.variants else None
        """The variant this run uses (set by the suite from ``--oms-variant``)."""

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Prepare the system under test (start a local server when ``self.live``)."""

    def stop(self) -> None:
        """Release what :meth:`start` created."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the backend is built from ---------------------------------------------------------

    def settings(self) -> Any:
        """The backend's settings for the test merchant.

        Either an instance of the backend's ``config_class``, or a mapping written as it would be
        in the config file (secrets as ``{ env = "VAR" }`` references), which the suite checks
        with omsbridge's own config loader.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement settings()")

    def merchant(self) -> MerchantContext:
        """The merchant the backend serves during the scenarios."""
        return MerchantContext(self.merchant_id, locale="en_US", region="US", currency="USD")

    def vcr_config(self) -> Mapping[str, Any]:
        """Extra vcrpy options for this backend's cassettes (e.g. ``match_on``, extra
        ``filter_headers``). The suite's scrubbing always runs after yours."""
        return {}

    def unrecorded_request_allowed(self, method: str, uri: str) -> bool:
        """Whether a replayed scenario may meet this request although its cassette lacks it.

        For a request a background thread of the backend sends on its own schedule (a long poll
        still open when the recording stopped). vcrpy still refuses it in that thread; it only
        does not fail the scenario. Keep it narrow: the default allows nothing.
        """
        return False

    # -- the system's state, read and prepared by scenarios --------------------------------------

    def reset(self) -> None:
        """Called at the start of every scenario, inside its cassette. The default does nothing;
        scenarios do not rely on an empty system because each uses its own customers and ids."""

    def order_count(self) -> int:
        """How many orders the system holds now (every kind: sales, returns, exchanges).

        Scenarios compare it before and after to prove that a re-post created no second order
        and that rejected input wrote nothing.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement order_count()")

    def seed_online_order(self, order: OnlineOrder) -> str:
        """Create an order as if placed online (not through the POS) and return its order id
        (the id ``get_order`` and ``OriginalLine.order_id`` accept). Used by BORIS and the
        online-order cancel scenario."""
        raise NotImplementedError

    def make_fulfillment_order(
        self, store_id: str, kind: FulfillmentKind, *, ref: str, customer: Customer
    ) -> str:
        """Make the OMS route an order to ``store_id`` as a fulfillment order of ``kind``
        (PICKUP for BOPIS, SHIP_FROM_STORE for BOFIS) and return the fulfillment order id.

        ``ref`` is unique per scenario. The fulfillment order has at least one line and is
        waiting on the store, so it appears in ``fulfillment_orders(store_id=...)``; if the
        backend offers ``events``, its creation is an event.
        """
        raise NotImplementedError

    def inject_fault(self, fault: Fault) -> None:
        """Make every following backend request fail with ``fault`` until :meth:`clear_faults`.

        Declare what you support in :attr:`faults`. For backends on httpx,
        :class:`omsbridge_contract.faults.HttpxTimeouts` produces ``Fault.TIMEOUT`` on the
        client side, which replays without a server.
        """
        raise NotImplementedError

    def clear_faults(self) -> None:
        """Undo :meth:`inject_fault`. Called after every scenario; the default does nothing."""


def overrides(harness: Harness | type[Harness], method: str) -> bool:
    """True when ``harness`` implements ``method`` itself rather than inheriting the base's."""
    cls = harness if isinstance(harness, type) else type(harness)
    return getattr(cls, method) is not getattr(Harness, method)
