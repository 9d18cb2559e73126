"""Hooks the Salesforce plugin adds to omsbridge (the seed's shared-responsibility model).

The connector owns the API integration; the merchant's SI owns the Salesforce process. This hook
lets an SI change the order graph before it is sent, without forking the connector::

    # my_si_plugin.py, registered through the "omsbridge" entry-point group
    from omsbridge import hookimpl

    @hookimpl
    def omsbridge_salesforce_order_graph(merchant_id, transaction, graph):
        graph.node("ord")["body"]["Loyalty_Id__c"] = transaction.attributes.get("loyalty")
        graph.node("ord")["body"]["TaxLocaleType"] = "Gross"        # a VAT-inclusive org

The plugin adds these specs through ``omsbridge_add_hookspecs`` (see :mod:`omsbridge_salesforce.plugin`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from omsbridge import Transaction
    from omsbridge_salesforce.graph import OrderGraph

hookspec = pluggy.HookspecMarker("omsbridge")


@hookspec
def omsbridge_salesforce_order_graph(
    merchant_id: str, transaction: Transaction, graph: OrderGraph
) -> OrderGraph | Any | None:
    """Edit the composite graph of one sale before it is posted to Salesforce.

    Implementations are called one after the other, each with the graph the previous one left:
    change ``graph`` in place (``graph.node("ord")["body"]``, ``graph.add(...)``,
    ``graph.insert_before("act", node)``, ``graph.remove(ref)``) and return None, or return a
    new :class:`~omsbridge_salesforce.graph.OrderGraph` to replace it. Keep the ``ord`` node
    (its id is the order's id) and the activation node ``act`` last but for ``num``.

    An exception raised here fails the post with :class:`omsbridge.Rejected`
    (code ``GRAPH_HOOK_FAILED``) naming the plugin; the order is not sent.

    :param merchant_id: the merchant the sale belongs to.
    :param transaction: the POS transaction (read-only).
    :param graph: the graph about to be sent.

    .. versionadded:: 0.1
    """


@hookspec
def omsbridge_salesforce_payment_failed(
    merchant_id: str, failure: Any, transaction_id: str | None, entry_id: int | None
) -> None:
    """A refund or capture failed at the payment gateway after its action had answered
    success (a ``ProcessExceptionEvent``): alert someone.

    :param merchant_id: the merchant.
    :param failure: the :class:`~omsbridge_salesforce.streaming.payment_failures.PaymentFailure`.
    :param transaction_id: the POS return or exchange it belongs to, when found.
    :param entry_id: that transaction's outbox entry, when found (its history now shows it).

    .. versionadded:: 0.1
    """
