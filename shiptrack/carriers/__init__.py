"""Parcel carriers: what their updates mean for a shipment (``mapping``), their webhook
formats and signatures (``updates``), and polling their APIs through karrio
(``polling``). Pure but for ``polling.fetch`` (the carrier's HTTP API, through karrio)."""
