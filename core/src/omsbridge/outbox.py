"""What the POS is told when its synchronous post did not reach the OMS.

``Merchant.post`` never loses a transaction: when the OMS does not take it, the transaction is
written to the store (committed, on disk) before the call returns, and then

* a **retryable** failure (5xx, timeout, row lock, rate limit) raises :class:`Queued`: the
  transaction is pending in the outbox and the export job will post it. The POS treats the sale
  as accepted ("will be sent to the OMS"); posting it again is harmless but not needed.
* a **permanent** failure (invalid, rejected, unsupported...) re-raises the backend's own error,
  after keeping the transaction as a dead letter an operator can fix and replay.
* if the store itself cannot be written, the backend's error is raised with a note saying so and
  nothing is kept: the POS must retry, exactly as without an outbox.
"""

from __future__ import annotations

from omsbridge.errors import BackendError, OMSBridgeError

__all__ = ["Queued"]


class Queued(OMSBridgeError):
    """The OMS could not take the transaction now; it is in the outbox and will be posted.

    ``entry_id`` names it for ``omsbridge export show``; ``error`` (also ``__cause__``) is what
    the OMS answered. ``retryable`` is False: the POS has nothing to retry.
    """

    retryable = False

    def __init__(
        self, merchant_id: str, transaction_id: str, entry_id: int, error: BackendError
    ) -> None:
        self.merchant_id = merchant_id
        self.transaction_id = transaction_id
        self.entry_id = entry_id
        self.error = error
        super().__init__(
            f"transaction {transaction_id!r} of merchant {merchant_id!r} is queued as outbox "
            f"entry {entry_id} and will be posted by the export job "
            f"(the OMS answered {type(error).__name__}: {error.message})"
        )
