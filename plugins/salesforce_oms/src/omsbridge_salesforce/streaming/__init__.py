"""Salesforce Streaming API (CometD) for the fulfillment-event feed.

* :mod:`.bayeux` — a generic Bayeux long-polling client on httpx (works with any Bayeux server);
* :mod:`.bayeux_async` — the same protocol on asyncio (one event loop for every merchant);
* :mod:`.replay` — Salesforce's replay extension;
* :mod:`.stream` — one channel read by a task on the shared event loop, so ``events(wait)``
  returns in time;
* :mod:`.listener` — FOStatusChangedEvent as the SPI's ``events(checkpoint, wait)``, with the
  catch-up query when a replay id is past retention.
"""

from omsbridge_salesforce.streaming.bayeux import (
    BayeuxClient,
    BayeuxError,
    BayeuxSession,
    BayeuxTransportError,
    Extension,
)
from omsbridge_salesforce.streaming.bayeux_async import AsyncBayeuxClient
from omsbridge_salesforce.streaming.listener import (
    CATCH_UP,
    FO_CHANNEL,
    FulfillmentFeed,
    event_from_message,
)
from omsbridge_salesforce.streaming.replay import EARLIEST, NEWEST, ReplayExtension
from omsbridge_salesforce.streaming.stream import EventStream

__all__ = [
    "CATCH_UP",
    "EARLIEST",
    "FO_CHANNEL",
    "NEWEST",
    "AsyncBayeuxClient",
    "BayeuxClient",
    "BayeuxError",
    "BayeuxSession",
    "BayeuxTransportError",
    "EventStream",
    "Extension",
    "FulfillmentFeed",
    "ReplayExtension",
    "event_from_message",
]
