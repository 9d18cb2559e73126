"""The POS's own vocabulary: frozen attrs classes that check their invariants when built.

Write side: :class:`Transaction` with :class:`LineItem`, :class:`TaxLine`, :class:`Adjustment`,
:class:`Charge`, tenders and :class:`Customer`. Read side: :class:`OrderQuery`,
:class:`OrderPage`, :class:`OrderDetail`. Omnichannel: :class:`FulfillmentOrder`,
:class:`FulfillmentEvent`, :class:`FulfillmentUpdate`.
"""

from omsbridge.model._checks import minor_units
from omsbridge.model.common import Address, Adjustment, AdjustmentType, Customer, TaxLine
from omsbridge.model.fulfillment import (
    EventBatch,
    FulfillmentAction,
    FulfillmentEvent,
    FulfillmentKind,
    FulfillmentLine,
    FulfillmentOrder,
    FulfillmentOrderLine,
    FulfillmentUpdate,
)
from omsbridge.model.orders import (
    CancelLine,
    CancelResult,
    OrderDetail,
    OrderHit,
    OrderLine,
    OrderPage,
    OrderQuery,
    OrderStatus,
    OrderTotals,
    Payment,
    PaymentKind,
    PostResult,
    Shipment,
)
from omsbridge.model.tenders import (
    CardTender,
    CashTender,
    DigitalWalletTender,
    GiftCardTender,
    Tender,
)
from omsbridge.model.transaction import (
    Charge,
    ChargeType,
    Fulfillment,
    FulfillmentType,
    LineItem,
    LineKind,
    OriginalLine,
    Transaction,
    TransactionKind,
)

__all__ = [
    "Address", "Adjustment", "AdjustmentType", "CancelLine", "CancelResult", "CardTender",
    "CashTender", "Charge", "ChargeType", "Customer", "DigitalWalletTender", "EventBatch",
    "Fulfillment", "FulfillmentAction", "FulfillmentEvent", "FulfillmentKind", "FulfillmentLine",
    "FulfillmentOrder", "FulfillmentOrderLine", "FulfillmentType", "FulfillmentUpdate",
    "GiftCardTender", "LineItem", "LineKind", "OrderDetail", "OrderHit", "OrderLine", "OrderPage",
    "OrderQuery", "OrderStatus", "OrderTotals", "OriginalLine", "Payment", "PaymentKind",
    "PostResult", "Shipment", "TaxLine", "Tender",
    "Transaction", "TransactionKind", "minor_units",
]  # fmt: skip
