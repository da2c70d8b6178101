-- ETA in ingest (docs/DESIGN.md "ETA in ingest"): the ETA last announced by a
-- shipment.eta_changed event, so that a restarted ingest compares new ETAs with it (and
-- neither re-announces every shipment nor forgets a drift). eta, eta_low, eta_high,
-- remaining_m and at_risk exist since 0003.
ALTER TABLE shipments ADD COLUMN eta_announced timestamptz;
