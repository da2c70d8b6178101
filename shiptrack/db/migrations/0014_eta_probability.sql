-- ETA as a probability (docs/DESIGN.md "ETA: late probability and the first ETA"):
-- late_probability, the chance (0..1) of arriving after promised_by (null without a
-- promise or before any ETA), from which at_risk follows; eta_first, the first ETA
-- announced for the shipment, kept beside the latest (a carrier's "original vs revised").
ALTER TABLE shipments ADD COLUMN late_probability double precision
    CHECK (late_probability BETWEEN 0 AND 1);
ALTER TABLE shipments ADD COLUMN eta_first timestamptz;
