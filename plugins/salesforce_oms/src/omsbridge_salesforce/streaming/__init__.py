"""Salesforce Streaming API (CometD) for the fulfillment-event feed.

* :mod:`.bayeux` — a generic Bayeux long-polling client on httpx (works with any Bayeux server);
* :mod:`.replay` — Salesforce's replay extension;
* :mod:`.stream` — one channel read by a background thread, so ``events(wait)`` returns in time;
* :mod:`.listener` — FOStatusChangedEvent as the SPI's ``events(checkpoint, wait)``, with the
  catch-up query when a replay id is past retention.
"""

from omsbridge_salesforce.streaming.bayeux import (
    BayeuxClient,
    BayeuxError,
    BayeuxTransportError,
    Extension,
)
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
    "BayeuxClient",
    "BayeuxError",
    "BayeuxTransportError",
    "EventStream",
    "Extension",
    "FulfillmentFeed",
    "ReplayExtension",
    "event_from_message",
]
