"""``omsbridge serve`` and what it pushes: the POS Order SPI as a service (``webhooks``: the
outgoing webhooks, signed as the Standard Webhooks specification describes)."""
